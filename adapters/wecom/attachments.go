package wecom

// Attachment kinds of welcome messages and message tasks.
const (
	AttachImage       = "image"
	AttachLink        = "link"
	AttachMiniProgram = "miniprogram"
	AttachVideo       = "video"
	AttachFile        = "file"
)

// Attachment is a non-text part of a welcome message or message task.
type Attachment struct {
	// Kind is AttachImage, AttachLink, AttachMiniProgram, AttachVideo or
	// AttachFile.
	Kind string
	// MediaID is the image, video or file media id, or the miniprogram
	// cover (pic_media_id).
	MediaID string
	// PicURL is an image's URL (instead of MediaID) or a link's cover.
	PicURL string
	// Title is a link's or miniprogram's title; Desc and URL are a link's.
	Title string
	Desc  string
	URL   string
	// AppID and Page are a miniprogram's.
	AppID string
	Page  string
}

// maxAttachments is WeCom's limit for welcome messages and message tasks.
const maxAttachments = 9

type wireText struct {
	Content string `json:"content"`
}

type wireMedia struct {
	MediaID string `json:"media_id,omitempty"`
	PicURL  string `json:"pic_url,omitempty"`
}

type wireLink struct {
	Title  string `json:"title"`
	PicURL string `json:"picurl,omitempty"`
	Desc   string `json:"desc,omitempty"`
	URL    string `json:"url"`
}

type wireMiniProgram struct {
	Title      string `json:"title"`
	PicMediaID string `json:"pic_media_id"`
	AppID      string `json:"appid"`
	Page       string `json:"page"`
}

type wireAttachment struct {
	MsgType     string           `json:"msgtype"`
	Image       *wireMedia       `json:"image,omitempty"`
	Link        *wireLink        `json:"link,omitempty"`
	MiniProgram *wireMiniProgram `json:"miniprogram,omitempty"`
	Video       *wireMedia       `json:"video,omitempty"`
	File        *wireMedia       `json:"file,omitempty"`
}

// attachment reads a wire attachment back.
func (w wireAttachment) attachment() Attachment {
	a := Attachment{Kind: w.MsgType}
	switch {
	case w.Image != nil:
		a.MediaID, a.PicURL = w.Image.MediaID, w.Image.PicURL
	case w.Link != nil:
		a.Title, a.PicURL, a.Desc, a.URL = w.Link.Title, w.Link.PicURL, w.Link.Desc, w.Link.URL
	case w.MiniProgram != nil:
		a.Title, a.MediaID, a.AppID, a.Page = w.MiniProgram.Title, w.MiniProgram.PicMediaID, w.MiniProgram.AppID, w.MiniProgram.Page
	case w.Video != nil:
		a.MediaID = w.Video.MediaID
	case w.File != nil:
		a.MediaID = w.File.MediaID
	}
	return a
}

func wireAttachments(op string, atts []Attachment) ([]wireAttachment, error) {
	if len(atts) > maxAttachments {
		return nil, invalidRequest(op, "%d attachments, at most %d", len(atts), maxAttachments)
	}
	out := make([]wireAttachment, 0, len(atts))
	for i, at := range atts {
		w := wireAttachment{MsgType: at.Kind}
		switch at.Kind {
		case AttachImage:
			if at.MediaID == "" && at.PicURL == "" {
				return nil, invalidRequest(op, "attachment %d: image needs a media id or a picture url", i)
			}
			w.Image = &wireMedia{MediaID: at.MediaID, PicURL: at.PicURL}
		case AttachLink:
			if at.Title == "" || at.URL == "" {
				return nil, invalidRequest(op, "attachment %d: link needs a title and a url", i)
			}
			w.Link = &wireLink{Title: at.Title, PicURL: at.PicURL, Desc: at.Desc, URL: at.URL}
		case AttachMiniProgram:
			if at.Title == "" || at.MediaID == "" || at.AppID == "" || at.Page == "" {
				return nil, invalidRequest(op, "attachment %d: miniprogram needs a title, cover media id, appid and page", i)
			}
			w.MiniProgram = &wireMiniProgram{Title: at.Title, PicMediaID: at.MediaID, AppID: at.AppID, Page: at.Page}
		case AttachVideo, AttachFile:
			if at.MediaID == "" {
				return nil, invalidRequest(op, "attachment %d: %s needs a media id", i, at.Kind)
			}
			if at.Kind == AttachVideo {
				w.Video = &wireMedia{MediaID: at.MediaID}
			} else {
				w.File = &wireMedia{MediaID: at.MediaID}
			}
		default:
			return nil, invalidRequest(op, "attachment %d: unknown kind %q", i, at.Kind)
		}
		out = append(out, w)
	}
	return out, nil
}
