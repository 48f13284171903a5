package app

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestMemberCodeAtTheTillWithRedis: a member asks WeCom customer service
// for her member code (a signed kf callback, then sync_msg); the reply
// kf/send_msg the fake received is her code as text, which the brand's
// POS then identifies her by: name, masked phone, level and points. The
// till of another brand does not know the code.
func TestMemberCodeAtTheTillWithRedis(t *testing.T) {
	s, fake := handoffWeCom(t, 30*time.Minute)
	tok := "handoff-e2e-admin-token-01"
	code, body := request(t, "POST", s.base+"/api/v1/tokens", tok, `{"name":"acme pos","brand":"acme"}`)
	var pos struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(body), &pos); code != 201 || err != nil {
		t.Fatalf("token: %d %s", code, body)
	}

	kfSay(t, s, fake, "会员码")
	sent := waitKF(t, fake, 1, "会员码：")
	var wire map[string]any
	if err := json.Unmarshal(sent.Body, &wire); err != nil {
		t.Fatal(err)
	}
	delete(wire, "msgid") // the gateway's idempotency key, checked by the fake
	text, _ := wire["text"].(map[string]any)["content"].(string)
	re := regexp.MustCompile(`^陈女士的ACME会员码：\n(97\d\d \d{4} \d{4} \d{4} \d\d)\n结账时报出或出示此号码，收银员即可识别会员、积分和可用优惠券。\d\d:\d\d前有效，过期请再发送“会员码”。$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("kf reply text = %q, want the member code", text)
	}
	want := map[string]any{"touser": "wmKF", "open_kfid": "wkKF1", "msgtype": "text", "text": map[string]any{"content": text}}
	if d := cmp.Diff(want, wire); d != "" {
		t.Errorf("kf/send_msg body (-want +got):\n%s", d)
	}
	memberCode := strings.ReplaceAll(m[1], " ", "")

	code, body = request(t, "POST", s.base+"/api/v1/pos/identify", pos.Token, `{"code":"`+memberCode+`"}`)
	if code != 200 {
		t.Fatalf("identify: %d %s", code, body)
	}
	var got map[string]any
	json.Unmarshal([]byte(body), &got)
	member, _ := got["member"].(map[string]any)
	if got["brand"] != "acme" || member["name"] != "陈女士" || member["phone"] != "+86138****8000" || got["points"] != 0.0 {
		t.Errorf("identify = %s", body)
	}
	if strings.Contains(body, "13800138000") {
		t.Errorf("identify shows the full phone: %s", body)
	}
	// Another brand's till: not found, nothing said about the code.
	request(t, "POST", s.base+"/api/v1/brands", tok, `{"id":"zeta","name":"Zeta"}`)
	code, body = request(t, "POST", s.base+"/api/v1/pos/identify", tok, `{"code":"`+memberCode+`","brand":"zeta"}`)
	if code != 404 || !strings.Contains(body, `"code":"not_found"`) {
		t.Errorf("zeta identify: %d %s", code, body)
	}
}

// TestMemberCodeLinkWithRedis: with http.public_url set, the member's
// "会员码" on WeCom customer service is answered with her code and then a
// kf link card to her code page, whose thumbnail the gateway served to
// the channel for upload; the page (through the gateway) shows a code
// the POS accepts, and its QR code and barcode load.
func TestMemberCodeLinkWithRedis(t *testing.T) {
	fake := wecomfake.New(t)
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "membercode-e2e-admin-token-1"
	cfg.Security.PhoneKey = strings.Repeat("ab", 32)
	cfg.WeCom = fake.Config()
	cfg.WeCom.Brand = "acme"
	cfg.HTTP.PublicURL = "http://scrm.example.com"
	// The channel fetches the card's picture from the public address,
	// which is this gateway.
	var gw atomic.Value
	gw.Store("")
	mediaHTTPForTests = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, gw.Load().(string))
		}}}
	s := startServe(t, cfg)
	mediaHTTPForTests = nil
	gw.Store(strings.TrimPrefix(s.base, "http://"))
	tok := cfg.AdminToken
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/tokens", `{"name":"acme pos","brand":"acme"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, tok, req.body); code != 201 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	ctx := context.Background()
	m, _, err := s.app.Store.EnsureMember(ctx, store.NewMember{Phone: "13800138000", Name: "陈女士", BrandID: "acme",
		Identities: []store.Identity{{Channel: "wecom", ExternalID: "wmKF"}}})
	if err != nil {
		t.Fatal(err)
	}

	kfSay(t, s, fake, "会员码")
	// The answer is two sends, the text and the link card (whose
	// picture is uploaded first): they may reach WeCom in either order.
	waitFor(t, "the code's text and link card", func() bool { return len(fake.KFSent()) >= 2 })
	text, card := fake.KFSent()[0], fake.KFSent()[1]
	if text.Text == "" {
		text, card = card, text
	}
	if text.ToUser != "wmKF" || text.OpenKfID != "wkKF1" || !strings.Contains(text.Text, "陈女士的ACME会员码：") {
		t.Fatalf("kf text = to %s via %s: %q, want %q", text.ToUser, text.OpenKfID, text.Text, "陈女士的ACME会员码：")
	}
	var wire struct {
		ToUser   string `json:"touser"`
		OpenKfID string `json:"open_kfid"`
		MsgType  string `json:"msgtype"`
		Link     struct {
			Title        string `json:"title"`
			Desc         string `json:"desc"`
			URL          string `json:"url"`
			ThumbMediaID string `json:"thumb_media_id"`
		} `json:"link"`
	}
	if err := json.Unmarshal(card.Body, &wire); err != nil {
		t.Fatal(err)
	}
	if wire.ToUser != "wmKF" || wire.OpenKfID != "wkKF1" || wire.MsgType != "link" || wire.Link.Title != "ACME会员码" ||
		wire.Link.Desc != "点击出示会员二维码和条形码，收银员扫码即可识别会员。链接10分钟内有效。" ||
		!strings.HasPrefix(wire.Link.URL, "http://scrm.example.com/m/code/acme."+strconv.FormatInt(m.ID, 10)+".") {
		t.Fatalf("kf link = %s", card.Body)
	}
	var thumb *wecomfake.MediaUpload
	for _, u := range fake.Uploads() {
		if u.MediaID == wire.Link.ThumbMediaID {
			thumb = &u
		}
	}
	if thumb == nil || thumb.Type != "image" || thumb.Size < 100 {
		t.Errorf("the card's thumbnail was not uploaded from the gateway: %+v", fake.Uploads())
	}

	// The member opens the link: the gateway's page shows her code.
	path := strings.TrimPrefix(wire.Link.URL, "http://scrm.example.com")
	resp, err := http.Get(s.base + path)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	shown := regexp.MustCompile(`id="code">(97[\d ]+)</p>`).FindSubmatch(page)
	if resp.StatusCode != 200 || shown == nil {
		t.Fatalf("code page: %d %s", resp.StatusCode, page)
	}
	var pos struct {
		Token string `json:"token"`
	}
	_, body := request(t, "POST", s.base+"/api/v1/tokens", tok, `{"name":"acme till","brand":"acme"}`)
	json.Unmarshal([]byte(body), &pos)
	code, body := request(t, "POST", s.base+"/api/v1/pos/identify", pos.Token, `{"code":"`+strings.ReplaceAll(string(shown[1]), " ", "")+`"}`)
	if code != 200 || !strings.Contains(body, `"name":"陈女士"`) {
		t.Errorf("identify the page's code: %d %s", code, body)
	}
	for _, img := range []string{"/qr.png", "/barcode.svg"} {
		resp, err := http.Get(s.base + path + img)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d", img, resp.StatusCode)
		}
	}
}
