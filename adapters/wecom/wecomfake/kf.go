package wecomfake

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/scrmgw/scrmgw/adapters/wecom"
)

// KFMessage is a customer-service message or event as kf/sync_msg returns
// it. QueueKFMessages fills MsgID (when empty), OpenKfID, SendTime (when
// 0, now) and Origin (when 0: 4 for events, else 3, the customer). Raw,
// when set, is served as is instead of the other fields.
type KFMessage = wecom.KFMessage

// KFEvent is the event of a KFMessage of MsgType "event".
type KFEvent = wecom.KFEvent

// KFText is a text the customer sent.
func KFText(externalUserID, text string) KFMessage {
	return KFMessage{ExternalUserID: externalUserID, MsgType: "text", Text: text}
}

// KFLocation is a location the customer shared.
func KFLocation(externalUserID string, lat, lng float64, name, address string) KFMessage {
	return KFMessage{ExternalUserID: externalUserID, MsgType: "location", Latitude: lat, Longitude: lng,
		LocationName: name, LocationAddress: address}
}

// KFImage is a picture the customer sent.
func KFImage(externalUserID, mediaID string) KFMessage {
	return KFMessage{ExternalUserID: externalUserID, MsgType: "image", MediaID: mediaID}
}

// KFEnterSession is the customer opening the session (from a kf link with
// scene), with a welcome code when WeCom grants one.
func KFEnterSession(externalUserID, scene, welcomeCode string) KFMessage {
	return KFMessage{ExternalUserID: externalUserID, MsgType: "event",
		Event: &KFEvent{Type: "enter_session", Scene: scene, WelcomeCode: welcomeCode}}
}

// kfTokenTTL is how long the Token of a kf_msg_or_event callback is good
// for.
const kfTokenTTL = 10 * time.Minute

// kfSession rules of kf/send_msg: within 48 hours of the customer's last
// message, at most 5 messages.
const (
	kfSessionWindow = 48 * time.Hour
	kfSessionSends  = 5
)

// kfNoTokenLimit is how many sync_msg calls without a valid token a minute
// allows (WeCom's support: "token不填或者错误在一分钟内达到10次" blocks the
// next minute).
const kfNoTokenLimit = 10

type kfEntry struct {
	openKfID string
	msg      KFMessage
}

type kfSession struct {
	lastCustomer time.Time
	sends        int
}

type kfState struct {
	log      []kfEntry
	tokens   map[string]time.Time // token → expiry
	noToken  []time.Time
	sessions map[string]*kfSession // open_kfid + "\x00" + external_userid
	msgIDs   map[string]bool       // open_kfid + "\x00" + msgid
	sent     []KFSendRequest
}

func (k *kfState) init() {
	k.tokens = make(map[string]time.Time)
	k.sessions = make(map[string]*kfSession)
	k.msgIDs = make(map[string]bool)
}

// QueueKFMessages appends messages of the customer-service account
// openKfID for sync_msg to return, and returns the Token a kf_msg_or_event
// callback announcing them carries (good for 10 minutes). A customer's
// message opens (or renews) their session for kf/send_msg.
func (s *Server) QueueKFMessages(openKfID string, msgs ...KFMessage) (token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, m := range msgs {
		s.seq++
		if m.MsgID == "" {
			m.MsgID = "fake_msgid_" + strconv.Itoa(s.seq) + "_" + randomHex(4)
		}
		m.OpenKfID = openKfID
		if m.SendTime == 0 {
			m.SendTime = now.Unix()
		}
		if m.Origin == 0 {
			m.Origin = wecom.KFOriginCustomer
			if m.MsgType == "event" {
				m.Origin = wecom.KFOriginEvent
			}
		}
		s.kf.log = append(s.kf.log, kfEntry{openKfID: openKfID, msg: m})
		if m.Origin == wecom.KFOriginCustomer && m.ExternalUserID != "" {
			s.kf.sessions[openKfID+"\x00"+m.ExternalUserID] = &kfSession{lastCustomer: time.Unix(m.SendTime, 0)}
		}
	}
	token = "ENC" + randomToken()[:44]
	s.kf.tokens[token] = now.Add(kfTokenTTL)
	return token
}

// KFCallback returns the kf_msg_or_event callback announcing new messages
// of openKfID, with a fresh Token.
func (s *Server) KFCallback(openKfID string) KfMsgOrEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	token := "ENC" + randomToken()[:44]
	s.kf.tokens[token] = s.now().Add(kfTokenTTL)
	return KfMsgOrEvent{CorpID: s.corpID, Token: token, OpenKfID: openKfID, CreateTime: s.now()}
}

func kfWire(m KFMessage) any {
	if len(m.Raw) > 0 {
		return json.RawMessage(m.Raw)
	}
	w := map[string]any{
		"msgid":     m.MsgID,
		"send_time": m.SendTime,
		"origin":    m.Origin,
		"msgtype":   m.MsgType,
	}
	if m.MsgType != "event" {
		w["open_kfid"] = m.OpenKfID
		w["external_userid"] = m.ExternalUserID
	}
	if m.ServicerUserID != "" {
		w["servicer_userid"] = m.ServicerUserID
	}
	switch m.MsgType {
	case "text":
		t := map[string]any{"content": m.Text}
		if m.MenuID != "" {
			t["menu_id"] = m.MenuID
		}
		w["text"] = t
	case "image", "voice", "video", "file":
		w[m.MsgType] = map[string]any{"media_id": m.MediaID}
	case "location":
		w["location"] = map[string]any{"latitude": m.Latitude, "longitude": m.Longitude,
			"name": m.LocationName, "address": m.LocationAddress}
	case "event":
		e := map[string]any{"open_kfid": m.OpenKfID, "external_userid": m.ExternalUserID}
		if ev := m.Event; ev != nil {
			e["event_type"] = ev.Type
			for k, v := range map[string]string{"scene": ev.Scene, "scene_param": ev.SceneParam, "welcome_code": ev.WelcomeCode,
				"fail_msgid": ev.FailMsgID, "servicer_userid": ev.ServicerUserID, "msg_code": ev.MsgCode, "recall_msgid": ev.RecallMsgID,
				"old_servicer_userid": ev.OldServicerUserID, "new_servicer_userid": ev.NewServicerUserID} {
				if v != "" {
					e[k] = v
				}
			}
			if ev.FailType != 0 {
				e["fail_type"] = ev.FailType
			}
			if ev.ChangeType != 0 {
				e["change_type"] = ev.ChangeType
			}
			if ev.Status != 0 {
				e["status"] = ev.Status
			}
		}
		w["event"] = e
	}
	return w
}

func (s *Server) serveKFSync(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		Cursor      string `json:"cursor"`
		Token       string `json:"token"`
		Limit       int    `json:"limit"`
		VoiceFormat int    `json:"voice_format"`
		OpenKfID    string `json:"open_kfid"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	now := s.now()
	if exp, ok := s.kf.tokens[req.Token]; !ok || !now.Before(exp) {
		// Without a valid token WeCom allows a few calls a minute.
		s.kf.noToken = slices.DeleteFunc(s.kf.noToken, func(t time.Time) bool { return now.Sub(t) >= time.Minute })
		if len(s.kf.noToken) >= kfNoTokenLimit {
			return nil, codeErr(CodeFreqLimit)
		}
		s.kf.noToken = append(s.kf.noToken, now)
	}
	if utf8.RuneCountInString(req.Cursor) > 64 {
		return nil, codeErr(CodeInvalidCursor)
	}
	from, ok := decodeCursor("kf", req.Cursor)
	if !ok || from > len(s.kf.log) {
		return nil, codeErr(CodeInvalidCursor)
	}
	limit := req.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	list := []any{}
	i := from
	for ; i < len(s.kf.log) && len(list) < limit; i++ {
		e := s.kf.log[i]
		if req.OpenKfID != "" && e.openKfID != req.OpenKfID {
			continue
		}
		list = append(list, kfWire(e.msg))
	}
	more := 0
	for j := i; j < len(s.kf.log); j++ {
		if req.OpenKfID == "" || s.kf.log[j].openKfID == req.OpenKfID {
			more = 1
			break
		}
	}
	out := s.recorded("kf_sync_msg")
	out["msg_list"] = list
	out["next_cursor"] = encodeCursor("kf", i)
	out["has_more"] = more
	return out, nil
}

// KFSendRequest is an accepted kf/send_msg.
type KFSendRequest struct {
	MsgID    string
	ToUser   string
	OpenKfID string
	MsgType  string
	// Text is a text message's content.
	Text string
	// Body is the request as sent.
	Body json.RawMessage
	At   time.Time
}

// KFSent returns the customer-service messages sent, in order.
func (s *Server) KFSent() []KFSendRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.kf.sent)
}

// kfMedia is the media object of an image, voice, video or file message.
type kfMedia struct {
	MediaID string `json:"media_id"`
}

var kfMsgIDRE = regexp.MustCompile(`^[0-9a-zA-Z_-]{1,32}$`)

// kfSendTypes are the msgtypes kf/send_msg documents.
var kfSendTypes = map[string]bool{
	"text": true, "image": true, "voice": true, "video": true, "file": true, "link": true,
	"miniprogram": true, "msgmenu": true, "location": true, "ca_link": true,
}

func (s *Server) serveKFSend(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		ToUser   string    `json:"touser"`
		OpenKfID string    `json:"open_kfid"`
		MsgID    string    `json:"msgid"`
		MsgType  string    `json:"msgtype"`
		Text     *textBody `json:"text"`
		Image    *kfMedia  `json:"image"`
		Voice    *kfMedia  `json:"voice"`
		Video    *kfMedia  `json:"video"`
		File     *kfMedia  `json:"file"`
		Link     *struct {
			Title        string `json:"title"`
			Desc         string `json:"desc"`
			URL          string `json:"url"`
			ThumbMediaID string `json:"thumb_media_id"`
		} `json:"link"`
		MiniProgram *struct {
			AppID        string `json:"appid"`
			Title        string `json:"title"`
			ThumbMediaID string `json:"thumb_media_id"`
			PagePath     string `json:"pagepath"`
		} `json:"miniprogram"`
		MsgMenu  json.RawMessage `json:"msgmenu"`
		Location json.RawMessage `json:"location"`
		CALink   json.RawMessage `json:"ca_link"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	switch {
	case req.ToUser == "":
		return nil, codeErr(CodeMissingExternalUser)
	case req.OpenKfID == "":
		return nil, codeErr(CodeInvalidOpenKfID)
	case !kfSendTypes[req.MsgType]:
		return nil, errorf(40008, "invalid message type")
	case req.MsgID != "" && !kfMsgIDRE.MatchString(req.MsgID):
		return nil, errorf(CodeInvalidParameter, "invalid msgid")
	}
	m := KFSendRequest{MsgID: req.MsgID, ToUser: req.ToUser, OpenKfID: req.OpenKfID, MsgType: req.MsgType,
		Body: json.RawMessage(slices.Clone(body)), At: s.now()}
	switch req.MsgType {
	case "text":
		if req.Text == nil || req.Text.Content == "" {
			return nil, codeErr(CodeEmptyContent)
		}
		m.Text = req.Text.Content
	case "link":
		l := req.Link
		if l == nil || l.Title == "" || l.URL == "" || l.ThumbMediaID == "" {
			return nil, errorf(CodeInvalidParameter, "link needs title, url and thumb_media_id")
		}
		if e := firstErr(tooLong("link", "title", l.Title, maxLinkTitle), tooLong("link", "desc", l.Desc, maxLinkDesc),
			tooLong("link", "url", l.URL, maxURL), s.checkMedia("image", l.ThumbMediaID, "link.thumb_media_id")); e != nil {
			return nil, e
		}
	case "miniprogram":
		p := req.MiniProgram
		if p == nil || p.AppID == "" || p.ThumbMediaID == "" || p.PagePath == "" {
			return nil, errorf(CodeInvalidParameter, "miniprogram needs appid, thumb_media_id and pagepath")
		}
		if e := firstErr(tooLong("miniprogram", "title", p.Title, maxMiniTitle), s.checkMedia("image", p.ThumbMediaID, "miniprogram.thumb_media_id")); e != nil {
			return nil, e
		}
	case "image", "voice", "video", "file":
		media := map[string]*kfMedia{"image": req.Image, "voice": req.Voice, "video": req.Video, "file": req.File}[req.MsgType]
		if media == nil {
			return nil, errorf(CodeInvalidParameter, "%s needs media_id", req.MsgType)
		}
		if e := s.checkMedia(req.MsgType, media.MediaID, req.MsgType); e != nil {
			return nil, e
		}
	}
	// Not verified against WeCom: an object of another type than msgtype
	// is refused, to catch encoders that send them all.
	n := 0
	for _, p := range []bool{req.Text != nil, req.Image != nil, req.Voice != nil, req.Video != nil, req.File != nil, req.Link != nil,
		req.MiniProgram != nil, len(req.MsgMenu) > 0, len(req.Location) > 0, len(req.CALink) > 0} {
		if p {
			n++
		}
	}
	if n != 1 {
		return nil, errorf(CodeInvalidParameter, "kf message of msgtype %q carries %d message objects", req.MsgType, n)
	}
	if m.MsgID != "" {
		key := req.OpenKfID + "\x00" + m.MsgID
		if s.kf.msgIDs[key] {
			// WeCom documents that a repeated msgid is refused, not the
			// errcode (not verified).
			return nil, errorf(CodeInvalidParameter, "duplicate msgid")
		}
	}
	sess := s.kf.sessions[req.OpenKfID+"\x00"+req.ToUser]
	if sess == nil || m.At.Sub(sess.lastCustomer) > kfSessionWindow || sess.sends >= kfSessionSends {
		// The errcode for the 5-message limit is not verified.
		return nil, codeErr(CodeSessionInvalid)
	}
	sess.sends++
	if m.MsgID == "" {
		m.MsgID = randomHex(16)
	}
	s.kf.msgIDs[req.OpenKfID+"\x00"+m.MsgID] = true
	s.kf.sent = append(s.kf.sent, m)
	out := s.recorded("kf_send_msg")
	out["msgid"] = m.MsgID
	return out, nil
}
