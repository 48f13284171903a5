package app

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wechatoa"
	"github.com/scrmgw/scrmgw/adapters/wechatoa/oafake"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store"
)

// TestWeChatOAPictureByURLWithRedis: a workflow greets new followers
// with a picture its template names by URL (a wechat_oa image variant).
// The gateway fetches it from the brand's image host (on loopback here:
// wechat_oa.media_fetch_private), uploads it to the account as temporary
// media, and sends the customer-service image by the media id WeChat
// answered; the second follower's greeting reuses the media id cached in
// Redis, uploading nothing. Each request the account took is asserted as
// sent.
func TestWeChatOAPictureByURLWithRedis(t *testing.T) {
	wc := wecomfake.New(t)
	oa := oafake.New(t, oafake.Account{AppID: "wx5823bf96d3bd56c7", AppSecret: "oa-app-secret", Token: "QDG6eK",
		EncodingAESKey: "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", Mode: wechatoa.ModeSafe})
	cdn := newShopCDN(t)
	cfg := weComConfig(t, wc, "wechat-oa-picture-admin-token-01")
	cfg.WeChatOA = wechatoa.Config{AppID: oa.Account.AppID, AppSecret: oa.Account.AppSecret, Token: oa.Account.Token,
		EncodingAESKey: oa.Account.EncodingAESKey, Mode: wechatoa.ModeSafe, Brand: "acme", APIBase: oa.URL, MaxClockSkew: 5 * time.Minute,
		MediaFetchPrivate: true}
	// The shipped templates and one more: a picture for followers.
	cfg.TemplatesDir = t.TempDir()
	for _, src := range mustGlob(t, "../../../../configs/templates/*.yaml") {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.TemplatesDir, filepath.Base(src)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	picURL := cdn.srv.URL + "/static/spring-look.png"
	tmpl := "id: oa_spring\ndescription: The spring look, as a picture.\nlocales:\n  zh:\n    default: 春季新款到店啦\n" +
		"    wechat_oa:\n      kind: image\n      picurl: " + picURL + "\n"
	if err := os.WriteFile(filepath.Join(cfg.TemplatesDir, "oa_spring.yaml"), []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, cfg)
	tok := cfg.AdminToken
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜","wecom_userid":"li"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, tok, req.body); code != 201 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	wf := "name: oa-spring\ntrigger:\n  event: member.joined\nentry:\n  brand: acme\n  re_entry: never\ngoal: none\n" +
		"send_rules:\n  quiet_hours: none\nsteps:\n  - id: look\n    send: oa_spring\n"
	if code, body := putWorkflow(t, s, tok, "acme", "oa-spring", wf); code != 201 {
		t.Fatalf("PUT workflow: %d %s", code, body)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/workflows/oa-spring/enable?brand=acme", tok, ""); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}
	code, body := request(t, "POST", s.base+"/api/v1/stores/sh-1/contact-way?channel=wechat_oa", tok, "")
	var way store.ContactWay
	if code != 201 || json.Unmarshal([]byte(body), &way) != nil {
		t.Fatalf("store's account code: %d %s", code, body)
	}
	callback := s.base + wechatoa.CallbackPath

	// Two followers scan the store's code; each is greeted with the
	// picture.
	var mediaID string
	for i, openID := range []string{"oChen", "oWang"} {
		oa.AddFollower(openID, "u"+openID)
		if code, body := oa.ScanAndFollow(t, callback, openID, way.ConfigID); code != 200 || body != "success" {
			t.Fatalf("follow: %d %q", code, body)
		}
		sent := oa.WaitSent(t, "the picture", openID, "/message/custom/send")
		ups := oa.Uploads()
		if len(ups) != 1 {
			t.Fatalf("after %d greetings: %d uploads, want 1", i+1, len(ups))
		}
		if i == 0 {
			up := ups[0]
			if up.Type != "image" || up.Filename != "spring-look.png" || up.ContentType != "image/png" ||
				up.FileLength != strconv.Itoa(len(up.Data)) || !bytes.HasPrefix(up.Data, []byte("\x89PNG\r\n\x1a\n")) {
				t.Errorf("upload: type %q, filename %q, content type %q, filelength %q, %d bytes; want the PNG as image spring-look.png",
					up.Type, up.Filename, up.ContentType, up.FileLength, len(up.Data))
			}
			mediaID = up.MediaID
		}
		sentIs(t, "greeting to "+openID, sent, "/cgi-bin/message/custom/send",
			map[string]any{"touser": openID, "msgtype": "image", "image": map[string]any{"media_id": mediaID}})
	}
	if n := cdn.fetches(cdn.srv.Listener.Addr().String() + "/static/spring-look.png"); n != 1 {
		t.Errorf("the picture was fetched %d times, want 1 (its media id cached)", n)
	}
}
