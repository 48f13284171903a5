package wecom

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// CallbackPath is the URL to register as the default instance's "receive
// messages" URL (https://<your host>/callbacks/wecom); instance acme's is
// /callbacks/wecom/acme (CallbackPathOf).
const CallbackPath = "/callbacks/wecom"

// Routes mounts the instance's callback URL: GET for WeCom's URL
// verification, POST for messages and events. The default instance also
// answers at CallbackPath/default.
func (c *Client) Routes() []adapters.Route {
	paths := []string{CallbackPathOf(c.instance)}
	if c.instance == adapters.DefaultInstance {
		paths = append(paths, CallbackPath+"/"+adapters.DefaultInstance)
	}
	var rs []adapters.Route
	for _, p := range paths {
		rs = append(rs, adapters.Route{Method: http.MethodGet, Path: p, Handler: http.HandlerFunc(c.verifyURL)},
			adapters.Route{Method: http.MethodPost, Path: p, Handler: http.HandlerFunc(c.receive)})
	}
	return rs
}

// verifyURL answers WeCom's URL verification with the decrypted echostr.
func (c *Client) verifyURL(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !c.fresh(w, q.Get("timestamp")) {
		return
	}
	plain, err := c.crypto.VerifyURL(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), q.Get("echostr"))
	if err != nil {
		c.reject(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(plain)
}

// receive verifies, decrypts and parses a callback, records it durably,
// and only then answers "success"; everything slow happens from the queue.
// Anything that is not a valid callback for our corp is refused with a 4xx
// and recorded nowhere.
func (c *Client) receive(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !c.fresh(w, q.Get("timestamp")) {
		return
	}
	body, ok := adapters.ReadCallbackBody(w, r, c.maxBody)
	if !ok {
		return
	}
	plain, err := c.crypto.Decrypt(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), body)
	if err != nil {
		c.reject(w, r, err)
		return
	}
	msg, err := ParseMessage(plain)
	if err != nil {
		c.reject(w, r, err)
		return
	}
	in := c.inbound(msg)
	if in == nil {
		c.log.Debug("callback ignored", slog.String("msg_type", msg.MsgType), slog.String("event", msg.Event), slog.String("change_type", msg.ChangeType))
	}
	// Acknowledged once recorded; not recorded, 503, and it comes again.
	adapters.RecordAndAnswer(w, r, c.rec, c.log, in)
}

// fresh refuses callbacks whose timestamp is outside the replay window.
func (c *Client) fresh(w http.ResponseWriter, ts string) bool {
	return adapters.FreshTimestamp(w, ts, c.now(), c.cfg.MaxClockSkew)
}

func (c *Client) reject(w http.ResponseWriter, r *http.Request, err error) {
	adapters.RejectCallback(w, r, c.log, err, ErrBadSignature, ErrBadReceiveID)
}

// inbound maps a callback onto the channel-neutral shape, or nil for
// callbacks scrmgw has nothing to do with.
func (c *Client) inbound(m *Message) *adapters.Inbound {
	in := &adapters.Inbound{Channel: c.key, DedupKey: m.DedupKey(), Brand: c.brand, At: time.Unix(m.CreateTime, 0).UTC()}
	switch {
	case m.MsgType == MsgTypeEvent && m.Event == EventChangeExternalContact:
		in.Kind, in.From, in.SenderID = "event", adapters.PartyMember, m.ExternalUserID
		in.Attrs = map[string]string{"user_id": m.UserID}
		if len(c.brands) > 1 {
			// The contact joins the brand of the guide or store they
			// added, among these; Brand when none tells.
			in.Attrs[adapters.AttrBrands] = strings.Join(c.brands, ",")
		}
		switch m.ChangeType {
		case ChangeTypeAddExternalContact, ChangeTypeAddHalfExternalContact:
			in.Event = "contact.added"
			in.Attrs["state"], in.Attrs["welcome_code"] = m.State, m.WelcomeCode
		case ChangeTypeEditExternalContact:
			in.Event = "contact.updated"
		case ChangeTypeDelExternalContact:
			in.Event, in.Attrs["by"] = "contact.removed", "guide"
			// DELETE_BY_TRANSFER: the relationship moved to another
			// employee in a handover; the member did not leave.
			in.Attrs["source"] = m.Source
		case ChangeTypeDelFollowUser:
			in.Event, in.Attrs["by"] = "contact.removed", "member"
		case ChangeTypeTransferFail:
			in.Event, in.Attrs["fail_reason"] = "contact.transfer_failed", m.FailReason
		default:
			return nil
		}
		return in
	case m.MsgType == MsgTypeEvent && m.Event == EventChangeContact && m.ChangeType == ChangeTypeDeleteUser:
		// An employee left the corp: their customers are to be handed
		// over (离职继承).
		in.Kind, in.Event, in.From, in.SenderID = "event", "guide.left", adapters.PartyGuide, m.UserID
		in.Attrs = map[string]string{"user_id": m.UserID}
		return in
	case m.MsgType == MsgTypeEvent && m.Event == EventChangeExternalTag:
		// The corp's tag library changed: the gateway reads it again and
		// applies renames and deletions to members' tags (tags.go).
		in.Kind, in.Event = "event", "tags.changed"
		in.Attrs = map[string]string{"id": m.ID, "tag_type": m.TagType, "change_type": m.ChangeType, "strategy_id": m.StrategyID}
		if len(c.brands) > 1 {
			in.Attrs[adapters.AttrBrands] = strings.Join(c.brands, ",")
		}
		return in
	case m.MsgType == MsgTypeEvent && m.Event == EventChangeExternalChat:
		// A customer group changed: the gateway reads it again
		// (groupchat/get) and keeps its members (groups.go).
		in.Kind, in.Event, in.From, in.SenderID = "event", "group.changed", adapters.PartyGuide, m.ChatID
		in.Attrs = map[string]string{"chat_id": m.ChatID, "change_type": m.ChangeType, "update_detail": m.UpdateDetail,
			"join_scene": strconv.Itoa(m.JoinScene), "quit_scene": strconv.Itoa(m.QuitScene),
			"mem_change_cnt": strconv.Itoa(m.MemChangeCnt), "mem_change_list": strings.Join(m.MemChangeList, ","),
			"last_mem_ver": m.LastMemVer, "cur_mem_ver": m.CurMemVer}
		if len(c.brands) > 1 {
			in.Attrs[adapters.AttrBrands] = strings.Join(c.brands, ",")
		}
		return in
	case m.MsgType == MsgTypeEvent && m.Event == EventCustomerAcquisition:
		// The links' quota runs low or out, or a link stopped working:
		// operators are warned (gateway/links).
		in.Kind, in.Event = "event", "links.notice"
		in.Attrs = map[string]string{"notice": m.ChangeType, "link_id": m.LinkID}
		return in
	case m.MsgType == MsgTypeEvent && m.Event == EventKfMsgOrEvent:
		in.Kind, in.Event = "event", "kf.notify"
		in.Attrs = map[string]string{"token": m.Token, "open_kfid": m.OpenKfID}
		return in
	case m.MsgType == MsgTypeText, m.MsgType == MsgTypeImage, m.MsgType == MsgTypeLocation:
		// Employees (guides) writing to the app.
		in.Kind, in.From, in.SenderID, in.ConversationID = m.MsgType, adapters.PartyGuide, m.FromUserName, m.FromUserName
		switch m.MsgType {
		case MsgTypeText:
			in.Text = m.Content
		case MsgTypeImage:
			in.Attrs = map[string]string{"media_id": m.MediaID, "pic_url": m.PicURL}
		case MsgTypeLocation:
			in.Location = &adapters.Location{Lat: m.Latitude, Lng: m.Longitude, Label: m.Label}
		}
		return in
	}
	return nil
}

// shortHash is 32 hex characters identifying s.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}
