package wecom

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scrmgw/scrmgw/adapters"
)

// This file turns an adapters.Outbound into the WeCom request that sends
// it. Client.Send and Spec's Preview share it, so a preview is exactly
// what WeCom receives, save the media ids of uploaded pictures and files,
// which a preview shows as their source URL.

// The WeCom APIs Send posts to, as adapters.Request.API names them.
const (
	apiSendWelcome    = "externalcontact/send_welcome_msg"
	apiAddMsgTemplate = "externalcontact/add_msg_template"
	apiMessageSend    = "message/send"
	apiKFSend         = "kf/send_msg"
)

// Kinds each route carries (see Spec).
var (
	// memberKinds go to a member through their guide (add_msg_template)
	// and in a welcome (send_welcome_msg): a text and one attachment.
	memberKinds = []string{adapters.KindText, adapters.KindNews, adapters.KindMiniProgram, adapters.KindImage, adapters.KindFile}
	// kfKinds go to a member in a customer-service session (kf/send_msg):
	// one message, without a text alongside.
	kfKinds = []string{adapters.KindText, adapters.KindNews, adapters.KindMiniProgram, adapters.KindImage, adapters.KindFile}
	// guideKinds go to a guide as app messages (message/send).
	guideKinds = []string{adapters.KindText, adapters.KindTextCard, adapters.KindNews, adapters.KindMarkdown}
)

// Field limits WeCom documents, in bytes of UTF-8 unless said otherwise.
// Titles and descriptions over them are cut (on a character boundary), as
// WeCom does itself for app news; links over them and texts over them are
// refused, since a cut link or text is broken.
const (
	maxTaskTextBytes  = 4000 // add_msg_template, send_welcome_msg text.content
	maxLinkTitleBytes = 128  // link, news and textcard titles
	maxLinkDescBytes  = 512  // link desc, news and textcard descriptions
	maxURLBytes       = 2048 // url, picurl
	maxMiniTitleBytes = 64   // miniprogram title
	maxBtnTxtRunes    = 4    // textcard btntxt, in characters
)

// builtRequest is a request ready to post: Body is a *welcomeRequest,
// *msgTemplateRequest, *appMessageRequest or *kfSendRequest.
type builtRequest struct {
	API  string
	Body any
	// Media are the uploaded sources the body carries.
	Media []mediaSource
}

// mediaSource is a picture or file a message names by URL.
type mediaSource struct {
	typ string
	src string
}

// mediaFunc returns the media id the request carries for a picture or
// file: src itself when it is a media id; an uploaded URL's media id for
// Send, the URL itself for Preview.
type mediaFunc func(ctx context.Context, typ, src, filename string) (string, error)

// builder builds one request; it records the URLs it resolves.
type builder struct {
	ctx     context.Context
	m       *adapters.Outbound
	resolve mediaFunc
	media   []mediaSource
}

func invalidMessage(format string, args ...any) error {
	return fmt.Errorf("%w: %s", adapters.ErrInvalidMessage, fmt.Sprintf(format, args...))
}

// buildRequest builds the request that sends m. agentID is the app's (0
// in a credential-free preview). Errors wrap adapters.ErrInvalidMessage
// for a message the route cannot carry, adapters.ErrInvalidRecipient when
// there is no route, and what resolve returned.
func buildRequest(ctx context.Context, m *adapters.Outbound, agentID int, resolve mediaFunc) (*builtRequest, error) {
	b := &builder{ctx: ctx, m: m, resolve: resolve}
	var (
		req *builtRequest
		err error
	)
	switch {
	case m.Fields["welcome_code"] != "":
		req, err = b.welcome()
	case m.ToParty == adapters.PartyGuide:
		req, err = b.appMessage(agentID)
	case m.ReplyTo["open_kfid"] != "":
		req, err = b.kf()
	case m.Via != "":
		req, err = b.task()
	default:
		return nil, &adapters.APIError{Channel: ChannelName, Message: "no route to the member: send through their guide (via) or in a customer-service session",
			Kind: adapters.ErrInvalidRecipient}
	}
	if err != nil {
		return nil, err
	}
	req.Media = b.media
	return req, nil
}

func (b *builder) kind() string {
	if b.m.Kind == "" {
		return adapters.KindText
	}
	return b.m.Kind
}

func (b *builder) field(name string) string { return strings.TrimSpace(b.m.Fields[name]) }

// need returns the named fields, or an error naming the missing ones.
func (b *builder) need(names ...string) error {
	var missing []string
	for _, n := range names {
		if b.field(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return invalidMessage("a WeCom %s needs %s", b.kind(), strings.Join(missing, ", "))
	}
	return nil
}

// media resolves the picture or file named by the first non-empty field.
func (b *builder) mediaOf(typ string, fields ...string) (string, error) {
	for _, f := range fields {
		src := b.field(f)
		if src == "" {
			continue
		}
		switch {
		case adapters.IsURL(src):
			if err := checkURL(f, src); err != nil {
				return "", err
			}
			b.media = append(b.media, mediaSource{typ: typ, src: src})
		case f == "picurl" || f == "url":
			// Only the media id fields may name a media id.
			return "", checkURL(f, src)
		}
		return b.resolve(b.ctx, typ, src, b.field("filename"))
	}
	return "", invalidMessage("a WeCom %s needs %s", b.kind(), strings.Join(fields, " or "))
}

// checkURL refuses a link WeCom would not take.
func checkURL(field, u string) error {
	if len(u) > maxURLBytes {
		return invalidMessage("%s is %d bytes, WeCom takes at most %d", field, len(u), maxURLBytes)
	}
	if !adapters.IsURL(u) {
		return invalidMessage("%s %q is not an http(s) link", field, u)
	}
	return nil
}

// clip cuts s to at most n bytes on a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

func unsupported(kind, route string, kinds []string) error {
	return invalidMessage("WeCom cannot send a %s %s (it carries %s)", kind, route, strings.Join(kinds, ", "))
}

// attachments builds the text and attachment of a welcome or a message
// task.
func (b *builder) attachments(route string) (*wireText, []wireAttachment, error) {
	var text *wireText
	if t := b.m.Text; strings.TrimSpace(t) != "" {
		if len(t) > maxTaskTextBytes {
			return nil, nil, invalidMessage("the text is %d bytes, WeCom takes at most %d %s", len(t), maxTaskTextBytes, route)
		}
		text = &wireText{Content: t}
	}
	var att wireAttachment
	switch k := b.kind(); k {
	case adapters.KindText:
		if text == nil {
			return nil, nil, invalidMessage("empty text")
		}
		return text, nil, nil
	case adapters.KindNews:
		if err := b.need("title", "url"); err != nil {
			return nil, nil, err
		}
		link := &wireLink{Title: clip(b.field("title"), maxLinkTitleBytes), Desc: clip(b.field("description"), maxLinkDescBytes), URL: b.field("url")}
		if err := checkURL("url", link.URL); err != nil {
			return nil, nil, err
		}
		if pic := b.field("picurl"); pic != "" {
			if err := checkURL("picurl", pic); err != nil {
				return nil, nil, err
			}
			link.PicURL = pic
		}
		att = wireAttachment{MsgType: AttachLink, Link: link}
	case adapters.KindMiniProgram:
		if err := b.need("title", "appid", "page"); err != nil {
			return nil, nil, err
		}
		cover, err := b.mediaOf(MediaImage, "pic_media_id", "picurl")
		if err != nil {
			return nil, nil, err
		}
		att = wireAttachment{MsgType: AttachMiniProgram, MiniProgram: &wireMiniProgram{
			Title: clip(b.field("title"), maxMiniTitleBytes), PicMediaID: cover, AppID: b.field("appid"), Page: b.field("page")}}
	case adapters.KindImage:
		id, err := b.mediaOf(MediaImage, "media_id", "picurl")
		if err != nil {
			return nil, nil, err
		}
		att = wireAttachment{MsgType: AttachImage, Image: &wireMedia{MediaID: id}}
	case adapters.KindFile:
		id, err := b.mediaOf(MediaFile, "media_id", "url")
		if err != nil {
			return nil, nil, err
		}
		att = wireAttachment{MsgType: AttachFile, File: &wireMedia{MediaID: id}}
	default:
		return nil, nil, unsupported(k, route, memberKinds)
	}
	return text, []wireAttachment{att}, nil
}

func (b *builder) welcome() (*builtRequest, error) {
	text, atts, err := b.attachments("in a welcome")
	if err != nil {
		return nil, err
	}
	return &builtRequest{API: apiSendWelcome, Body: &welcomeRequest{WelcomeCode: b.m.Fields["welcome_code"], Text: text, Attachments: atts}}, nil
}

func (b *builder) task() (*builtRequest, error) {
	if b.m.To == "" {
		return nil, noRecipient("adding message task", "external user id")
	}
	text, atts, err := b.attachments("to a member through their guide")
	if err != nil {
		return nil, err
	}
	return &builtRequest{API: apiAddMsgTemplate, Body: &msgTemplateRequest{ChatType: "single", ExternalUserID: []string{b.m.To},
		Sender: b.m.Via, Text: text, Attachments: atts}}, nil
}

func (b *builder) appMessage(agentID int) (*builtRequest, error) {
	req := &appMessageRequest{ToUser: b.m.To, AgentID: agentID}
	switch k := b.kind(); k {
	case adapters.KindText, adapters.KindMarkdown:
		if strings.TrimSpace(b.m.Text) == "" {
			return nil, invalidMessage("empty text")
		}
		if k == adapters.KindText {
			req.MsgType, req.Text = AppText, &wireText{Content: b.m.Text}
		} else {
			req.MsgType, req.Markdown = AppMarkdown, &wireText{Content: b.m.Text}
		}
	case adapters.KindTextCard:
		if err := b.need("title", "url"); err != nil {
			return nil, err
		}
		desc := b.m.Text
		if strings.TrimSpace(desc) == "" {
			desc = b.field("description")
		}
		if strings.TrimSpace(desc) == "" {
			return nil, invalidMessage("a WeCom textcard needs a text (its description)")
		}
		if err := checkURL("url", b.field("url")); err != nil {
			return nil, err
		}
		req.MsgType, req.TextCard = AppTextCard, &appTextCard{Title: clip(b.field("title"), maxLinkTitleBytes),
			Description: clip(desc, maxLinkDescBytes), URL: b.field("url"), BtnTxt: clipRunes(b.field("btntxt"), maxBtnTxtRunes)}
	case adapters.KindNews:
		if err := b.need("title", "url"); err != nil {
			return nil, err
		}
		a := appArticle{Title: clip(b.field("title"), maxLinkTitleBytes), Description: b.field("description"), URL: b.field("url"), PicURL: b.field("picurl")}
		if a.Description == "" {
			a.Description = strings.TrimSpace(b.m.Text)
		}
		a.Description = clip(a.Description, maxLinkDescBytes)
		if err := checkURL("url", a.URL); err != nil {
			return nil, err
		}
		if a.PicURL != "" {
			if err := checkURL("picurl", a.PicURL); err != nil {
				return nil, err
			}
		}
		req.MsgType, req.News = "news", &appNews{Articles: []appArticle{a}}
	default:
		return nil, unsupported(k, "to a guide", guideKinds)
	}
	return &builtRequest{API: apiMessageSend, Body: req}, nil
}

func (b *builder) kf() (*builtRequest, error) {
	req := &kfSendRequest{ToUser: b.m.To, OpenKfID: b.m.ReplyTo["open_kfid"], MsgID: kfMsgID(b.m.IdempotencyKey), MsgType: b.kind()}
	switch k := b.kind(); k {
	case adapters.KindText:
		if strings.TrimSpace(b.m.Text) == "" {
			return nil, invalidMessage("empty text")
		}
		req.Text = &wireText{Content: b.m.Text}
	case adapters.KindNews:
		if err := b.need("title", "url"); err != nil {
			return nil, err
		}
		if err := checkURL("url", b.field("url")); err != nil {
			return nil, err
		}
		if b.field("picurl") == "" {
			return nil, invalidMessage("a WeCom news in a customer-service session needs a picurl (its thumbnail)")
		}
		thumb, err := b.mediaOf(MediaImage, "picurl")
		if err != nil {
			return nil, err
		}
		desc := b.field("description")
		if desc == "" {
			desc = strings.TrimSpace(b.m.Text)
		}
		req.MsgType, req.Link = "link", &KFLink{Title: clip(b.field("title"), maxLinkTitleBytes), Desc: clip(desc, maxLinkDescBytes),
			URL: b.field("url"), ThumbMediaID: thumb}
	case adapters.KindMiniProgram:
		if err := b.need("title", "appid", "page"); err != nil {
			return nil, err
		}
		thumb, err := b.mediaOf(MediaImage, "pic_media_id", "picurl")
		if err != nil {
			return nil, err
		}
		req.MiniProgram = &KFMiniProgram{AppID: b.field("appid"), Title: clip(b.field("title"), maxMiniTitleBytes), ThumbMediaID: thumb, PagePath: b.field("page")}
	case adapters.KindImage:
		id, err := b.mediaOf(MediaImage, "media_id", "picurl")
		if err != nil {
			return nil, err
		}
		req.Image = &wireMedia{MediaID: id}
	case adapters.KindFile:
		id, err := b.mediaOf(MediaFile, "media_id", "url")
		if err != nil {
			return nil, err
		}
		req.File = &wireMedia{MediaID: id}
	default:
		return nil, unsupported(k, "in a customer-service session", kfKinds)
	}
	return &builtRequest{API: apiKFSend, Body: req}, nil
}

// previewMedia shows a source URL in place of the media id it would be
// uploaded as.
func previewMedia(_ context.Context, _, src, _ string) (string, error) { return src, nil }

func preview(m *adapters.Outbound, agentID int) (*adapters.Request, error) {
	req, err := buildRequest(context.Background(), m, agentID, previewMedia)
	if err != nil {
		return nil, err
	}
	body, err := adapters.MarshalBody(req.Body)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", req.API, err)
	}
	return &adapters.Request{API: req.API, Body: body}, nil
}

// Spec says what the WeCom channel sends, and previews its requests
// without credentials (the app's agentid shows as 0; Client.Spec fills
// in the configured one).
//
// MemberKinds are what reaches a member through their guide
// (externalcontact/add_msg_template, a message task the guide confirms):
// text; news as a link attachment (title, description, url, picurl);
// miniprogram (title, appid, page, and the cover as pic_media_id, a media
// id or a URL to upload, or picurl); image (picurl uploaded, or
// media_id); file (url uploaded, with filename, or media_id). Text, when
// set, goes along as the task's text. A welcome (send_welcome_msg, with a
// welcome_code field) carries the same. In a customer-service session
// (kf/send_msg, ReplyTo open_kfid) a message is one of text, news (a
// link, which needs a picurl for its thumbnail), miniprogram, image or
// file, and a Text beside a card is not sent (it stands in for a missing
// description).
//
// GuideKinds are app messages (message/send): text, markdown, textcard
// (Text as the description; title, url, btntxt) and news (one article:
// title, description, url, picurl).
//
// Anything else, or a missing field, is an error wrapping
// adapters.ErrInvalidMessage that says why.
func Spec() adapters.Spec { return spec(0) }

func spec(agentID int) adapters.Spec {
	return adapters.Spec{
		Name:        ChannelName,
		MemberKinds: append([]string(nil), memberKinds...),
		GuideKinds:  append([]string(nil), guideKinds...),
		// A group message is a message task of the group's owner
		// (add_msg_template, chat_type group): it carries what a
		// member's does.
		GroupKinds: append([]string(nil), memberKinds...),
		Preview:    func(m *adapters.Outbound) (*adapters.Request, error) { return preview(m, agentID) },
		// A member is reached through a message task of their guide's
		// WeCom user. 40/s: WeCom allows each corp 10,000 calls a minute
		// and 150,000 an hour of one API; the hourly figure, sustained,
		// is 41.7/s.
		ThroughGuide: true,
		Rate:         adapters.Rate{N: 40, Per: time.Second},
		Windows:      []adapters.Rate{{N: 10_000, Per: time.Minute}, {N: 150_000, Per: time.Hour}},
		// A text (app message or customer service) carries 2048 bytes.
		MaxTextBytes: 2048,
	}
}

// Spec is the channel's Spec, its previews carrying the configured
// agentid.
func (c *Client) Spec() adapters.Spec { return spec(c.api.agentID) }

var _ adapters.Specified = (*Client)(nil)
