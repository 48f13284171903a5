package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wechatoa"
	"github.com/scrmgw/scrmgw/adapters/wechatoa/oafake"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store"
)

// TestWeChatOAJourneyWithRedis tries the Official Account as a new user
// would, on PostgreSQL and Redis, with the account and WeCom on fakes
// that speak their real protocols (safe mode: every callback signed and
// AES-sealed with the account's EncodingAESKey). A member scans the
// store's QR code and follows: they become a member bound to the store's
// guide. They write "附近门店" and the bot asks where they are; they share
// their location and the bot answers with the store near them and their
// guide, each a customer-service message. A workflow greets them at once (inside WeChat's 48-hour
// window: a customer-service message) and again three days later
// (outside it: the account's template message mapped to the scrmgw
// template). A follower without a code is bound near where WeChat
// reports them. Then the same person adds the guide on WeCom: their
// UnionID makes them the same member. Each request the account's API took is
// asserted as sent.
func TestWeChatOAJourneyWithRedis(t *testing.T) {
	wc := wecomfake.New(t)
	oa := oafake.New(t, oafake.Account{AppID: "wx5823bf96d3bd56c7", AppSecret: "oa-app-secret", Token: "QDG6eK",
		EncodingAESKey: "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", Mode: wechatoa.ModeSafe})
	clock := newVirtualClock(time.Now())
	oa.Now = clock.Now // WeChat's 48 hours pass with the engine's
	cfg := weComConfig(t, wc, "wechat-oa-e2e-admin-token-01")
	cfg.WeChatOA = wechatoa.Config{AppID: oa.Account.AppID, AppSecret: oa.Account.AppSecret, Token: oa.Account.Token,
		EncodingAESKey: oa.Account.EncodingAESKey, Mode: wechatoa.ModeSafe, Brand: "acme", APIBase: oa.URL, MaxClockSkew: 5 * time.Minute,
		Templates: map[string]wechatoa.Template{"recall": {TemplateID: "TPL-recall-01", URL: "https://acme.example/new",
			Data: map[string]string{"thing1": "店里上新了", "thing2": "$text"}}}}
	s := startServeClock(t, cfg, clock.Now)
	tok := cfg.AdminToken
	ctx := context.Background()
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47,"address":"南京西路1号","opening_hours":"10:00-22:00"}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜","wecom_userid":"li"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, tok, req.body); code != 201 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	wc.AddEmployees("li")
	wf := `name: oa-hello
trigger:
  event: member.joined
entry:
  brand: acme
  re_entry: never
goal: purchase.completed
send_rules:
  quiet_hours: none
steps:
  - id: hello
    send: recall
  - id: later
    wait: 3d
  - id: again
    send: recall
`
	if code, body := putWorkflow(t, s, tok, "acme", "oa-hello", wf); code != 201 {
		t.Fatalf("PUT workflow: %d %s", code, body)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/workflows/oa-hello/enable?brand=acme", tok, ""); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}
	callback := s.base + wechatoa.CallbackPath

	// WeChat verifies the server URL.
	if code, body := oa.Verify(t, callback, "echo-5927"); code != 200 || body != "echo-5927" {
		t.Fatalf("server verification: %d %q", code, body)
	}
	// The store's permanent QR code on the account, made through the
	// API beside its WeCom contact way (the same state, one code each).
	code, body := request(t, "POST", s.base+"/api/v1/stores/sh-1/contact-way?channel=wechat_oa", tok, "")
	if code != 201 {
		t.Fatalf("store's account code: %d %s", code, body)
	}
	var storeCode store.ContactWay
	if err := json.Unmarshal([]byte(body), &storeCode); err != nil {
		t.Fatal(err)
	}
	ticket := storeCode.ConfigID
	if storeCode.Channel != wechatoa.ChannelName || storeCode.State != "s:sh-1" || storeCode.ExpiresAt != nil ||
		storeCode.QRCode != "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket="+ticket {
		t.Fatalf("store's account code %+v", storeCode)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/stores/sh-1/contact-way", tok, ""); code != 201 || !strings.Contains(body, `"channel":"wecom"`) {
		t.Fatalf("store's WeCom code: %d %s", code, body)
	}
	// The guide's own code, for a week.
	code, body = request(t, "POST", s.base+"/api/v1/guides/g-li/contact-way?channel=wechat_oa&expire=7d", tok, "")
	var guideCode store.ContactWay
	if code != 201 || json.Unmarshal([]byte(body), &guideCode) != nil || guideCode.State != "g:g-li" || guideCode.ExpiresAt == nil ||
		guideCode.ExpiresAt.Sub(clock.Now()) < 7*24*time.Hour-time.Minute || guideCode.ExpiresAt.Sub(clock.Now()) > 7*24*time.Hour+time.Minute {
		t.Fatalf("guide's week-long code: %d %s", code, body)
	}
	if got := oa.QRCodes(); len(got) != 2 {
		t.Fatalf("qrcode/create requests %+v, want the store's and the guide's", got)
	} else {
		sentIs(t, "store's code", got[0], "/cgi-bin/qrcode/create", map[string]any{"action_name": "QR_LIMIT_STR_SCENE",
			"action_info": map[string]any{"scene": map[string]any{"scene_str": "s:sh-1"}}})
		sentIs(t, "guide's code", got[1], "/cgi-bin/qrcode/create", map[string]any{"action_name": "QR_STR_SCENE", "expire_seconds": float64(7 * 24 * 3600),
			"action_info": map[string]any{"scene": map[string]any{"scene_str": "g:g-li"}}})
	}
	if code, body := request(t, "POST", s.base+"/api/v1/guides/g-li/contact-way?channel=wechat_oa&expire=31d", tok, ""); code != 400 || !strings.Contains(body, "30 days") {
		t.Errorf("a 31-day code: %d %s, want 400 naming WeChat's 30 days", code, body)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/stores/sh-1/contact-way?expire=7d", tok, ""); code != 400 || !strings.Contains(body, "only permanent") {
		t.Errorf("a temporary WeCom code: %d %s, want 400", code, body)
	}
	if code, body := request(t, "GET", s.base+"/api/v1/contact-ways?store_id=sh-1", tok, ""); code != 200 ||
		!strings.Contains(body, `"channel":"wecom"`) || !strings.Contains(body, `"channel":"wechat_oa"`) {
		t.Fatalf("the store's codes: %d %s, want both channels'", code, body)
	}

	// 陈女士 scans it and follows.
	oa.AddFollower("oChen", "uChen")
	if code, body := oa.ScanAndFollow(t, callback, "oChen", ticket); code != 200 || body != "success" {
		t.Fatalf("follow: %d %q", code, body)
	}
	var member *store.MemberView
	waitFor(t, "the follower bound to the store's guide", func() bool {
		v, err := s.app.Store.MemberByIdentity(ctx, wechatoa.ChannelName, "oChen")
		if err != nil || len(v.Bindings) != 1 {
			return false
		}
		member = v
		return true
	})
	if b := member.Bindings[0]; b.GuideID != "g-li" || b.StoreID != "sh-1" || b.Reason != "state" {
		t.Errorf("binding %+v, want g-li at sh-1 by the code's state", b)
	}

	// The workflow greets them inside the window: a customer-service text.
	hello := oa.WaitSent(t, "the workflow's first message", "oChen", "/message/custom/send")
	wantText := "您好，我是静安店的李娜。店里这周到了不少新款，想着您可能会喜欢，\n有空来静安店坐坐，我帮您挑几件试试？（营业时间 10:00-22:00）"
	sentIs(t, "first message", hello, "/cgi-bin/message/custom/send", map[string]any{"touser": "oChen", "msgtype": "text", "text": map[string]any{"content": wantText}})

	// They ask for the nearest store; the bot answers on the account.
	for range 2 { // WeChat retries a message it had no answer to in 5 s
		if code, body := oa.Say(t, callback, "oChen", 24017265386018, "附近门店"); code != 200 || body != "success" {
			t.Fatalf("message: %d %q", code, body)
		}
	}
	answer := oa.WaitSent(t, "the bot's answer", "oChen", "/message/custom/send")
	sentIs(t, "bot answer", answer, "/cgi-bin/message/custom/send", map[string]any{"touser": "oChen", "msgtype": "text", "text": map[string]any{
		"content": "请发送您的位置（点击“+” → 位置），我来为您查找最近的门店。"}})
	// They share where they are: the stores near them, and their guide.
	if code, body := oa.ShareLocation(t, callback, "oChen", 24017265386019, 31.2304, 121.4737, "南京西路"); code != 200 || body != "success" {
		t.Fatalf("location: %d %q", code, body)
	}
	answer = oa.WaitSent(t, "the bot's answer to a location", "oChen", "/message/custom/send")
	sentIs(t, "bot answer to a location", answer, "/cgi-bin/message/custom/send", map[string]any{"touser": "oChen", "msgtype": "text", "text": map[string]any{
		"content": "您的专属导购是 李娜（静安店），有需要随时找TA。\n离您最近的门店：\n· 静安店（约0.4公里）\n   南京西路1号　营业时间 10:00-22:00"}})

	// The retry was answered "success" and nothing more: one answer each.
	time.Sleep(500 * time.Millisecond)
	if extra := findSent(oa, "oChen", "/message/custom/send"); extra != nil {
		t.Errorf("a customer-service message more than asked for: %+v", extra)
	}

	// Another follows without a code: a member without a guide, until
	// WeChat reports where they are (the account asks for it).
	oa.AddFollower("oWang", "uWang")
	if code, body := oa.Follow(t, callback, "oWang"); code != 200 || body != "success" {
		t.Fatalf("follow without a code: %d %q", code, body)
	}
	waitFor(t, "the second follower a member", func() bool {
		_, err := s.app.Store.MemberByIdentity(ctx, wechatoa.ChannelName, "oWang")
		return err == nil
	})
	if code, body := oa.ReportLocation(t, callback, "oWang", 31.2290, 121.4710); code != 200 || body != "success" {
		t.Fatalf("location report: %d %q", code, body)
	}
	waitFor(t, "the second follower bound near their location", func() bool {
		v, err := s.app.Store.MemberByIdentity(ctx, wechatoa.ChannelName, "oWang")
		return err == nil && len(v.Bindings) == 1 && v.Bindings[0].GuideID == "g-li" && v.Bindings[0].Reason == "nearest"
	})

	// Three days later the window is closed: the account's template
	// message stands in for the scrmgw template.
	run := waitRunAt(t, s, "oa-hello", member.ID, "later")
	clock.Advance(72 * time.Hour)
	deadline := time.Now().Add(30 * time.Second)
	var again oafake.Sent
	for {
		s.app.engine.Sweep(ctx)
		if sent := findSent(oa, "oChen", "/message/template/send"); sent != nil {
			again = *sent
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no template message after 3 days (run %d); the fake took %+v", run.ID, oa.Sent())
		}
		time.Sleep(100 * time.Millisecond)
	}
	sentIs(t, "template message", again, "/cgi-bin/message/template/send", map[string]any{"touser": "oChen", "template_id": "TPL-recall-01",
		"url": "https://acme.example/new", "client_msg_id": fmt.Sprintf("wf:%d:again:1", run.ID),
		"data": map[string]any{"thing1": map[string]any{"value": "店里上新了"}, "thing2": map[string]any{"value": wantText}}})

	// The same person adds the guide on WeCom: one member, by UnionID.
	wc.AddContact(wecomfake.Contact{ExternalUserID: "wmChen", Name: "陈女士", UnionID: "uChen", FollowUsers: []wecom.FollowUser{{UserID: "li"}}})
	if status, body := deliver(t, s.base+wecom.CallbackPath, wecomfake.AddExternalContact("li", "wmChen", "", "").XML(), wecomfake.Callback{}); status != 200 {
		t.Fatalf("WeCom add: %d %s", status, body)
	}
	waitFor(t, "the WeCom contact known", func() bool {
		_, err := s.app.Store.MemberByIdentity(ctx, "wecom", "wmChen")
		return err == nil
	})
	v, _ := s.app.Store.MemberByIdentity(ctx, "wecom", "wmChen")
	if v.ID != member.ID {
		t.Errorf("the WeCom contact is member %d, the follower member %d: want one member", v.ID, member.ID)
	}
}

// sentIs checks a request the fake took against its path and body.
func sentIs(t *testing.T, what string, got oafake.Sent, path string, body map[string]any) {
	t.Helper()
	g, _ := json.Marshal(got.Body)
	w, _ := json.Marshal(body)
	if got.Path != path || string(g) != string(w) {
		t.Errorf("%s at the account:\n got %s %s\nwant %s %s", what, got.Path, g, path, w)
	}
}

// findSent is a send to openID at api the fake took, if any.
func findSent(f *oafake.Fake, openID, api string) *oafake.Sent {
	for _, s := range f.Sent() {
		if s.Body["touser"] == openID && s.Path == "/cgi-bin"+api {
			return &s
		}
	}
	return nil
}

// waitRunAt waits for the member's run of workflow to reach step.
func waitRunAt(t *testing.T, s *started, workflow string, memberID int64, step string) store.WorkflowRun {
	t.Helper()
	var out store.WorkflowRun
	waitFor(t, workflow+" at "+step, func() bool {
		runs, err := s.app.Store.Runs(context.Background(), store.RunFilter{Brand: "acme", Workflow: workflow, MemberID: memberID})
		if err != nil {
			return false
		}
		for _, r := range runs {
			if r.Step == step && r.WakeAt != nil && r.State == store.RunActive {
				out = r
				return true
			}
		}
		return false
	})
	return out
}
