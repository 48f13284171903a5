package wecomfake

import (
	"encoding/json"
	"unicode/utf8"
)

// Limits of message fields, from WeCom's documents of add_msg_template and
// send_welcome_msg (92135, 92137), message/send (90236) and kf/send_msg
// (94677), in bytes unless said otherwise. WeCom documents that it cuts
// app news titles and descriptions over their limit; whether it cuts or
// refuses the others is not verified: the fake refuses every field over
// its limit (40058), so that a client that relies on WeCom cutting them
// is caught.
const (
	maxTaskText     = 4000 // text.content of a message task or welcome
	maxAttachments  = 9
	maxLinkTitle    = 128
	maxLinkDesc     = 512
	maxURL          = 2048
	maxMiniTitle    = 64
	maxBtnTxtRunes  = 4
	maxNewsArticles = 8
)

// tooLong refuses a field over its limit.
func tooLong(where, field, v string, limit int) *apiError {
	if len(v) > limit {
		return errorf(CodeInvalidParameter, "%s.%s is %d bytes, over the limit %d", where, field, len(v), limit)
	}
	return nil
}

func firstErr(errs ...*apiError) *apiError {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// checkMessage checks the text and attachments of a message task or a
// welcome: at most 9 attachments, each of a type add_msg_template
// documents, with exactly its own object, its required fields, fields
// within their limits, and media ids the server issued (and has not
// forgotten) of the right type; s.mu is held.
func (s *Server) checkMessage(text string, atts []Attachment) *apiError {
	if e := tooLong("text", "content", text, maxTaskText); e != nil {
		return e
	}
	if len(atts) > maxAttachments {
		return errorf(CodeInvalidParameter, "attachments exceed limit 9")
	}
	for i, a := range atts {
		ok := false
		var e *apiError
		switch a.MsgType {
		case "image":
			// pic_url must come from WeCom's uploadimg (not checked).
			ok = a.Image != nil && (a.Image.MediaID != "" || a.Image.PicURL != "")
			if ok && a.Image.MediaID != "" {
				e = s.checkMedia("image", a.Image.MediaID, "image")
			}
		case "link":
			l := a.Link
			ok = l != nil && l.Title != "" && l.URL != ""
			if ok {
				e = firstErr(tooLong("link", "title", l.Title, maxLinkTitle), tooLong("link", "desc", l.Desc, maxLinkDesc),
					tooLong("link", "url", l.URL, maxURL), tooLong("link", "picurl", l.PicURL, maxURL))
			}
		case "miniprogram":
			m := a.MiniProgram
			ok = m != nil && m.Title != "" && m.PicMediaID != "" && m.AppID != "" && m.Page != ""
			if ok {
				e = firstErr(tooLong("miniprogram", "title", m.Title, maxMiniTitle), s.checkMedia("image", m.PicMediaID, "miniprogram.pic_media_id"))
			}
		case "video":
			ok = a.Video != nil && a.Video.MediaID != ""
			if ok {
				e = s.checkMedia("video", a.Video.MediaID, "video")
			}
		case "file":
			ok = a.File != nil && a.File.MediaID != ""
			if ok {
				e = s.checkMedia("file", a.File.MediaID, "file")
			}
		}
		// Objects of another type than msgtype are not verified against
		// WeCom; the fake refuses them to catch encoders that send them all.
		n := 0
		for _, p := range []bool{a.Image != nil, a.Link != nil, a.MiniProgram != nil, a.Video != nil, a.File != nil} {
			if p {
				n++
			}
		}
		if !ok || n != 1 {
			return errorf(CodeInvalidParameter, "invalid attachments[%d] of msgtype %q", i, a.MsgType)
		}
		if e != nil {
			return e
		}
	}
	return nil
}

// checkTextCard checks an app text card's limits.
func checkTextCard(title, desc, url, btntxt string) *apiError {
	if desc == "" {
		return errorf(CodeInvalidParameter, "textcard needs a description")
	}
	if utf8.RuneCountInString(btntxt) > maxBtnTxtRunes {
		return errorf(CodeInvalidParameter, "textcard.btntxt is over %d characters", maxBtnTxtRunes)
	}
	return firstErr(tooLong("textcard", "title", title, maxLinkTitle), tooLong("textcard", "description", desc, maxLinkDesc),
		tooLong("textcard", "url", url, maxURL))
}

// checkAppNews checks an app news message (1 to 8 articles, each with a
// title and a url) and fills m with its first article.
func checkAppNews(body []byte, m *AppMessageRequest) *apiError {
	var req struct {
		News *struct {
			Articles []struct {
				Title       string `json:"title"`
				Description string `json:"description"`
				URL         string `json:"url"`
				PicURL      string `json:"picurl"`
				AppID       string `json:"appid"`
				PagePath    string `json:"pagepath"`
			} `json:"articles"`
		} `json:"news"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return errorf(CodeInvalidParameter, "invalid json: %v, Warning: wrong json format.", err)
	}
	if req.News == nil || len(req.News.Articles) == 0 || len(req.News.Articles) > maxNewsArticles {
		return errorf(CodeInvalidParameter, "news needs 1 to %d articles", maxNewsArticles)
	}
	for _, a := range req.News.Articles {
		// A miniprogram article needs no url (appid and pagepath).
		if a.Title == "" || a.URL == "" && a.AppID == "" {
			return errorf(CodeInvalidParameter, "news article needs title and url")
		}
		if e := firstErr(tooLong("news", "title", a.Title, maxLinkTitle), tooLong("news", "description", a.Description, maxLinkDesc),
			tooLong("news", "url", a.URL, maxURL), tooLong("news", "picurl", a.PicURL, maxURL)); e != nil {
			return e
		}
	}
	a := req.News.Articles[0]
	m.Title, m.URL, m.Content = a.Title, a.URL, a.Description
	if m.Content == "" {
		// The fake's AppMessageRequest wants a content: the title stands in.
		m.Content = a.Title
	}
	return nil
}
