package wechatoa

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/silenceper/wechat/v2/officialaccount/message"

	"github.com/scrmgw/scrmgw/adapters"
)

// API paths of the sends.
const (
	apiCustomSend   = "/cgi-bin/message/custom/send"
	apiTemplateSend = "/cgi-bin/message/template/send"
)

// Window is WeChat's customer-service window: an account may send a
// follower customer-service messages for 48 hours after they last wrote,
// clicked the menu, followed or scanned its code.
const Window = 48 * time.Hour

// memberKinds are the kinds customer-service messages carry.
var memberKinds = []string{adapters.KindText, adapters.KindImage, adapters.KindNews, adapters.KindMiniProgram}

// maxTextBytes is WeChat's limit on a customer-service text.
const maxTextBytes = 2048

// Spec is the channel's Spec: customer-service messages (text, image,
// news, mini program page) to members within the 48-hour window,
// template messages outside it; nothing to guides, who are not on the
// account. 20 a second stays well below the account's daily quota.
func Spec() adapters.Spec {
	return adapters.Spec{Name: ChannelName, MemberKinds: slices.Clone(memberKinds),
		Window: Window, OutsideKinds: []string{adapters.KindTemplate},
		Rate: adapters.Rate{N: 20, Per: time.Second}, MaxTextBytes: maxTextBytes,
		Preview: func(m *adapters.Outbound) (*adapters.Request, error) { return preview(nil, true, m) }}
}

// preview is the request a send of m makes, with the account's template
// mapping; anyAccount shows a template message without one (by its
// scrmgw template's name). A picture named by URL shows the URL where
// the send carries its uploaded media id.
func preview(templates map[string]Template, anyAccount bool, m *adapters.Outbound) (*adapters.Request, error) {
	asIs := func(_ context.Context, _, src, _ string) (string, error) { return src, nil }
	r, err := build(context.Background(), templates, anyAccount, m, asIs)
	if err != nil {
		return nil, err
	}
	b, err := adapters.MarshalBody(r.body)
	if err != nil {
		return nil, err
	}
	return &adapters.Request{API: strings.TrimPrefix(r.api, "/cgi-bin/"), Body: b}, nil
}

// mediaFunc returns the media id a message carries for a picture: src
// itself when it is a media id; an uploaded URL's media id for Send, the
// URL itself for a preview.
type mediaFunc func(ctx context.Context, typ, src, filename string) (string, error)

// built is the API call that sends a message.
type built struct {
	api  string
	body any
	// media are the picture URLs the body carries as uploaded media ids.
	media []string
}

// picture resolves the picture named by the first of fields that is set:
// a media id or a URL in a media id field, a URL in picurl.
func (r *built) picture(ctx context.Context, m *adapters.Outbound, resolve mediaFunc, fields ...string) (string, error) {
	for _, f := range fields {
		src := strings.TrimSpace(m.Fields[f])
		if src == "" {
			continue
		}
		switch {
		case adapters.IsURL(src):
			r.media = append(r.media, src)
		case f == "picurl":
			return "", fmt.Errorf("picurl %q is not an http(s) link: %w", src, adapters.ErrInvalidMessage)
		}
		return resolve(ctx, MediaImage, src, "")
	}
	return "", nil
}

// build builds the API call that sends m (anyAccount: as a preview
// without an account's template mapping), its pictures resolved.
func build(ctx context.Context, templates map[string]Template, anyAccount bool, m *adapters.Outbound, resolve mediaFunc) (*built, error) {
	if m.ToParty == adapters.PartyGuide {
		return nil, fmt.Errorf("wechat oa sends members only: %w", adapters.ErrInvalidMessage)
	}
	f := m.Fields
	r := &built{api: apiCustomSend}
	cm := &message.CustomerMessage{ToUser: m.To}
	switch m.Kind {
	case adapters.KindText:
		if m.Text == "" {
			return nil, fmt.Errorf("empty text: %w", adapters.ErrInvalidMessage)
		}
		cm.Msgtype, cm.Text = message.MsgTypeText, &message.MediaText{Content: cutText(m.Text)}
	case adapters.KindImage:
		id, err := r.picture(ctx, m, resolve, "media_id", "picurl")
		if err != nil {
			return nil, err
		}
		if id == "" {
			return nil, fmt.Errorf("an image on wechat oa needs media_id or picurl: %w", adapters.ErrInvalidMessage)
		}
		cm.Msgtype, cm.Image = message.MsgTypeImage, &message.MediaResource{MediaID: id}
	case adapters.KindNews:
		if f["title"] == "" || f["url"] == "" {
			return nil, fmt.Errorf("news needs title and url: %w", adapters.ErrInvalidMessage)
		}
		desc := f["description"]
		if desc == "" {
			desc = m.Text
		}
		cm.Msgtype, cm.News = message.MsgTypeNews, &message.MediaNews{Articles: []message.MediaArticles{
			{Title: f["title"], Description: desc, URL: f["url"], Picurl: f["picurl"]}}}
	case adapters.KindMiniProgram:
		if f["appid"] == "" || f["page"] == "" || f["pic_media_id"] == "" && f["picurl"] == "" {
			return nil, fmt.Errorf("a mini program page on wechat oa needs appid, page and pic_media_id or picurl: %w", adapters.ErrInvalidMessage)
		}
		thumb, err := r.picture(ctx, m, resolve, "pic_media_id", "picurl")
		if err != nil {
			return nil, err
		}
		cm.Msgtype, cm.Miniprogrampage = message.MsgTypeMiniprogrampage, &message.MediaMiniprogrampage{
			Title: f["title"], AppID: f["appid"], Pagepath: f["page"], ThumbMediaID: thumb}
	case adapters.KindTemplate:
		t, err := templateMessage(templates, anyAccount, m)
		if err != nil {
			return nil, err
		}
		return &built{api: apiTemplateSend, body: t}, nil
	default:
		return nil, fmt.Errorf("wechat oa does not send %s: %w", m.Kind, adapters.ErrInvalidMessage)
	}
	r.body = cm
	return r, nil
}

// templateBody is a template message (message/template/send).
type templateBody struct {
	ToUser      string                   `json:"touser"`
	TemplateID  string                   `json:"template_id"`
	URL         string                   `json:"url,omitempty"`
	Data        map[string]templateValue `json:"data"`
	ClientMsgID string                   `json:"client_msg_id,omitempty"`
}

type templateValue struct {
	Value string `json:"value"`
}

// templateMessage maps a message rendered from a scrmgw template onto
// the account's template message standing in for it.
func templateMessage(templates map[string]Template, anyAccount bool, m *adapters.Outbound) (*templateBody, error) {
	name := m.Fields["template"]
	if anyAccount {
		// A preview without an account: the template by name.
		return &templateBody{ToUser: m.To, TemplateID: "<" + name + ">", Data: map[string]templateValue{"text": {m.Text}}}, nil
	}
	t, ok := templates[name]
	if !ok {
		return nil, fmt.Errorf("no template message stands in for %q outside the 48-hour window (wechat_oa.templates): %w", name, adapters.ErrInvalidMessage)
	}
	part := func(v string) string {
		ref, ok := strings.CutPrefix(v, "$")
		if !ok {
			return v
		}
		if ref == "text" {
			return m.Text
		}
		if ref == "description" && m.Fields[ref] == "" {
			return m.Text
		}
		return m.Fields[ref]
	}
	out := &templateBody{ToUser: m.To, TemplateID: t.TemplateID, URL: part(t.URL), Data: map[string]templateValue{},
		ClientMsgID: clientMsgID(m.IdempotencyKey)}
	for _, k := range slices.Sorted(maps.Keys(t.Data)) {
		out.Data[k] = templateValue{Value: part(t.Data[k])}
	}
	return out, nil
}

// clientMsgID is the idempotency key as WeChat's client_msg_id (at most
// 64 characters; WeChat sends one message per follower and id).
func clientMsgID(key string) string {
	if len(key) <= 64 {
		return key
	}
	return key[:32] + key[len(key)-32:]
}

// cutText cuts a text to WeChat's limit on a rune boundary.
func cutText(s string) string {
	if len(s) <= maxTextBytes {
		return s
	}
	s = s[:maxTextBytes]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// Send sends m: a customer-service message, or a template message
// (adapters.KindTemplate, which the engine chooses outside the window).
// Pictures named by URL (picurl) are fetched and uploaded first, once
// per URL while WeChat keeps them (adapters.Media); one WeChat no longer
// knows (40007) is uploaded again on the retry.
func (c *Client) Send(ctx context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	r, err := build(ctx, c.cfg.Templates, false, m, c.media.Resolve)
	if err != nil {
		return nil, err
	}
	var out struct {
		apiError
		MsgID int64 `json:"msgid"`
	}
	if err := c.call(ctx, r.api, nil, r.body, &out); err != nil {
		if len(r.media) > 0 && mediaRefused(err) {
			for _, src := range r.media {
				c.media.Forget(ctx, MediaImage, src)
			}
			// Not wrapping err: its APIError would make it permanent.
			return nil, fmt.Errorf("sending %s to a follower: %s (an uploaded picture expired; it is uploaded again on retry): %w", m.Kind, err.Error(), adapters.ErrTemporary)
		}
		return nil, fmt.Errorf("sending %s to a follower: %w", m.Kind, err)
	}
	rc := &adapters.Receipt{}
	if out.MsgID != 0 {
		rc.ExternalID = fmt.Sprint(out.MsgID)
	}
	return rc, nil
}

// specFor is the instance's Spec, its previews with its template mapping.
func (c *Client) specFor() adapters.Spec {
	s := Spec()
	s.Name = c.key
	s.Preview = func(m *adapters.Outbound) (*adapters.Request, error) { return preview(c.cfg.Templates, false, m) }
	return s
}
