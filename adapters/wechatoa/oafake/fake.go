// Package oafake is a fake WeChat Official Account for tests: an
// httptest server speaking the account's API (cgi-bin/token, message/
// custom/send, message/template/send, user/info, qrcode/create,
// media/upload, with WeChat's JSON errcodes) and a callback sender that
// posts followers' messages and events to the gateway as WeChat does (signature,
// timestamp, nonce, and in compatible and safe mode the AES envelope
// sealed with the account's EncodingAESKey and msg_signature).
//
// The fake keeps what WeChat keeps: who follows, each follower's last
// interaction (a customer-service message outside 48 hours of it is
// refused with 45015, one to someone not following with 43004), the
// scenes of the QR codes it made, the temporary media uploaded (an image
// or a mini program card naming another is refused with 40007), and every
// send and upload it took, as sent.
package oafake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wechatoa"
)

// Account is the account's settings, as on its server configuration
// page.
type Account struct {
	AppID, AppSecret, Token, EncodingAESKey string
	// Mode is plaintext, compatible or safe.
	Mode string
}

// Sent is one send the fake took: the API path and the JSON body as
// sent.
type Sent struct {
	Path string
	Body map[string]any
}

// Fake is a fake Official Account.
type Fake struct {
	*httptest.Server
	Account Account
	// Now is the fake's clock (WeChat's): time.Now by default.
	Now func() time.Time

	mu        sync.Mutex
	tokens    map[string]bool
	tokenHits int
	followers map[string]*follower
	scenes    map[string]string // ticket → scene
	codes     []Sent            // the qrcode/create requests, in order
	sent      []Sent
	msgID     int64
	// failNext answers the next send with this errcode.
	failNext int
	// media are the temporary media WeChat knows, by media id; uploads
	// the media/upload requests it took.
	media      map[string]*mediaItem
	uploads    []Upload
	failUpload int
}

type follower struct {
	unionID   string
	following bool
	last      time.Time
}

// New starts a fake account.
func New(t testing.TB, acc Account) *Fake {
	f := &Fake{Account: acc, Now: time.Now, tokens: map[string]bool{}, followers: map[string]*follower{}, scenes: map[string]string{}, msgID: 1000,
		media: map[string]*mediaItem{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cgi-bin/token", f.token)
	mux.HandleFunc("POST /cgi-bin/message/custom/send", f.authed(f.customSend))
	mux.HandleFunc("POST /cgi-bin/message/template/send", f.authed(f.templateSend))
	mux.HandleFunc("GET /cgi-bin/user/info", f.authed(f.userInfo))
	mux.HandleFunc("POST /cgi-bin/qrcode/create", f.authed(f.qrcode))
	mux.HandleFunc("POST "+PathMediaUpload, f.mediaUpload)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	json.NewEncoder(w).Encode(v)
}

func errcode(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, map[string]any{"errcode": code, "errmsg": msg})
}

func (f *Fake) token(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("grant_type") != "client_credential" || q.Get("appid") != f.Account.AppID || q.Get("secret") != f.Account.AppSecret {
		errcode(w, 40125, "invalid appsecret")
		return
	}
	b := make([]byte, 12)
	rand.Read(b)
	tok := "oa-token-" + hex.EncodeToString(b)
	f.mu.Lock()
	f.tokens[tok] = true
	f.tokenHits++
	f.mu.Unlock()
	writeJSON(w, map[string]any{"access_token": tok, "expires_in": 7200})
}

// TokenRequests is how many access tokens the fake issued.
func (f *Fake) TokenRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenHits
}

// ExpireTokens makes every issued token invalid (42001 on next use).
func (f *Fake) ExpireTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = map[string]bool{}
}

func (f *Fake) authed(h func(w http.ResponseWriter, r *http.Request, body map[string]any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		ok := f.tokens[r.URL.Query().Get("access_token")]
		f.mu.Unlock()
		if !ok {
			errcode(w, 42001, "access_token expired")
			return
		}
		var body map[string]any
		if r.Method == http.MethodPost {
			data, _ := io.ReadAll(r.Body)
			if err := json.Unmarshal(data, &body); err != nil {
				errcode(w, 47001, "data format error")
				return
			}
		}
		h(w, r, body)
	}
}

// FailNext makes the next send answer errcode code (45009: rate).
func (f *Fake) FailNext(code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = code
}

// check answers a send's refusals: an injected failure, not following.
// The caller holds f.mu.
func (f *Fake) check(w http.ResponseWriter, openID string) (*follower, bool) {
	if code := f.failNext; code != 0 {
		f.failNext = 0
		errcode(w, code, "injected")
		return nil, false
	}
	fl := f.followers[openID]
	if fl == nil || !fl.following {
		errcode(w, 43004, "require subscribe")
		return nil, false
	}
	return fl, true
}

func (f *Fake) customSend(w http.ResponseWriter, r *http.Request, body map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	to, _ := body["touser"].(string)
	fl, ok := f.check(w, to)
	if !ok {
		return
	}
	if f.Now().Sub(fl.last) >= wechatoa.Window {
		errcode(w, 45015, "response out of time limit or subscription is canceled")
		return
	}
	switch body["msgtype"] {
	case "text", "image", "news", "miniprogrampage", "voice", "video", "music", "mpnews", "msgmenu", "wxcard", "mpnewsarticle":
	default:
		errcode(w, 40008, "invalid message type")
		return
	}
	// An image and a mini program card's cover name a temporary media.
	var mediaID string
	switch body["msgtype"] {
	case "image":
		img, _ := body["image"].(map[string]any)
		mediaID, _ = img["media_id"].(string)
	case "miniprogrampage":
		mp, _ := body["miniprogrampage"].(map[string]any)
		mediaID, _ = mp["thumb_media_id"].(string)
	}
	if (body["msgtype"] == "image" || body["msgtype"] == "miniprogrampage") && !f.knownMedia(mediaID, "image", "thumb") {
		errcode(w, CodeInvalidMediaID, "invalid media_id")
		return
	}
	f.sent = append(f.sent, Sent{Path: r.URL.Path, Body: body})
	errcode(w, 0, "ok")
}

func (f *Fake) templateSend(w http.ResponseWriter, r *http.Request, body map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	to, _ := body["touser"].(string)
	if _, ok := f.check(w, to); !ok {
		return
	}
	if id, _ := body["template_id"].(string); id == "" {
		errcode(w, 40037, "invalid template_id")
		return
	}
	f.sent = append(f.sent, Sent{Path: r.URL.Path, Body: body})
	f.msgID++
	writeJSON(w, map[string]any{"errcode": 0, "errmsg": "ok", "msgid": f.msgID})
}

func (f *Fake) userInfo(w http.ResponseWriter, r *http.Request, _ map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.URL.Query().Get("openid")
	fl := f.followers[id]
	if fl == nil {
		errcode(w, 40003, "invalid openid")
		return
	}
	if !fl.following {
		writeJSON(w, map[string]any{"subscribe": 0, "openid": id, "unionid": fl.unionID})
		return
	}
	writeJSON(w, map[string]any{"subscribe": 1, "openid": id, "language": "zh_CN", "subscribe_time": fl.last.Unix(),
		"unionid": fl.unionID, "remark": "", "groupid": 0, "tagid_list": []int{}, "subscribe_scene": "ADD_SCENE_QR_CODE"})
}

func (f *Fake) qrcode(w http.ResponseWriter, r *http.Request, body map[string]any) {
	info, _ := body["action_info"].(map[string]any)
	scene, _ := info["scene"].(map[string]any)
	str, _ := scene["scene_str"].(string)
	action, _ := body["action_name"].(string)
	if str == "" || (action != "QR_STR_SCENE" && action != "QR_LIMIT_STR_SCENE") {
		errcode(w, 40097, "invalid args")
		return
	}
	f.mu.Lock()
	f.msgID++
	ticket := fmt.Sprintf("gQ%06d", f.msgID)
	f.scenes[ticket] = str
	f.codes = append(f.codes, Sent{Path: r.URL.Path, Body: body})
	f.mu.Unlock()
	out := map[string]any{"ticket": ticket, "url": "http://weixin.qq.com/q/" + ticket}
	if action == "QR_STR_SCENE" {
		exp, _ := body["expire_seconds"].(float64)
		out["expire_seconds"] = int(exp)
	}
	writeJSON(w, out)
}

// QRCodes returns the qrcode/create requests the fake took, in order.
func (f *Fake) QRCodes() []Sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Sent(nil), f.codes...)
}

// Sent returns the sends the fake took, in order.
func (f *Fake) Sent() []Sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Sent(nil), f.sent...)
}

// WaitSent waits until the fake took a send to openID whose path ends
// with api, and returns it.
func (f *Fake) WaitSent(t testing.TB, what, openID, api string) Sent {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	seen := 0
	for time.Now().Before(deadline) {
		all := f.Sent()
		for _, s := range all[seen:] {
			if s.Body["touser"] == openID && strings.HasSuffix(s.Path, api) {
				f.mu.Lock()
				// Taken: a later wait finds the next one.
				for i := range f.sent {
					if f.sent[i].Path == s.Path && fmt.Sprint(f.sent[i].Body) == fmt.Sprint(s.Body) {
						f.sent = append(f.sent[:i], f.sent[i+1:]...)
						break
					}
				}
				f.mu.Unlock()
				return s
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: no %s to %s at the fake; took %+v", what, api, openID, f.Sent())
	return Sent{}
}

// AddFollower registers a WeChat user the fake knows (not yet
// following), with their UnionID.
func (f *Fake) AddFollower(openID, unionID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.followers[openID] == nil {
		f.followers[openID] = &follower{}
	}
	f.followers[openID].unionID = unionID
}

// SetLastInteraction moves a follower's last interaction (WeChat's view
// of their 48-hour window).
func (f *Fake) SetLastInteraction(openID string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl := f.followers[openID]; fl != nil {
		fl.last = at
	}
}

// Scene is the scene of a QR code the fake made.
func (f *Fake) Scene(ticket string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.scenes[ticket]
}

// interacted records a follower's interaction; follow sets whether they
// follow now.
func (f *Fake) interacted(openID string, follow *bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.followers[openID]
	if fl == nil {
		fl = &follower{}
		f.followers[openID] = fl
	}
	if follow != nil {
		fl.following = *follow
	}
	fl.last = f.Now()
}

// ScanAndFollow is a WeChat user scanning the QR code ticket: a follow
// through the code (subscribe with qrscene_<scene>) when they do not
// follow yet, else a SCAN. It posts the event to the gateway's callback
// URL and returns the status and body of the answer.
func (f *Fake) ScanAndFollow(t testing.TB, callbackURL, openID, ticket string) (int, string) {
	t.Helper()
	scene := f.Scene(ticket)
	if scene == "" {
		t.Fatalf("no QR code %s at the fake", ticket)
	}
	f.mu.Lock()
	following := f.followers[openID] != nil && f.followers[openID].following
	f.mu.Unlock()
	ev := Event{From: openID, Event: wechatoa.EventScan, EventKey: scene, Ticket: ticket}
	if !following {
		ev.Event, ev.EventKey = wechatoa.EventSubscribe, wechatoa.ScenePrefix+scene
	}
	yes := true
	f.interacted(openID, &yes)
	return f.Post(t, callbackURL, ev.XML(f.Account.AppID, f.Now()))
}

// Follow is a WeChat user following the account without a code (found
// by search or an article): a subscribe without a scene.
func (f *Fake) Follow(t testing.TB, callbackURL, openID string) (int, string) {
	t.Helper()
	yes := true
	f.interacted(openID, &yes)
	return f.Post(t, callbackURL, Event{From: openID, Event: wechatoa.EventSubscribe}.XML(f.Account.AppID, f.Now()))
}

// ReportLocation posts WeChat's LOCATION report of a follower (when the
// account asks followers for their location): not an interaction.
func (f *Fake) ReportLocation(t testing.TB, callbackURL, openID string, lat, lng float64) (int, string) {
	t.Helper()
	return f.Post(t, callbackURL, Event{From: openID, Event: wechatoa.EventLocation,
		Latitude: strconv.FormatFloat(lat, 'f', 6, 64), Longitude: strconv.FormatFloat(lng, 'f', 6, 64)}.XML(f.Account.AppID, f.Now()))
}

// Unfollow posts an unsubscribe.
func (f *Fake) Unfollow(t testing.TB, callbackURL, openID string) (int, string) {
	t.Helper()
	no := false
	f.interacted(openID, &no)
	return f.Post(t, callbackURL, Event{From: openID, Event: wechatoa.EventUnsubscribe}.XML(f.Account.AppID, f.Now()))
}

// Say posts a follower's text message with msgID.
func (f *Fake) Say(t testing.TB, callbackURL, openID string, msgID int64, text string) (int, string) {
	t.Helper()
	f.interacted(openID, nil)
	return f.Post(t, callbackURL, Text{From: openID, MsgID: msgID, Content: text}.XML(f.Account.AppID, f.Now()))
}

// ShareLocation posts a follower's location message with msgID.
func (f *Fake) ShareLocation(t testing.TB, callbackURL, openID string, msgID int64, lat, lng float64, label string) (int, string) {
	t.Helper()
	f.interacted(openID, nil)
	return f.Post(t, callbackURL, Location{From: openID, MsgID: msgID, Lat: lat, Lng: lng, Label: label}.XML(f.Account.AppID, f.Now()))
}

// Click posts a menu click on the menu item with key.
func (f *Fake) Click(t testing.TB, callbackURL, openID, key string) (int, string) {
	t.Helper()
	f.interacted(openID, nil)
	return f.Post(t, callbackURL, Event{From: openID, Event: wechatoa.EventClick, EventKey: key}.XML(f.Account.AppID, f.Now()))
}

// Post delivers a message XML to the gateway as WeChat does in the
// account's mode and returns the status and body of the answer.
func (f *Fake) Post(t testing.TB, callbackURL string, msgXML []byte) (int, string) {
	t.Helper()
	q, body := f.Seal(t, msgXML, f.Now())
	resp, err := http.Post(callbackURL+"?"+q.Encode(), "text/xml", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Seal is the query and body WeChat posts msgXML with at at: signature,
// timestamp, nonce, openid; in compatible and safe mode encrypt_type=aes
// and msg_signature with the AES envelope (compatible mode keeps the
// plaintext fields beside Encrypt).
func (f *Fake) Seal(t testing.TB, msgXML []byte, at time.Time) (url.Values, []byte) {
	t.Helper()
	ts := strconv.FormatInt(at.Unix(), 10)
	nb := make([]byte, 5)
	rand.Read(nb)
	nonce := strconv.FormatUint(uint64(nb[0])<<32|uint64(nb[1])<<24|uint64(nb[2])<<16|uint64(nb[3])<<8|uint64(nb[4]), 10)
	q := url.Values{"signature": {wechatoa.Signature(f.Account.Token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}}
	if open := between(string(msgXML), "<FromUserName><![CDATA[", "]]>"); open != "" {
		q.Set("openid", open)
	}
	if f.Account.Mode == wechatoa.ModePlaintext {
		return q, msgXML
	}
	random := make([]byte, 16)
	rand.Read(random)
	for i := range random {
		random[i] = 'a' + random[i]%26
	}
	enc, err := wechatoa.Seal(f.Account.EncodingAESKey, f.Account.AppID, random, msgXML)
	if err != nil {
		t.Fatal(err)
	}
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", wechatoa.Signature(f.Account.Token, ts, nonce, enc))
	inner := ""
	if f.Account.Mode == wechatoa.ModeCompatible {
		// The plaintext fields, beside Encrypt.
		s := string(msgXML)
		inner = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<xml>"), "</xml>")
	} else {
		inner = "<ToUserName><![CDATA[" + between(string(msgXML), "<ToUserName><![CDATA[", "]]>") + "]]></ToUserName>"
	}
	return q, []byte("<xml>" + inner + "<Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>")
}

func between(s, from, to string) string {
	_, after, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, to)
	return v
}

// Verify sends WeChat's server verification (GET) and returns the
// status and body.
func (f *Fake) Verify(t testing.TB, callbackURL, echostr string) (int, string) {
	t.Helper()
	ts := strconv.FormatInt(f.Now().Unix(), 10)
	q := url.Values{"signature": {wechatoa.Signature(f.Account.Token, ts, "136429")}, "timestamp": {ts}, "nonce": {"136429"}, "echostr": {echostr}}
	resp, err := http.Get(callbackURL + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// QRMaker is what makes the account's parametric QR codes (the channel).
type QRMaker interface {
	CreateQRCode(ctx context.Context, scene string, expire time.Duration) (*wechatoa.QRCode, error)
}

// CreateTicket makes a permanent QR code for scene through the channel
// (qrcode/create at the fake) and returns its ticket and URL.
func (f *Fake) CreateTicket(t testing.TB, ch QRMaker, scene string) (string, string) {
	t.Helper()
	q, err := ch.CreateQRCode(context.Background(), scene, 0)
	if err != nil {
		t.Fatal(err)
	}
	return q.Ticket, q.URL
}
