package wecom_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// pngBytes is a small real PNG picture.
func pngBytes(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// mediaServer serves the pictures and files messages name by URL, and
// counts how often each path was fetched.
type mediaServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newMediaServer(t *testing.T) *mediaServer {
	t.Helper()
	pic := pngBytes(t)
	ms := &mediaServer{hits: make(map[string]int)}
	ms.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ms.mu.Lock()
		ms.hits[r.URL.Path]++
		ms.mu.Unlock()
		switch p := r.URL.Path; {
		case strings.HasPrefix(p, "/pic/"):
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(pic)
		case p == "/octet.png":
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(pic)
		case p == "/doc/price-list.pdf":
			w.Header().Set("Content-Type", "application/pdf")
			_, _ = w.Write([]byte("%PDF-1.4 a price list"))
		case p == "/page.html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte("<html><body>not a picture</body></html>"))
		case p == "/disguised.png":
			// An HTML error page sent as a PNG.
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write([]byte("<html><body>oops</body></html>"))
		case p == "/huge.png", p == "/huge-chunked.png":
			w.Header().Set("Content-Type", "image/png")
			big := make([]byte, 10<<20+1)
			copy(big, pic)
			if p == "/huge.png" {
				w.Header().Set("Content-Length", "10485761")
				_, _ = w.Write(big)
				return
			}
			// No Content-Length: the size shows only while reading.
			for off := 0; off < len(big); off += 1 << 20 {
				_, _ = w.Write(big[off:min(off+1<<20, len(big))])
				w.(http.Flusher).Flush()
			}
		case p == "/broken.png":
			http.Error(w, "upstream down", http.StatusBadGateway)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ms.srv.Close)
	return ms
}

func (ms *mediaServer) url(path string) string { return ms.srv.URL + path }

func (ms *mediaServer) hitsOf(path string) int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.hits[path]
}

// kindsEnv is a Client sending to the fake, with a media server.
type kindsEnv struct {
	fake   *wecomfake.Server
	client *wecom.Client
	tokens *memTokens
	media  *mediaServer
	logs   *logBuffer
	kfid   string
}

func newKindsEnv(t *testing.T) *kindsEnv {
	t.Helper()
	fake := wecomfake.New(t)
	fake.AddEmployees("li")
	fake.AddContact(wecomfake.Contact{ExternalUserID: "wmChen", FollowUsers: []wecom.FollowUser{{UserID: "li"}}})
	fake.AddContact(wecomfake.Contact{ExternalUserID: "wmWang", FollowUsers: []wecom.FollowUser{{UserID: "li"}}})
	e := &kindsEnv{fake: fake, tokens: newMemTokens(), media: newMediaServer(t), logs: &logBuffer{}, kfid: "wkKF01"}
	e.client = e.newClient(t)
	return e
}

// newClient is another replica: it shares the token (and media) cache.
func (e *kindsEnv) newClient(t *testing.T) *wecom.Client {
	t.Helper()
	cfg := e.fake.Config()
	cfg.Brand = "acme"
	cfg.MediaFetchPrivate = true // the media server is on loopback
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := wecom.New(cfg, wecom.Deps{Recorder: nopRecorder{}, Tokens: e.tokens, Cursors: nopCursors{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openKF opens a customer-service session of the member, so that
// kf/send_msg may answer them.
func (e *kindsEnv) openKF(member string) {
	e.fake.QueueKFMessages(e.kfid, wecomfake.KFText(member, "在吗"))
}

// lastBody returns the body of the last request the fake accepted on
// the API, with the final newline of the encoder trimmed.
func (e *kindsEnv) lastBody(t *testing.T, api string) string {
	t.Helper()
	var b []byte
	switch api {
	case "externalcontact/add_msg_template":
		ts := e.fake.MsgTemplates()
		if len(ts) == 0 {
			t.Fatal("WeCom got no message task")
		}
		b = ts[len(ts)-1].Body
	case "externalcontact/send_welcome_msg":
		ws := e.fake.Welcomes()
		if len(ws) == 0 {
			t.Fatal("WeCom got no welcome")
		}
		b = ws[len(ws)-1].Body
	case "message/send":
		ms := e.fake.AppMessages()
		if len(ms) == 0 {
			t.Fatal("WeCom got no app message")
		}
		b = ms[len(ms)-1].Body
	case "kf/send_msg":
		ks := e.fake.KFSent()
		if len(ks) == 0 {
			t.Fatal("WeCom got no kf message")
		}
		b = ks[len(ks)-1].Body
	default:
		t.Fatalf("no recorder for %s", api)
	}
	return string(bytes.TrimSpace(b))
}

// lastUpload returns the last upload the fake accepted.
func (e *kindsEnv) lastUpload(t *testing.T) wecomfake.MediaUpload {
	t.Helper()
	ups := e.fake.Uploads()
	if len(ups) == 0 {
		t.Fatal("nothing was uploaded")
	}
	return ups[len(ups)-1]
}

// TestSendKinds sends each kind on each route and asserts the exact body
// WeCom received, and that Preview shows that body (with the source URL
// in place of an uploaded media id).
func TestSendKinds(t *testing.T) {
	// In want, MEDIA stands for the media id of the upload the send made
	// and SRC for the source URL (Preview shows it there), CODE for the
	// welcome code and KFMSGID for the msgid derived from the key.
	viaGuide := func(kind, text string, fields map[string]string) adapters.Outbound {
		return adapters.Outbound{IdempotencyKey: "k1", To: "wmChen", ToParty: adapters.PartyMember, Via: "li", Kind: kind, Text: text, Fields: fields}
	}
	welcome := func(kind, text string, fields map[string]string) adapters.Outbound {
		m := adapters.Outbound{IdempotencyKey: "k1", To: "wmChen", ToParty: adapters.PartyMember, Via: "li", Kind: kind, Text: text, Fields: map[string]string{}}
		for k, v := range fields {
			m.Fields[k] = v
		}
		m.Fields["welcome_code"] = "CODE"
		return m
	}
	toGuide := func(kind, text string, fields map[string]string) adapters.Outbound {
		return adapters.Outbound{IdempotencyKey: "k1", To: "li", ToParty: adapters.PartyGuide, Kind: kind, Text: text, Fields: fields}
	}
	inKF := func(kind, text string, fields map[string]string) adapters.Outbound {
		return adapters.Outbound{IdempotencyKey: "k1", To: "wmChen", ToParty: adapters.PartyMember, Kind: kind, Text: text, Fields: fields,
			ReplyTo: map[string]string{"open_kfid": "wkKF01"}}
	}
	news := map[string]string{"title": "山茶花新人专享：¥50优惠券", "description": "李娜为您申请的新人券", "url": "https://shop.example.com/coupons/NEW50?a=1&b=2",
		"picurl": "https://shop.example.com/static/coupon.png"}
	const pic = "/pic/cover.png"
	mini := map[string]string{"title": "该补货啦", "appid": "wx0123456789abcdef", "page": "pages/reorder/index?order=SO1", "pic_media_id": "SRC"}
	miniByPicURL := map[string]string{"title": "该补货啦", "appid": "wx0123456789abcdef", "page": "pages/reorder/index?order=SO1", "picurl": "SRC"}
	const task = `{"chat_type":"single","external_userid":["wmChen"],"sender":"li",`
	const app = `{"touser":"li","msgtype":`
	const kf = `{"touser":"wmChen","open_kfid":"wkKF01","msgid":"KFMSGID",`
	newsLink := `{"msgtype":"link","link":{"title":"山茶花新人专享：¥50优惠券","picurl":"https://shop.example.com/static/coupon.png","desc":"李娜为您申请的新人券","url":"https://shop.example.com/coupons/NEW50?a=1&b=2"}}`
	miniAtt := `{"msgtype":"miniprogram","miniprogram":{"title":"该补货啦","pic_media_id":"MEDIA","appid":"wx0123456789abcdef","page":"pages/reorder/index?order=SO1"}}`

	tests := []struct {
		name   string
		m      adapters.Outbound
		source string // path on the media server, when the message names one
		api    string
		want   string
	}{
		{"task text", viaGuide("text", "店里上新了", nil), "", "externalcontact/add_msg_template",
			task + `"text":{"content":"店里上新了"}}`},
		{"task news", viaGuide("news", "", news), "", "externalcontact/add_msg_template",
			task + `"attachments":[` + newsLink + `]}`},
		{"task news with text", viaGuide("news", "送您一张券", news), "", "externalcontact/add_msg_template",
			task + `"text":{"content":"送您一张券"},"attachments":[` + newsLink + `]}`},
		{"task news without picture", viaGuide("news", "", map[string]string{"title": "t", "url": "https://e.com/x"}), "", "externalcontact/add_msg_template",
			task + `"attachments":[{"msgtype":"link","link":{"title":"t","url":"https://e.com/x"}}]}`},
		{"task miniprogram, cover by URL", viaGuide("miniprogram", "", mini), pic, "externalcontact/add_msg_template",
			task + `"attachments":[` + miniAtt + `]}`},
		{"task miniprogram, cover by picurl", viaGuide("miniprogram", "", miniByPicURL), pic, "externalcontact/add_msg_template",
			task + `"attachments":[` + miniAtt + `]}`},
		{"task image", viaGuide("image", "看看新款", map[string]string{"picurl": "SRC"}), pic, "externalcontact/add_msg_template",
			task + `"text":{"content":"看看新款"},"attachments":[{"msgtype":"image","image":{"media_id":"MEDIA"}}]}`},
		{"task image sent as octet-stream", viaGuide("image", "", map[string]string{"picurl": "SRC"}), "/octet.png", "externalcontact/add_msg_template",
			task + `"attachments":[{"msgtype":"image","image":{"media_id":"MEDIA"}}]}`},
		{"task file", viaGuide("file", "", map[string]string{"url": "SRC", "filename": "价目表.pdf"}), "/doc/price-list.pdf", "externalcontact/add_msg_template",
			task + `"attachments":[{"msgtype":"file","file":{"media_id":"MEDIA"}}]}`},

		{"welcome text", welcome("text", "您好，我是李娜", nil), "", "externalcontact/send_welcome_msg",
			`{"welcome_code":"CODE","text":{"content":"您好，我是李娜"}}`},
		{"welcome news", welcome("news", "", news), "", "externalcontact/send_welcome_msg",
			`{"welcome_code":"CODE","attachments":[` + newsLink + `]}`},
		{"welcome miniprogram", welcome("miniprogram", "欢迎", mini), pic, "externalcontact/send_welcome_msg",
			`{"welcome_code":"CODE","text":{"content":"欢迎"},"attachments":[` + miniAtt + `]}`},
		{"welcome image", welcome("image", "", map[string]string{"picurl": "SRC"}), pic, "externalcontact/send_welcome_msg",
			`{"welcome_code":"CODE","attachments":[{"msgtype":"image","image":{"media_id":"MEDIA"}}]}`},

		{"guide text", toGuide("text", "今天有3个待办", nil), "", "message/send",
			app + `"text","agentid":1000002,"text":{"content":"今天有3个待办"}}`},
		{"guide markdown", toGuide("markdown", "### 待办\n- 回访 <王小美>", map[string]string{"title": "待办"}), "", "message/send",
			app + `"markdown","agentid":1000002,"markdown":{"content":"### 待办\n- 回访 <王小美>"}}`},
		{"guide textcard", toGuide("textcard", "王小美想找您", map[string]string{"title": "新的转接", "url": "https://scrm.example.com/h/42", "btntxt": "查看"}), "", "message/send",
			app + `"textcard","agentid":1000002,"textcard":{"title":"新的转接","description":"王小美想找您","url":"https://scrm.example.com/h/42","btntxt":"查看"}}`},
		{"guide news", toGuide("news", "", news), "", "message/send",
			app + `"news","agentid":1000002,"news":{"articles":[{"title":"山茶花新人专享：¥50优惠券","description":"李娜为您申请的新人券","url":"https://shop.example.com/coupons/NEW50?a=1&b=2","picurl":"https://shop.example.com/static/coupon.png"}]}}`},

		{"kf text", inKF("text", "在的", nil), "", "kf/send_msg",
			kf + `"msgtype":"text","text":{"content":"在的"}}`},
		{"kf news", inKF("news", "", map[string]string{"title": "新人券", "description": "门店和商城通用", "url": "https://shop.example.com/c", "picurl": "SRC"}), pic, "kf/send_msg",
			kf + `"msgtype":"link","link":{"title":"新人券","desc":"门店和商城通用","url":"https://shop.example.com/c","thumb_media_id":"MEDIA"}}`},
		{"kf miniprogram", inKF("miniprogram", "", mini), pic, "kf/send_msg",
			kf + `"msgtype":"miniprogram","miniprogram":{"appid":"wx0123456789abcdef","title":"该补货啦","thumb_media_id":"MEDIA","pagepath":"pages/reorder/index?order=SO1"}}`},
		{"kf image", inKF("image", "", map[string]string{"picurl": "SRC"}), pic, "kf/send_msg",
			kf + `"msgtype":"image","image":{"media_id":"MEDIA"}}`},
		{"kf file", inKF("file", "", map[string]string{"url": "SRC"}), "/doc/price-list.pdf", "kf/send_msg",
			kf + `"msgtype":"file","file":{"media_id":"MEDIA"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newKindsEnv(t)
			m := tt.m
			m.Fields = map[string]string{}
			src := ""
			if tt.source != "" {
				src = e.media.url(tt.source)
			}
			for k, v := range tt.m.Fields {
				m.Fields[k] = strings.ReplaceAll(v, "SRC", src)
			}
			code := ""
			if m.Fields["welcome_code"] != "" {
				code = e.fake.IssueWelcomeCode(m.To)
				m.Fields["welcome_code"] = code
			}
			if m.ReplyTo != nil {
				e.openKF(m.To)
			}
			preview, err := e.client.Spec().Preview(&m)
			if err != nil {
				t.Fatalf("Preview: %v", err)
			}
			if _, err := e.client.Send(context.Background(), &m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			mediaID := ""
			if tt.source != "" {
				up := e.lastUpload(t)
				mediaID = up.MediaID
				if n := len(e.fake.Uploads()); n != 1 {
					t.Errorf("%d uploads, want 1", n)
				}
				if want := map[bool]string{true: "image", false: "file"}[strings.HasSuffix(tt.source, ".png")]; up.Type != want {
					t.Errorf("uploaded as %s, want %s", up.Type, want)
				}
				if m.Fields["filename"] != "" && up.Filename != m.Fields["filename"] {
					t.Errorf("uploaded as file %q, want %q", up.Filename, m.Fields["filename"])
				}
			}
			got := e.lastBody(t, tt.api)
			want := strings.NewReplacer("MEDIA", mediaID, "CODE", code).Replace(tt.want)
			if strings.Contains(want, "KFMSGID") {
				var sent struct {
					MsgID string `json:"msgid"`
				}
				_ = json.Unmarshal([]byte(got), &sent)
				if len(sent.MsgID) != 32 {
					t.Errorf("kf msgid %q is not derived from the idempotency key", sent.MsgID)
				}
				want = strings.ReplaceAll(want, "KFMSGID", sent.MsgID)
			}
			if got != want {
				t.Errorf("WeCom received\n%s\nwant\n%s", got, want)
			}
			if preview.API != tt.api {
				t.Errorf("Preview API = %s, want %s", preview.API, tt.api)
			}
			if wantPreview := strings.ReplaceAll(want, mediaIDOr(mediaID), src); string(preview.Body) != wantPreview {
				t.Errorf("Preview body\n%s\nwant (what WeCom received, source URL for the media id)\n%s", preview.Body, wantPreview)
			}
		})
	}
}

// mediaIDOr keeps strings.ReplaceAll from replacing "" everywhere.
func mediaIDOr(id string) string {
	if id == "" {
		return "\x00none"
	}
	return id
}

// TestSendKindRefused: a kind a route cannot carry, or a missing field,
// is refused before any call to WeCom, with the reason, and not retried.
func TestSendKindRefused(t *testing.T) {
	long := "https://shop.example.com/" + strings.Repeat("a", 2048)
	tests := []struct {
		name   string
		m      adapters.Outbound
		reason string
	}{
		{"markdown to a member", adapters.Outbound{To: "wmChen", Via: "li", Kind: "markdown", Text: "# hi"}, "cannot send a markdown to a member through their guide"},
		{"action card to a member", adapters.Outbound{To: "wmChen", Via: "li", Kind: "action_card", Text: "x"}, "cannot send a action_card"},
		{"textcard in a welcome", adapters.Outbound{To: "wmChen", Kind: "textcard", Text: "x", Fields: map[string]string{"welcome_code": "C", "title": "t", "url": "https://e.com"}}, "in a welcome"},
		{"image to a guide", adapters.Outbound{To: "li", ToParty: adapters.PartyGuide, Kind: "image", Fields: map[string]string{"picurl": "https://e.com/a.png"}}, "cannot send a image to a guide"},
		{"miniprogram to a guide", adapters.Outbound{To: "li", ToParty: adapters.PartyGuide, Kind: "miniprogram"}, "to a guide"},
		{"markdown in kf", adapters.Outbound{To: "wmChen", Kind: "markdown", Text: "x", ReplyTo: map[string]string{"open_kfid": "wk"}}, "customer-service"},
		{"news without url", adapters.Outbound{To: "wmChen", Via: "li", Kind: "news", Fields: map[string]string{"title": "t"}}, "needs url"},
		{"news without anything", adapters.Outbound{To: "wmChen", Via: "li", Kind: "news"}, "needs title, url"},
		{"kf news without picture", adapters.Outbound{To: "wmChen", Kind: "news", Fields: map[string]string{"title": "t", "url": "https://e.com"}, ReplyTo: map[string]string{"open_kfid": "wk"}}, "needs a picurl"},
		{"miniprogram without cover", adapters.Outbound{To: "wmChen", Via: "li", Kind: "miniprogram", Fields: map[string]string{"title": "t", "appid": "wx", "page": "p"}}, "needs pic_media_id or picurl"},
		{"picurl not a link", adapters.Outbound{To: "wmChen", Via: "li", Kind: "image", Fields: map[string]string{"picurl": "cover.png"}}, "not an http(s) link"},
		{"image without picture", adapters.Outbound{To: "wmChen", Via: "li", Kind: "image"}, "needs media_id or picurl"},
		{"empty text", adapters.Outbound{To: "wmChen", Via: "li", Kind: "text", Text: "  "}, "empty text"},
		{"empty guide text", adapters.Outbound{To: "li", ToParty: adapters.PartyGuide, Text: ""}, "empty text"},
		{"textcard without text", adapters.Outbound{To: "li", ToParty: adapters.PartyGuide, Kind: "textcard", Fields: map[string]string{"title": "t", "url": "https://e.com"}}, "needs a text"},
		{"url too long", adapters.Outbound{To: "wmChen", Via: "li", Kind: "news", Fields: map[string]string{"title": "t", "url": long}}, "at most 2048"},
		{"url not http", adapters.Outbound{To: "li", ToParty: adapters.PartyGuide, Kind: "news", Fields: map[string]string{"title": "t", "url": "javascript:alert(1)"}}, "not an http(s) link"},
		{"task text too long", adapters.Outbound{To: "wmChen", Via: "li", Text: strings.Repeat("好", 1400)}, "at most 4000"},
	}
	e := newKindsEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := len(e.fake.Calls())
			_, err := e.client.Send(context.Background(), &tt.m)
			if !errors.Is(err, adapters.ErrInvalidMessage) || adapters.Retryable(err) {
				t.Fatalf("Send = %v, want a permanent ErrInvalidMessage", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if _, perr := wecom.Spec().Preview(&tt.m); !errors.Is(perr, adapters.ErrInvalidMessage) {
				t.Errorf("Preview = %v, want the same refusal", perr)
			}
			if n := len(e.fake.Calls()) - calls; n != 0 {
				t.Errorf("%d calls to WeCom", n)
			}
		})
	}
}

// TestSendClipsTitles: titles and descriptions over WeCom's limits are cut
// on a character boundary (the fake refuses them whole), so the message
// still goes out.
func TestSendClipsTitles(t *testing.T) {
	e := newKindsEnv(t)
	m := &adapters.Outbound{To: "wmChen", Via: "li", Kind: "news", Fields: map[string]string{
		"title": strings.Repeat("新", 60), "description": strings.Repeat("券", 300), "url": "https://e.com/x"}}
	if _, err := e.client.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	l := e.fake.MsgTemplates()[0].Attachments[0].Link
	if len(l.Title) > 128 || len(l.Title) < 126 || !utf8.ValidString(l.Title) || len(l.Desc) > 512 || !utf8.ValidString(l.Desc) {
		t.Errorf("title %d bytes, desc %d bytes: want cut to 128 and 512 on a character boundary", len(l.Title), len(l.Desc))
	}
}

// TestSendInvalidRequestIsPermanent: the API's own refusals
// (ErrInvalidRequest) are ErrInvalidMessage, not retried.
func TestSendInvalidRequestIsPermanent(t *testing.T) {
	e := newKindsEnv(t)
	err := e.client.API().SendWelcome(context.Background(), "code", "")
	if !errors.Is(err, wecom.ErrInvalidRequest) || !errors.Is(err, adapters.ErrInvalidMessage) || adapters.Retryable(err) {
		t.Fatalf("err = %v, want ErrInvalidRequest, ErrInvalidMessage, not retryable", err)
	}
}

// TestSendMediaUploadedOnce: a picture is fetched and uploaded once, and
// its media id reused by later sends and by other replicas, until the
// cache entry expires; a media id WeCom forgot is uploaded again.
func TestSendMediaUploadedOnce(t *testing.T) {
	e := newKindsEnv(t)
	src := e.media.url("/pic/cover.png")
	send := func(c *wecom.Client, to string) error {
		_, err := c.Send(context.Background(), &adapters.Outbound{To: to, Via: "li", Kind: "image", Fields: map[string]string{"picurl": src}})
		return err
	}
	if err := send(e.client, "wmChen"); err != nil {
		t.Fatal(err)
	}
	if err := send(e.client, "wmWang"); err != nil {
		t.Fatal(err)
	}
	if err := send(e.newClient(t), "wmChen"); err != nil {
		t.Fatal(err)
	}
	ups := e.fake.Uploads()
	if len(ups) != 1 || e.media.hitsOf("/pic/cover.png") != 1 {
		t.Fatalf("%d uploads, %d fetches; want 1 and 1", len(ups), e.media.hitsOf("/pic/cover.png"))
	}
	if up := ups[0]; up.Type != "image" || up.ContentType != "image/png" || up.Filename != "cover.png" || up.Size != len(pngBytes(t)) {
		t.Errorf("upload = %+v", up)
	}
	for _, task := range e.fake.MsgTemplates() {
		if id := task.Attachments[0].Image.MediaID; id != ups[0].MediaID {
			t.Errorf("task carries media %q, want %q", id, ups[0].MediaID)
		}
	}
	// The cache keeps the media id for less than WeCom's 3 days.
	var key string
	for _, k := range e.tokens.keys() {
		if strings.HasPrefix(k, "wecom:media:") {
			key = k
		}
	}
	e.tokens.mu.Lock()
	ttl := e.tokens.vals[key].exp.Sub(e.tokens.now())
	e.tokens.mu.Unlock()
	if key == "" || strings.Contains(key, src) || ttl > 72*3600e9 || ttl < 48*3600e9 {
		t.Errorf("media cache key %q, ttl %v: want a hashed key living between 2 and 3 days", key, ttl)
	}

	// WeCom forgot the media: the send fails, retryably, and the next one
	// uploads the picture again.
	e.fake.ExpireMedia()
	err := send(e.client, "wmWang")
	if err == nil || !adapters.Retryable(err) || errors.Is(err, adapters.ErrOutcomeUnknown) {
		t.Fatalf("send with a forgotten media = %v, want a retryable error", err)
	}
	if err := send(e.client, "wmWang"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.Uploads()); n != 2 {
		t.Errorf("%d uploads, want the picture uploaded again", n)
	}
	for _, tok := range e.fake.IssuedTokens() {
		if strings.Contains(e.logs.String(), tok) {
			t.Error("an access token was logged")
		}
	}
}

// TestSendMediaFailures: a picture that cannot be used is a permanent
// ErrInvalidMessage that says why; a failure to fetch or upload it this
// time is retried.
func TestSendMediaFailures(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		kind      string
		before    func(f *wecomfake.Server)
		permanent bool
		reason    string
	}{
		{"404", "/missing.png", "image", nil, true, "HTTP 404"},
		{"not a picture", "/page.html", "image", nil, true, "not a JPG or PNG"},
		{"html sent as png", "/disguised.png", "image", nil, true, "not a JPG or PNG"},
		{"pdf as a miniprogram cover", "/doc/price-list.pdf", "miniprogram", nil, true, "not a JPG or PNG"},
		{"over 10 MB", "/huge.png", "image", nil, true, "over WeCom's 10 MB"},
		{"over 10 MB, no length", "/huge-chunked.png", "image", nil, true, "over WeCom's 10 MB"},
		{"source 502", "/broken.png", "image", nil, false, "HTTP 502"},
		{"upload refused", "/pic/a.png", "image", func(f *wecomfake.Server) { f.FailNext(wecomfake.PathMediaUpload, 1, wecomfake.CodeInvalidFileType, "") }, true, "40005"},
		{"upload 502", "/pic/a.png", "image", func(f *wecomfake.Server) { f.FailHTTPNext(wecomfake.PathMediaUpload, 1, 502) }, false, "502"},
		{"upload busy", "/pic/a.png", "image", func(f *wecomfake.Server) { f.FailNext(wecomfake.PathMediaUpload, 1, wecomfake.CodeSystemBusy, "") }, false, "-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newKindsEnv(t)
			if tt.before != nil {
				tt.before(e.fake)
			}
			m := &adapters.Outbound{To: "wmChen", Via: "li", Kind: tt.kind, Fields: map[string]string{"picurl": e.media.url(tt.path)}}
			if tt.kind == "miniprogram" {
				m.Fields = map[string]string{"title": "t", "appid": "wx", "page": "p", "pic_media_id": e.media.url(tt.path)}
			}
			_, err := e.client.Send(context.Background(), m)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if errors.Is(err, adapters.ErrInvalidMessage) != tt.permanent || adapters.Retryable(err) == tt.permanent {
				t.Errorf("err = %v: permanent %v (ErrInvalidMessage %v, retryable %v)", err, tt.permanent,
					errors.Is(err, adapters.ErrInvalidMessage), adapters.Retryable(err))
			}
			if errors.Is(err, adapters.ErrOutcomeUnknown) {
				t.Errorf("err = %v: nothing was sent, the outcome is known", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if n := len(e.fake.MsgTemplates()); n != 0 {
				t.Errorf("WeCom got %d message tasks", n)
			}
			if !tt.permanent && tt.before != nil {
				// The retry goes through.
				if _, err := e.client.Send(context.Background(), m); err != nil {
					t.Fatalf("retry: %v", err)
				}
			}
		})
	}
}

// TestSpec: the channel's Spec, and the Client's.
func TestSpec(t *testing.T) {
	s := wecom.Spec()
	if s.Name != "wecom" || !slices.Equal(s.Kinds(adapters.PartyMember), []string{"text", "news", "miniprogram", "image", "file"}) ||
		!slices.Equal(s.Kinds(adapters.PartyGuide), []string{"text", "textcard", "news", "markdown"}) {
		t.Errorf("Spec = %+v", s)
	}
	var c adapters.Channel = newKindsEnv(t).client
	sp, ok := c.(adapters.Specified)
	if !ok {
		t.Fatal("Client is not adapters.Specified")
	}
	r, err := sp.Spec().Preview(&adapters.Outbound{To: "li", ToParty: adapters.PartyGuide, Text: "hi"})
	if err != nil || r.API != "message/send" || !strings.Contains(string(r.Body), `"agentid":1000002`) {
		t.Errorf("Client Preview = %+v, %v; want the configured agentid", r, err)
	}
	r, err = s.Preview(&adapters.Outbound{To: "wmChen", Via: "li", Kind: "image", Fields: map[string]string{"picurl": "https://e.com/a.png"}})
	if err != nil || string(r.Body) != `{"chat_type":"single","external_userid":["wmChen"],"sender":"li","attachments":[{"msgtype":"image","image":{"media_id":"https://e.com/a.png"}}]}` {
		t.Errorf("Preview = %s, %v", r.Body, err)
	}
	if _, err := s.Preview(&adapters.Outbound{To: "wmChen", Text: "hi"}); !errors.Is(err, adapters.ErrInvalidRecipient) {
		t.Errorf("Preview without a route = %v, want ErrInvalidRecipient", err)
	}
}

// TestReconcileCards: Reconcile tells message tasks of cards apart by
// their attachments (they have no text), an uploaded cover's media id
// aside.
func TestReconcileCards(t *testing.T) {
	e := newKindsEnv(t)
	claimed := time.Now()
	newsA := &adapters.Outbound{To: "wmChen", Via: "li", Kind: "news", Fields: map[string]string{"title": "新人券", "url": "https://e.com/a", "picurl": "https://e.com/a.png"}}
	newsB := &adapters.Outbound{To: "wmChen", Via: "li", Kind: "news", Fields: map[string]string{"title": "回归券", "url": "https://e.com/b"}}
	mini := &adapters.Outbound{To: "wmChen", Via: "li", Kind: "miniprogram", Fields: map[string]string{"title": "补货", "appid": "wx1", "page": "p/i",
		"pic_media_id": e.media.url("/pic/c.png")}}
	ra, err := e.client.Send(context.Background(), newsA)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := e.client.Send(context.Background(), mini)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		m    *adapters.Outbound
		want string
	}{
		{"news sent", newsA, ra.ExternalID},
		{"other news not sent", newsB, ""},
		{"miniprogram sent", mini, rm.ExternalID},
	} {
		r, sent, err := e.client.Reconcile(context.Background(), tc.m, claimed)
		if err != nil || sent != (tc.want != "") || sent && r.ExternalID != tc.want {
			t.Errorf("%s: Reconcile = %+v, %v, %v; want task %q", tc.name, r, sent, err, tc.want)
		}
	}
}

// TestSendMediaRefusesPrivateAddresses: by default a picture on the
// gateway's own network (here loopback) is never fetched, and the send
// fails for good, saying why; wecom.media_fetch_private allows it.
func TestSendMediaRefusesPrivateAddresses(t *testing.T) {
	e := newKindsEnv(t)
	cfg := e.fake.Config()
	cfg.Brand = "acme"
	c, err := wecom.New(cfg, wecom.Deps{Recorder: nopRecorder{}, Tokens: newMemTokens(), Cursors: nopCursors{}})
	if err != nil {
		t.Fatal(err)
	}
	m := &adapters.Outbound{To: "wmChen", Via: "li", Kind: "image", Fields: map[string]string{"picurl": e.media.url("/pic/inside.png")}}
	_, err = c.Send(context.Background(), m)
	if !errors.Is(err, adapters.ErrInvalidMessage) || adapters.Retryable(err) || !strings.Contains(err.Error(), "media_fetch_private") {
		t.Fatalf("Send = %v, want a permanent refusal naming wecom.media_fetch_private", err)
	}
	if n := e.media.hitsOf("/pic/inside.png"); n != 0 {
		t.Errorf("the private address was fetched %d times", n)
	}
	if n := len(e.fake.MsgTemplates()); n != 0 {
		t.Errorf("WeCom got %d message tasks", n)
	}
	// Allowed: the same send goes through.
	if _, err := e.client.Send(context.Background(), m); err != nil {
		t.Fatalf("with media_fetch_private: %v", err)
	}
}

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2001:4860:4860::8888": true, "203.0.113.9": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "100.64.0.1": false, "0.0.0.0": false, "::": false,
		"::ffff:127.0.0.1": false, "fd00::1": false, "224.0.0.1": false,
	} {
		if got := wecom.PublicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("PublicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestSendMediaKeepsSignedLinksOutOfLogs: a picture named by a signed link
// (an object store's) is fetched with its query, but errors and logs show
// the link without it.
func TestSendMediaKeepsSignedLinksOutOfLogs(t *testing.T) {
	e := newKindsEnv(t)
	const secret = "Signature=c2VjcmV0LXNpZ25hdHVyZQ"
	for _, path := range []string{"/pic/signed.png", "/missing-signed.png"} {
		m := &adapters.Outbound{To: "wmChen", Via: "li", Kind: "image", Fields: map[string]string{"picurl": e.media.url(path) + "?" + secret}}
		_, err := e.client.Send(context.Background(), m)
		if path == "/pic/signed.png" && err != nil {
			t.Fatalf("Send: %v", err)
		}
		if path == "/missing-signed.png" && (err == nil || !strings.Contains(err.Error(), path+"?…")) {
			t.Errorf("Send = %v, want an error naming %s without its query", err, path)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the link's signature: %v", err)
		}
	}
	if e.media.hitsOf("/pic/signed.png") != 1 {
		t.Errorf("the signed picture was fetched %d times, want 1", e.media.hitsOf("/pic/signed.png"))
	}
	if logs := e.logs.String(); strings.Contains(logs, secret) || !strings.Contains(logs, "/pic/signed.png?…") {
		t.Errorf("logs show the signature, or not the upload:\n%s", logs)
	}
}
