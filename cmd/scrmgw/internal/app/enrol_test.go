package app

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store"
)

// TestWeComMemberBotBindsNearestGuideWithRedis: the member bot keeps its
// word. A WeCom customer-service customer scrmgw has never seen shares
// their location: they become a member of the channel's brand with their
// WeCom identity, are bound to the guide of the nearest store that sells
// the brand (not the nearer store of another brand), member.joined is
// logged for the workflows, and the reply the WeCom fake receives names
// that guide and store. Sharing again changes nothing and names the same
// guide.
func TestWeComMemberBotBindsNearestGuideWithRedis(t *testing.T) {
	fake := wecomfake.New(t)
	cfg := weComConfig(t, fake, "enrol-e2e-admin-token-0001")
	s := startServe(t, cfg)
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/brands", `{"id":"zeta","name":"Zeta"}`},
		// Where the member stands: a store of another brand only.
		{"/api/v1/stores", `{"id":"zt-1","name":"Zeta 南京西路店","brands":["zeta"],"lat":31.2300,"lng":121.4700}`},
		{"/api/v1/guides", `{"id":"g-zhao","store_id":"zt-1","name":"赵敏","wecom_userid":"zhao"}`},
		// About 1 km north: the nearest store selling acme.
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme","zeta"],"lat":31.2390,"lng":121.4700,"address":"南京西路1515号"}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜","wecom_userid":"li"}`},
		// About 8 km away: another acme store.
		{"/api/v1/stores", `{"id":"pd-1","name":"浦东店","brands":["acme"],"lat":31.2300,"lng":121.5500}`},
		{"/api/v1/guides", `{"id":"g-sun","store_id":"pd-1","name":"孙悦","wecom_userid":"sun"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, cfg.AdminToken, req.body); code != 201 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	ctx := context.Background()
	if _, err := s.app.Store.MemberByIdentity(ctx, "wecom", "wmNew"); err == nil {
		t.Fatal("the sender is known before they write")
	}
	share := func() {
		t.Helper()
		token := fake.QueueKFMessages("wkKF1", wecomfake.KFLocation("wmNew", 31.2300, 121.4700, "南京西路", "上海市静安区南京西路"))
		notify := wecomfake.KfMsgOrEvent{Token: token, OpenKfID: "wkKF1"}
		if status, _ := deliver(t, s.base+wecom.CallbackPath, notify.XML(), wecomfake.Callback{}); status != 200 {
			t.Fatalf("kf callback: %d", status)
		}
	}
	share()
	const guideLine = "您的专属导购是 李娜（静安店），有需要随时找TA。\n离您最近的门店：\n· 静安店（约1.0公里）\n   南京西路1515号"
	check := func(n int) {
		t.Helper()
		waitFor(t, "the bot's reply", func() bool { return len(fake.KFSent()) >= n })
		got := fake.KFSent()[n-1]
		var body struct {
			ToUser   string `json:"touser"`
			OpenKfID string `json:"open_kfid"`
			MsgType  string `json:"msgtype"`
			Text     struct {
				Content string `json:"content"`
			} `json:"text"`
		}
		if err := json.Unmarshal(got.Body, &body); err != nil {
			t.Fatal(err)
		}
		if body.ToUser != "wmNew" || body.OpenKfID != "wkKF1" || body.MsgType != "text" || !strings.HasPrefix(body.Text.Content, guideLine) ||
			!strings.Contains(body.Text.Content, "浦东店") || strings.Contains(body.Text.Content, "Zeta") {
			t.Fatalf("kf reply %d = %s\nwant to wmNew via wkKF1, text starting %q", n, got.Body, guideLine)
		}
	}
	check(1)
	v, err := s.app.Store.MemberByIdentity(ctx, "wecom", "wmNew")
	if err != nil {
		t.Fatalf("no member for the sender: %v", err)
	}
	if len(v.Memberships) != 1 || v.Memberships[0].BrandID != "acme" {
		t.Errorf("memberships = %+v, want acme", v.Memberships)
	}
	if len(v.Bindings) != 1 || v.Bindings[0].GuideID != "g-li" || v.Bindings[0].StoreID != "sh-1" || v.Bindings[0].Reason != "nearest" {
		t.Errorf("bindings = %+v, want g-li of sh-1 (nearest)", v.Bindings)
	}
	joined, err := s.app.Store.Events(ctx, store.EventFilter{MemberID: v.ID, Type: "member.joined"})
	if err != nil || len(joined) != 1 || joined[0].BrandID != "acme" || joined[0].Source != "wecom" ||
		!strings.HasPrefix(joined[0].Payload, `{"message_id":"kfmsg:`) || !strings.HasSuffix(joined[0].Payload, `","new_member":"true","via":"bot_location"}`) {
		t.Errorf("member.joined = %+v, %v", joined, err)
	}

	// Sharing again: the same member, the same guide, no second join.
	share()
	check(2)
	time.Sleep(300 * time.Millisecond)
	v2, _ := s.app.Store.MemberByIdentity(ctx, "wecom", "wmNew")
	joined, _ = s.app.Store.Events(ctx, store.EventFilter{MemberID: v.ID, Type: "member.joined"})
	if v2.ID != v.ID || len(v2.Bindings) != 1 || v2.Bindings[0].ID != v.Bindings[0].ID || len(joined) != 1 {
		t.Errorf("after a second share: member %d bindings %+v, %d joins", v2.ID, v2.Bindings, len(joined))
	}
	if n := len(fake.KFSent()); n != 2 {
		t.Errorf("%d kf messages, want 2", n)
	}
}
