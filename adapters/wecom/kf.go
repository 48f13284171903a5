package wecom

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/silenceper/wechat/v2/util"

	"github.com/scrmgw/scrmgw/adapters"
)

// kfOriginCustomer marks kf messages sent by the WeChat user (the member);
// 4 is system events, 5 the servicer's own messages.
const kfOriginCustomer = 3

// kfPageSize is how many messages one sync_msg call asks for (WeCom's
// maximum is 1000).
const kfPageSize = 1000

// Expand pulls the customer-service messages a kf_msg_or_event announced
// (kf/sync_msg from the stored cursor) and records each member message as
// its own delivery, keyed by its msgid; the cursor is saved after each
// page is recorded, so a crash re-reads at most one page, which the inbox
// then ignores.
func (c *Client) Expand(ctx context.Context, in *adapters.Inbound) (bool, error) {
	if in.Channel != c.key || in.Event != "kf.notify" {
		return false, nil
	}
	openKfID := in.Attrs["open_kfid"]
	key := "wecom:kf:" + c.cfg.CorpID + ":" + openKfID
	cursor, err := c.cursors.Cursor(ctx, key)
	if err != nil {
		return true, fmt.Errorf("reading kf cursor: %w", err)
	}
	for pages := 0; pages < 100; pages++ {
		page, err := c.api.KFSyncMsg(ctx, cursor, in.Attrs["token"], openKfID, kfPageSize)
		if err != nil {
			return true, fmt.Errorf("syncing kf messages: %w", err)
		}
		for i := range page.Messages {
			msg := c.kfInbound(&page.Messages[i])
			if msg == nil {
				continue
			}
			if err := c.rec.Record(ctx, msg); err != nil {
				return true, fmt.Errorf("recording kf message: %w", err)
			}
		}
		if page.NextCursor != "" {
			cursor = page.NextCursor
			if err := c.cursors.SetCursor(ctx, key, cursor); err != nil {
				return true, fmt.Errorf("saving kf cursor: %w", err)
			}
		}
		if !page.HasMore {
			return true, nil
		}
	}
	c.log.Warn("kf sync stopped after 100 pages; the next notification continues", slog.String("open_kfid", openKfID))
	return true, nil
}

// kfInbound maps a member's kf message, of the brand of its account
// (Config.KFBrands); system events and our own messages are nil.
func (c *Client) kfInbound(m *KFMessage) *adapters.Inbound {
	if m.Origin != kfOriginCustomer || m.MsgID == "" {
		return nil
	}
	in := &adapters.Inbound{Channel: c.key, DedupKey: "kfmsg:" + m.MsgID, Brand: c.cfg.KFBrand(m.OpenKfID), From: adapters.PartyMember,
		SenderID: m.ExternalUserID, ConversationID: m.OpenKfID, Kind: m.MsgType, At: time.Unix(m.SendTime, 0).UTC(),
		ReplyTo: map[string]string{"open_kfid": m.OpenKfID}}
	switch m.MsgType {
	case MsgTypeText:
		in.Text = m.Text
	case MsgTypeLocation:
		in.Location = &adapters.Location{Lat: m.Latitude, Lng: m.Longitude, Label: m.LocationName}
	case MsgTypeImage:
		in.Attrs = map[string]string{"media_id": m.MediaID}
	default:
		in.Attrs = map[string]string{"msg_type": m.MsgType}
	}
	return in
}

// ---- WeChat customer service (微信客服, kf) ----

// Origins of kf messages.
const (
	KFOriginCustomer = 3 // sent by the WeChat customer
	KFOriginEvent    = 4 // an event pushed by the system
	KFOriginServicer = 5 // sent by a servicer from the WeCom client
)

// KFMessage is a message or event read with kf/sync_msg.
type KFMessage struct {
	MsgID          string
	OpenKfID       string
	ExternalUserID string
	ServicerUserID string
	// SendTime is when it was sent, in Unix seconds.
	SendTime int64
	// Origin is KFOriginCustomer, KFOriginEvent or KFOriginServicer.
	Origin int
	// MsgType is text, image, voice, video, file, location, link,
	// business_card, miniprogram, msgmenu, event, ...
	MsgType string
	// Text is a text message's content; MenuID is set when the customer
	// clicked a menu item.
	Text   string
	MenuID string
	// MediaID is an image, voice, video or file message's media.
	MediaID string
	// Latitude, Longitude (WGS-84 degrees as WeChat sends them),
	// LocationName and LocationAddress are a location message's.
	Latitude        float64
	Longitude       float64
	LocationName    string
	LocationAddress string
	Event           *KFEvent
	// Raw is the message as WeCom sent it, for kinds not decoded here.
	Raw json.RawMessage
}

// KFEvent is an event of kf/sync_msg (enter_session, msg_send_fail,
// servicer_status_change, session_status_change, user_recall_msg, ...).
type KFEvent struct {
	Type string
	// Scene and SceneParam come with enter_session from a kf link.
	Scene      string
	SceneParam string
	// WelcomeCode, with enter_session, allows one welcome via
	// kf/send_msg_on_event.
	WelcomeCode string
	// FailMsgID and FailType come with msg_send_fail.
	FailMsgID string
	FailType  int
	// ChangeType, OldServicerUserID, NewServicerUserID and MsgCode come
	// with session_status_change.
	ChangeType        int
	OldServicerUserID string
	NewServicerUserID string
	MsgCode           string
	ServicerUserID    string
	Status            int
	RecallMsgID       string
}

// KFSyncPage is one page of kf/sync_msg.
type KFSyncPage struct {
	Messages []KFMessage
	// NextCursor goes in the next call; store it.
	NextCursor string
	// HasMore says another page is waiting, even when Messages is empty.
	HasMore bool
}

type kfSyncRequest struct {
	Cursor   string `json:"cursor,omitempty"`
	Token    string `json:"token,omitempty"`
	Limit    int    `json:"limit,omitempty"`
	OpenKfID string `json:"open_kfid,omitempty"`
}

type kfSyncResponse struct {
	util.CommonError
	NextCursor string            `json:"next_cursor"`
	HasMore    int               `json:"has_more"`
	MsgList    []json.RawMessage `json:"msg_list"`
}

type kfWireMessage struct {
	MsgID          string `json:"msgid"`
	OpenKfID       string `json:"open_kfid"`
	ExternalUserID string `json:"external_userid"`
	ServicerUserID string `json:"servicer_userid"`
	SendTime       int64  `json:"send_time"`
	Origin         int    `json:"origin"`
	MsgType        string `json:"msgtype"`
	Text           *struct {
		Content string `json:"content"`
		MenuID  string `json:"menu_id"`
	} `json:"text"`
	Image    *wireMedia `json:"image"`
	Voice    *wireMedia `json:"voice"`
	Video    *wireMedia `json:"video"`
	File     *wireMedia `json:"file"`
	Location *struct {
		Latitude  float64 `json:"latitude"`
		Longitude float64 `json:"longitude"`
		Name      string  `json:"name"`
		Address   string  `json:"address"`
	} `json:"location"`
	Event *struct {
		EventType         string `json:"event_type"`
		OpenKfID          string `json:"open_kfid"`
		ExternalUserID    string `json:"external_userid"`
		Scene             string `json:"scene"`
		SceneParam        string `json:"scene_param"`
		WelcomeCode       string `json:"welcome_code"`
		FailMsgID         string `json:"fail_msgid"`
		FailType          int    `json:"fail_type"`
		ServicerUserID    string `json:"servicer_userid"`
		Status            int    `json:"status"`
		ChangeType        int    `json:"change_type"`
		OldServicerUserID string `json:"old_servicer_userid"`
		NewServicerUserID string `json:"new_servicer_userid"`
		MsgCode           string `json:"msg_code"`
		RecallMsgID       string `json:"recall_msgid"`
	} `json:"event"`
}

func (w *kfWireMessage) message(raw json.RawMessage) KFMessage {
	m := KFMessage{
		MsgID:          w.MsgID,
		OpenKfID:       w.OpenKfID,
		ExternalUserID: w.ExternalUserID,
		ServicerUserID: w.ServicerUserID,
		SendTime:       w.SendTime,
		Origin:         w.Origin,
		MsgType:        w.MsgType,
		Raw:            raw,
	}
	if w.Text != nil {
		m.Text, m.MenuID = w.Text.Content, w.Text.MenuID
	}
	for _, media := range []*wireMedia{w.Image, w.Voice, w.Video, w.File} {
		if media != nil {
			m.MediaID = media.MediaID
		}
	}
	if l := w.Location; l != nil {
		m.Latitude, m.Longitude, m.LocationName, m.LocationAddress = l.Latitude, l.Longitude, l.Name, l.Address
	}
	if e := w.Event; e != nil {
		m.Event = &KFEvent{
			Type:              e.EventType,
			Scene:             e.Scene,
			SceneParam:        e.SceneParam,
			WelcomeCode:       e.WelcomeCode,
			FailMsgID:         e.FailMsgID,
			FailType:          e.FailType,
			ChangeType:        e.ChangeType,
			OldServicerUserID: e.OldServicerUserID,
			NewServicerUserID: e.NewServicerUserID,
			MsgCode:           e.MsgCode,
			ServicerUserID:    e.ServicerUserID,
			Status:            e.Status,
			RecallMsgID:       e.RecallMsgID,
		}
		// Events carry the account and customer inside the event.
		if m.OpenKfID == "" {
			m.OpenKfID = e.OpenKfID
		}
		if m.ExternalUserID == "" {
			m.ExternalUserID = e.ExternalUserID
		}
		if m.ServicerUserID == "" {
			m.ServicerUserID = e.ServicerUserID
		}
	}
	return m
}

// maxKFSyncLimit is WeCom's largest (and default) page size.
const maxKFSyncLimit = 1000

// KFSyncMsg reads one page of customer-service messages (kf/sync_msg)
// from cursor (empty the first time), for the account openKfID. token is
// the Token of the kf_msg_or_event callback (valid 10 minutes); without it
// WeCom limits the call's frequency strictly. limit is capped at 1000 (0
// means 1000).
func (a *API) KFSyncMsg(ctx context.Context, cursor, token, openKfID string, limit int) (*KFSyncPage, error) {
	const op = "reading kf messages"
	if limit <= 0 || limit > maxKFSyncLimit {
		limit = maxKFSyncLimit
	}
	req := kfSyncRequest{Cursor: cursor, Token: token, Limit: limit, OpenKfID: openKfID}
	var res kfSyncResponse
	if err := a.post(ctx, a.appTok, op, "kf/sync_msg", req, &res); err != nil {
		return nil, err
	}
	page := &KFSyncPage{NextCursor: res.NextCursor, HasMore: res.HasMore == 1}
	for _, raw := range res.MsgList {
		var w kfWireMessage
		if err := json.Unmarshal(raw, &w); err != nil {
			return nil, fmt.Errorf("%s: %w", op, unreadable(err))
		}
		page.Messages = append(page.Messages, w.message(raw))
	}
	return page, nil
}

// KFLink is a link card sent with kf/send_msg.
type KFLink struct {
	Title        string `json:"title"`
	Desc         string `json:"desc,omitempty"`
	URL          string `json:"url"`
	ThumbMediaID string `json:"thumb_media_id"`
}

// KFMiniProgram is a miniprogram card sent with kf/send_msg.
type KFMiniProgram struct {
	AppID        string `json:"appid"`
	Title        string `json:"title,omitempty"`
	ThumbMediaID string `json:"thumb_media_id"`
	PagePath     string `json:"pagepath"`
}

type kfSendRequest struct {
	ToUser      string         `json:"touser"`
	OpenKfID    string         `json:"open_kfid"`
	MsgID       string         `json:"msgid,omitempty"`
	MsgType     string         `json:"msgtype"`
	Text        *wireText      `json:"text,omitempty"`
	Image       *wireMedia     `json:"image,omitempty"`
	File        *wireMedia     `json:"file,omitempty"`
	Link        *KFLink        `json:"link,omitempty"`
	MiniProgram *KFMiniProgram `json:"miniprogram,omitempty"`
}

type kfSendResponse struct {
	util.CommonError
	MsgID string `json:"msgid"`
}

// kfMsgIDRE is WeCom's format of a caller-chosen kf msgid.
var kfMsgIDRE = regexp.MustCompile(`^[0-9a-zA-Z_-]{1,32}$`)

func (a *API) kfSend(ctx context.Context, op string, req kfSendRequest) (string, error) {
	if req.ToUser == "" {
		return "", noRecipient(op, "external user id")
	}
	if req.OpenKfID == "" {
		return "", invalidRequest(op, "no open_kfid")
	}
	if req.MsgID != "" && !kfMsgIDRE.MatchString(req.MsgID) {
		return "", invalidRequest(op, "msgid %q is not 1-32 characters of [0-9a-zA-Z_-] ", req.MsgID)
	}
	var res kfSendResponse
	if err := a.post(ctx, a.appTok, op, apiKFSend, req, &res); err != nil {
		return "", err
	}
	return res.MsgID, nil
}

// KFSendMsg sends a text to a customer in a customer-service session
// (kf/send_msg): possible within 48 hours of the customer's last message,
// at most 5 messages, while the session is new or with the bot; otherwise
// WeCom answers 95018, ErrInvalidRecipient. msgID is optional: at most 32
// characters of [0-9a-zA-Z_-], unique within the kf account, so that
// WeCom refuses a retry instead of sending twice (derive it from the
// idempotency key). WeCom returns the msgid it used.
func (a *API) KFSendMsg(ctx context.Context, toExternalUserID, openKfID, msgID, text string) (string, error) {
	const op = "sending kf text"
	if text == "" {
		return "", invalidRequest(op, "empty text")
	}
	return a.kfSend(ctx, op, kfSendRequest{ToUser: toExternalUserID, OpenKfID: openKfID, MsgID: msgID, MsgType: "text", Text: &wireText{Content: text}})
}

// KFSendLink sends a link card in a customer-service session, under the
// same conditions as KFSendMsg.
func (a *API) KFSendLink(ctx context.Context, toExternalUserID, openKfID, msgID string, link KFLink) (string, error) {
	const op = "sending kf link"
	if link.Title == "" || link.URL == "" || link.ThumbMediaID == "" {
		return "", invalidRequest(op, "a link needs a title, a url and a thumb media id")
	}
	return a.kfSend(ctx, op, kfSendRequest{ToUser: toExternalUserID, OpenKfID: openKfID, MsgID: msgID, MsgType: "link", Link: &link})
}

// KFSendMiniProgram sends a miniprogram card in a customer-service
// session, under the same conditions as KFSendMsg.
func (a *API) KFSendMiniProgram(ctx context.Context, toExternalUserID, openKfID, msgID string, mp KFMiniProgram) (string, error) {
	const op = "sending kf miniprogram"
	if mp.AppID == "" || mp.ThumbMediaID == "" || mp.PagePath == "" {
		return "", invalidRequest(op, "a miniprogram needs an appid, a thumb media id and a page path")
	}
	return a.kfSend(ctx, op, kfSendRequest{ToUser: toExternalUserID, OpenKfID: openKfID, MsgID: msgID, MsgType: "miniprogram", MiniProgram: &mp})
}
