package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// startWithWeCom runs the gateway on PostgreSQL and Redis with the WeCom
// channel pointed at a fake WeCom, seeded with a brand, a store and its
// guide "li".
func startWithWeCom(t *testing.T) (*started, *wecomfake.Server, string) {
	t.Helper()
	return startWithWeComClock(t, nil)
}

// startWithWeComClock is startWithWeCom with the workflow engine on
// clock (nil: the wall clock).
func startWithWeComClock(t *testing.T, clock func() time.Time) (*started, *wecomfake.Server, string) {
	t.Helper()
	fake := wecomfake.New(t)
	cfg := weComConfig(t, fake, "wecom-e2e-admin-token-0123")
	cfg.WeCom.MaxClockSkew = 10 * time.Minute
	s := startServeWith(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), clock)
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
	fake.AddEmployees("li")
	return s, fake, tok
}

// weComConfig is a gateway on PostgreSQL and Redis with the WeCom
// channel on fake, its contacts joining the brand acme.
func weComConfig(t *testing.T, fake *wecomfake.Server, adminToken string) configs.Config {
	t.Helper()
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = adminToken
	cfg.Security.PhoneKey = strings.Repeat("cd", 32)
	cfg.WeCom = fake.Config()
	cfg.WeCom.Brand = "acme"
	return cfg
}

func deliver(t *testing.T, url string, xml []byte, cb wecomfake.Callback) (int, string) {
	t.Helper()
	req, err := cb.Request(url, xml)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWeComContactJoinsOnceWithRedis is the issue's end-to-end case: a
// member scans a store's QR code, WeCom delivers the add_external_contact
// callback three times, and the member is created once, bound to that
// store's guide, welcomed once with the right welcome code, and
// member.joined is logged once.
func TestWeComContactJoinsOnceWithRedis(t *testing.T) {
	s, fake, _ := startWithWeCom(t)
	ctx := context.Background()
	fake.AddContact(wecomfake.Contact{ExternalUserID: "wmChen", Name: "陈女士", UnionID: "union-chen",
		FollowUsers: []wecom.FollowUser{{UserID: "li", State: "s:sh-1", RemarkMobiles: []string{"138 0013 8000"}}}})
	code := fake.IssueWelcomeCode("wmChen")
	ev := wecomfake.AddExternalContact("li", "wmChen", "s:sh-1", code)
	ev.CreateTime = time.Now().Truncate(time.Second)
	for i := 0; i < 3; i++ {
		if status, body := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 || body != "success" {
			t.Fatalf("delivery %d: %d %q", i+1, status, body)
		}
	}
	waitFor(t, "the welcome", func() bool { return len(fake.Welcomes()) > 0 })

	v, err := s.app.Store.MemberByPhone(ctx, "13800138000", "acme")
	if err != nil {
		t.Fatalf("member by phone: %v", err)
	}
	if v.Name != "陈女士" || len(v.Identities) != 2 {
		t.Errorf("member = %q with identities %+v", v.Name, v.Identities)
	}
	if len(v.Bindings) != 1 || v.Bindings[0].GuideID != "g-li" || v.Bindings[0].StoreID != "sh-1" || v.Bindings[0].Reason != "state" {
		t.Errorf("bindings = %+v, want g-li of sh-1 by state", v.Bindings)
	}
	w := fake.Welcomes()[0]
	if w.WelcomeCode != code || w.ExternalUserID != "wmChen" || !strings.Contains(w.Text, "李娜") || !strings.Contains(w.Text, "静安店") {
		t.Errorf("welcome = %+v", w)
	}
	time.Sleep(500 * time.Millisecond) // let any duplicate work surface
	if n := len(fake.Welcomes()); n != 1 {
		t.Errorf("%d welcomes sent, want 1", n)
	}
	evs, _ := s.app.Store.Events(ctx, store.EventFilter{MemberID: v.ID, Type: "member.joined"})
	if len(evs) != 1 {
		t.Errorf("%d member.joined events, want 1", len(evs))
	}
}

func TestWeComRefusesBadCallbacksWithRedis(t *testing.T) {
	s, _, _ := startWithWeCom(t)
	ctx := context.Background()
	url := s.base + wecom.CallbackPath
	ev := wecomfake.AddExternalContact("li", "wmEve", "", "")
	other := wecomfake.Callback{CorpID: "wwOtherCorp"}
	old := wecomfake.Callback{Now: func() time.Time { return time.Now().Add(-time.Hour) }}
	for _, tc := range []struct {
		name   string
		cb     wecomfake.Callback
		status int
	}{
		{"wrong receive id", other, 403},
		{"replayed timestamp", old, 403},
		{"wrong token", wecomfake.Callback{Token: "not-the-token"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, _ := deliver(t, url, ev.XML(), tc.cb); status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
		})
	}
	req, _ := http.NewRequest("POST", url+"?msg_signature=x&nonce=1&timestamp="+strconv.FormatInt(time.Now().Unix(), 10),
		strings.NewReader("<xml>"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Errorf("garbage body: status %d, want 4xx", resp.StatusCode)
	}
	// A body over the limit is refused before it is read to the end.
	huge, err := wecomfake.Callback{}.Request(url, append(ev.XML(), []byte(strings.Repeat(" ", 2<<20))...))
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.DefaultClient.Do(huge)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d, want 413", resp.StatusCode)
	}
	if _, err := s.app.Store.MemberByIdentity(ctx, "wecom", "wmEve"); err == nil {
		t.Error("a refused callback created a member")
	}
	if ids, _ := s.app.Store.PendingInbox(ctx, time.Now().Add(time.Hour), 10); len(ids) != 0 {
		t.Errorf("refused callbacks were recorded: %v", ids)
	}
}

// TestWeComKFMessagesWithRedis: a kf_msg_or_event makes the gateway pull
// the member's messages with sync_msg, each recorded once.
func TestWeComKFMessagesWithRedis(t *testing.T) {
	s, fake, _ := startWithWeCom(t)
	ctx := context.Background()
	token := fake.QueueKFMessages("wkKF1", wecomfake.KFText("wmKF", "附近的门店"), wecomfake.KFText("wmKF", "我的积分"))
	notify := wecomfake.KfMsgOrEvent{Token: token, OpenKfID: "wkKF1"}
	for i := 0; i < 2; i++ {
		if status, _ := deliver(t, s.base+wecom.CallbackPath, notify.XML(), wecomfake.Callback{}); status != 200 {
			t.Fatalf("kf callback: %d", status)
		}
	}
	var texts []string
	waitFor(t, "two kf messages in the inbox", func() bool {
		rows, _ := s.app.Store.InboxRows(ctx, "wecom", "kfmsg:", 10)
		texts = texts[:0]
		for _, r := range rows {
			texts = append(texts, string(r.Payload))
		}
		return len(rows) == 2
	})
	if !strings.Contains(strings.Join(texts, "\n"), "附近的门店") {
		t.Errorf("kf inbox rows = %v", texts)
	}
	// The member bot answers each in the customer-service session.
	waitFor(t, "two kf replies", func() bool { return len(fake.KFSent()) >= 2 })
	time.Sleep(300 * time.Millisecond)
	sent := fake.KFSent()
	if len(sent) != 2 || sent[0].ToUser != "wmKF" || sent[0].OpenKfID != "wkKF1" {
		t.Fatalf("kf replies = %+v", sent)
	}
	all := sent[0].Text + sent[1].Text
	if !strings.Contains(all, "请发送您的位置") || !strings.Contains(all, "积分：0") {
		t.Errorf("kf replies = %q", all)
	}
}

// TestWeComContactWaysWithRedis: a store's QR code is created on WeCom
// with a state naming the store, kept in the admin API, and a member added
// through it is bound to that store, even when the store id is too long
// for WeCom's 30-character state.
func TestWeComContactWaysWithRedis(t *testing.T) {
	s, fake, tok := startWithWeCom(t)
	ctx := context.Background()
	long := "store-with-a-rather-long-identifier-001"
	for _, req := range []struct{ path, body string }{
		{"/api/v1/stores", `{"id":"` + long + `","name":"徐汇店","brands":["acme"],"lat":31.19,"lng":121.43}`},
		{"/api/v1/guides", `{"id":"g-wang","store_id":"` + long + `","name":"王芳","wecom_userid":"wang"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, tok, req.body); code != 201 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	fake.AddEmployees("wang")
	code, body := request(t, "POST", s.base+"/api/v1/stores/sh-1/contact-way", tok, "")
	if code != 201 || !strings.Contains(body, `"state":"s:sh-1"`) || !strings.Contains(body, `"qr_code":"http`) {
		t.Fatalf("store contact way: %d %s", code, body)
	}
	code, body = request(t, "POST", s.base+"/api/v1/stores/"+long+"/contact-way", tok, "")
	if code != 201 {
		t.Fatalf("long store contact way: %d %s", code, body)
	}
	ways := fake.ContactWays()
	if len(ways) != 2 || ways[0].State != "s:sh-1" || len(ways[0].Users) != 1 || ways[0].Users[0] != "li" {
		t.Fatalf("WeCom got contact ways %+v", ways)
	}
	hashed := ways[1].State
	if len(hashed) > 30 || strings.Contains(hashed, long) {
		t.Fatalf("state %q does not fit WeCom's 30 characters", hashed)
	}
	if code, body := request(t, "GET", s.base+"/api/v1/contact-ways?store_id=sh-1", tok, ""); code != 200 || !strings.Contains(body, ways[0].QRCode) {
		t.Errorf("listing contact ways: %d %s", code, body)
	}
	if code, _ := request(t, "POST", s.base+"/api/v1/stores/nowhere/contact-way", tok, ""); code != 404 {
		t.Errorf("contact way of an unknown store: %d, want 404", code)
	}

	fake.AddContact(wecomfake.Contact{ExternalUserID: "wmXu", Name: "徐先生", FollowUsers: []wecom.FollowUser{{UserID: "wang", State: hashed}}})
	ev := wecomfake.AddExternalContact("wang", "wmXu", hashed, fake.IssueWelcomeCode("wmXu"))
	if status, _ := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 {
		t.Fatalf("callback: %d", status)
	}
	waitFor(t, "the welcome", func() bool { return len(fake.Welcomes()) > 0 })
	v, err := s.app.Store.MemberByIdentity(ctx, "wecom", "wmXu")
	if err != nil || len(v.Bindings) != 1 || v.Bindings[0].StoreID != long || v.Bindings[0].Reason != "state" {
		t.Fatalf("member bindings = %+v, %v; want the long store by state", v, err)
	}
}
