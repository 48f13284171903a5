package wechatoa

import (
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// Routes mounts the account's callback URL: GET for the server
// verification, POST for messages and events.
func (c *Client) Routes() []adapters.Route {
	p := CallbackPathOf(c.instance)
	return []adapters.Route{
		{Method: http.MethodGet, Path: p, Handler: http.HandlerFunc(c.verifyServer)},
		{Method: http.MethodPost, Path: p, Handler: http.HandlerFunc(c.receive)},
	}
}

// verifyServer answers WeChat's server verification (GET with signature,
// timestamp, nonce and echostr) with the echostr, when signed with the
// account's token.
func (c *Client) verifyServer(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !c.fresh(w, q.Get("timestamp")) {
		return
	}
	if !sigEqual(Signature(c.cfg.Token, q.Get("timestamp"), q.Get("nonce")), q.Get("signature")) {
		c.reject(w, r, ErrBadSignature)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, q.Get("echostr"))
}

// receive verifies a callback (and decrypts it in the AES modes), parses
// it, records it durably and only then answers "success", well within
// WeChat's 5 s; everything slow happens from the queue. A callback that is
// not this account's is refused with a 4xx and recorded nowhere; one
// that could not be recorded gets a 503, and WeChat retries it.
func (c *Client) receive(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ts, nonce := q.Get("timestamp"), q.Get("nonce")
	if !c.fresh(w, ts) {
		return
	}
	if !sigEqual(Signature(c.cfg.Token, ts, nonce), q.Get("signature")) {
		c.reject(w, r, ErrBadSignature)
		return
	}
	body, ok := adapters.ReadCallbackBody(w, r, c.maxBody)
	if !ok {
		return
	}
	plain := body
	var err error
	switch encrypted := q.Get("encrypt_type") == "aes"; {
	case encrypted && c.cfg.Mode != ModePlaintext:
		if plain, err = Open(c.cfg.Token, c.cfg.EncodingAESKey, c.cfg.AppID, q.Get("msg_signature"), ts, nonce, body); err != nil {
			c.reject(w, r, err)
			return
		}
	case c.cfg.Mode == ModeSafe:
		c.reject(w, r, ErrPlaintextRefused)
		return
	}
	msg, err := ParseMessage(plain)
	if err != nil {
		c.reject(w, r, err)
		return
	}
	in := c.inbound(msg)
	if in == nil {
		c.log.Debug("callback ignored", slog.String("msg_type", string(msg.MsgType)), slog.String("event", string(msg.Event)))
	}
	// Acknowledged once recorded; not recorded, 503, and it comes again.
	adapters.RecordAndAnswer(w, r, c.rec, c.log, in)
}

// fresh refuses callbacks whose timestamp is outside the replay window.
func (c *Client) fresh(w http.ResponseWriter, ts string) bool {
	return adapters.FreshTimestamp(w, ts, c.now(), c.cfg.MaxClockSkew)
}

func (c *Client) reject(w http.ResponseWriter, r *http.Request, err error) {
	adapters.RejectCallback(w, r, c.log, err, ErrBadSignature, ErrBadAppID, ErrPlaintextRefused)
}

// inbound maps a callback onto the channel-neutral shape, or nil for
// callbacks scrmgw has nothing to do with.
func (c *Client) inbound(m *Message) *adapters.Inbound {
	in := &adapters.Inbound{Channel: c.key, DedupKey: DedupKey(m), Brand: c.cfg.Brand, From: adapters.PartyMember,
		SenderID: string(m.FromUserName), ConversationID: string(m.FromUserName), At: time.Unix(m.CreateTime, 0).UTC()}
	switch string(m.MsgType) {
	case MsgTypeText:
		in.Kind, in.Text = adapters.KindText, m.Content
	case MsgTypeVoice:
		if m.Recognition == "" {
			return nil // nothing the bots can read
		}
		in.Kind, in.Text = adapters.KindText, m.Recognition
		in.Attrs = map[string]string{"media_id": m.MediaID, "voice": "true"}
	case MsgTypeImage:
		in.Kind = adapters.KindImage
		in.Attrs = map[string]string{"media_id": m.MediaID, "pic_url": m.PicURL}
	case MsgTypeLocation:
		if !validPoint(m.LocationX, m.LocationY) {
			return nil
		}
		in.Kind = "location"
		in.Location = &adapters.Location{Lat: m.LocationX, Lng: m.LocationY, Label: m.Label}
	case MsgTypeEvent:
		return c.event(m, in)
	default:
		return nil
	}
	return in
}

// event maps the events the channel acts on.
func (c *Client) event(m *Message, in *adapters.Inbound) *adapters.Inbound {
	in.Kind = "event"
	switch string(m.Event) {
	case EventSubscribe, EventScan:
		// A follow, or a follower scanning a parametric code: like
		// adding a guide through a contact way, the scene is the state
		// that names the store or guide.
		in.Event = "contact.added"
		in.Attrs = map[string]string{"state": Scene(m), "via": strings.ToLower(string(m.Event))}
	case EventUnsubscribe:
		in.Event = "contact.removed"
		in.Attrs = map[string]string{"by": "member"}
	case EventClick:
		// A menu click is the member saying the menu's key to the bots.
		in.Kind, in.Text = adapters.KindText, m.EventKey
		in.Attrs = map[string]string{"menu_key": m.EventKey}
	case EventLocation:
		// Reported by WeChat, not done by the member: it opens no window
		// (From is left empty) and is kept as the member's location.
		lat, err1 := strconv.ParseFloat(m.Latitude, 64)
		lng, err2 := strconv.ParseFloat(m.Longitude, 64)
		if err1 != nil || err2 != nil || !validPoint(lat, lng) {
			return nil
		}
		in.Kind, in.From, in.Event = "event", "", "location.reported"
		in.Location = &adapters.Location{Lat: lat, Lng: lng}
	default:
		return nil
	}
	return in
}

// validPoint reports whether lat, lng is a point on Earth (WeChat sends
// them as text: NaN or 1e999 parse, and are no place).
func validPoint(lat, lng float64) bool {
	return lat >= -90 && lat <= 90 && lng >= -180 && lng <= 180
}
