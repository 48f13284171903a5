package app

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// twoBrandPurchases gives the person an order and a coupon of each of two
// brands: brand a's at store aStore (洁面乳, ¥129.00, coupon A-COUPON-50),
// brand b's at bStore (童装外套, ¥999.00, coupon B-COUPON-999), placed on
// 2026-11-20 and 2026-11-21 at noon in Shanghai.
func twoBrandPurchases(t *testing.T, st *store.Store, member int64, a, aStore, b, bStore string) {
	t.Helper()
	ctx := context.Background()
	for i, p := range []struct {
		brand, store, sku, item, coupon string
		cents                           int64
	}{{a, aStore, "CL-100", "洁面乳", "A-COUPON-50", 12900}, {b, bStore, "KD-900", "童装外套", "B-COUPON-999", 99900}} {
		placed := time.Date(2026, 11, 20+i, 4, 0, 0, 0, time.UTC)
		sid := p.store
		o := &store.Order{BrandID: p.brand, OrderNo: "SO-" + p.brand, MemberID: member, StoreID: &sid, Channel: "pos", Currency: "CNY",
			Attribution: "none", PlacedAt: placed, SettleDate: placed.Format("2006-01-02"),
			Items: []store.OrderItem{{SKU: p.sku, Name: p.item, Qty: 1, PriceCents: p.cents}}}
		if _, err := st.RecordOrder(ctx, o, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := st.IssueCoupon(ctx, &store.IssuedCoupon{Key: "c-" + p.brand, Code: p.coupon, Batch: "welcome", BrandID: p.brand, MemberID: member,
			ValueCents: p.cents / 10, ExpiresAt: time.Now().AddDate(1, 0, 0), IssuedAt: placed}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKFAnswersOrdersAndCouponsOfItsBrand: Chen (phone 13800138000) is a
// member of acme (陈女士) and of acme-kids (Chen Kids), through the same
// WeCom contact of corp acme, with an order and a coupon of each brand.
// Asked "我的订单" through a signed kf_msg_or_event, each customer-service
// account answers at kf/send_msg with its own brand's order only; the
// member code each account gives shows, at that brand's till, that
// brand's coupon only.
func TestKFAnswersOrdersAndCouponsOfItsBrand(t *testing.T) {
	tc := startTwoCorps(t)
	s, ctx := tc.s, context.Background()
	const ext = "wmKFChenOrders"
	st := s.app.Store
	m, _, err := st.EnsureMember(ctx, store.NewMember{Phone: "13800138000", Name: "陈女士", BrandID: "acme",
		Identities: []store.Identity{{Channel: "wecom:acme", ExternalID: ext}}})
	if err != nil {
		t.Fatal(err)
	}
	kids, _, err := st.EnsureMember(ctx, store.NewMember{Phone: "+86 138 0013 8000", Name: "Chen Kids", BrandID: "acme-kids",
		Identities: []store.Identity{{Channel: "wecom:acme", ExternalID: ext}}})
	if err != nil || kids.ID != m.ID {
		t.Fatalf("acme-kids' member %+v, %v; want the person %d", kids, err, m.ID)
	}
	twoBrandPurchases(t, st, m.ID, "acme", "acme-sh", "acme-kids", "kids-sh")
	n := 0
	ask := func(kf, text string) wecomfake.KFSendRequest {
		t.Helper()
		token := tc.acme.QueueKFMessages(kf, wecomfake.KFText(ext, text))
		notify := wecomfake.KfMsgOrEvent{CorpID: acmeCorpID, Token: token, OpenKfID: kf, CreateTime: time.Now().Add(time.Duration(n) * time.Second)}
		if status, body := deliver(t, s.base+"/callbacks/wecom/acme", notify.XML(), tc.acmeCallback); status != 200 {
			t.Fatalf("acme's kf_msg_or_event: %d %s", status, body)
		}
		n++
		waitFor(t, fmt.Sprintf("reply %d", n), func() bool { return len(tc.acme.KFSent()) >= n })
		return tc.acme.KFSent()[n-1]
	}
	for _, q := range []struct{ kf, want string }{
		{"wkKids", "Chen Kids最近的订单：\n· 2026-11-21 ACME 童装浦东店：童装外套，合计 ¥999"},
		{"wkAcme", "陈女士最近的订单：\n· 2026-11-20 徐汇店：洁面乳，合计 ¥129"},
	} {
		r := ask(q.kf, "我的订单")
		var body struct {
			ToUser   string `json:"touser"`
			OpenKfID string `json:"open_kfid"`
			MsgType  string `json:"msgtype"`
			Text     struct {
				Content string `json:"content"`
			} `json:"text"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("kf/send_msg body %s: %v", r.Body, err)
		}
		if body.ToUser != ext || body.OpenKfID != q.kf || body.MsgType != "text" || body.Text.Content != q.want {
			t.Errorf("%s's answer to 我的订单: kf/send_msg %s\nwant text from %s to %s: %q", q.kf, r.Body, q.kf, ext, q.want)
		}
	}
	// Each account's member code, at its brand's till: that brand's
	// coupon, never the other's.
	for _, c := range []struct{ kf, brand, coupon, never string }{
		{"wkKids", "acme-kids", "B-COUPON-999", "A-COUPON-50"},
		{"wkAcme", "acme", "A-COUPON-50", "B-COUPON-999"},
	} {
		r := ask(c.kf, "会员码")
		sub := regexp.MustCompile(`(97\d\d \d{4} \d{4} \d{4} \d\d)`).FindStringSubmatch(r.Text)
		if sub == nil || r.OpenKfID != c.kf || r.ToUser != ext {
			t.Fatalf("%s's member code: %+v", c.kf, r)
		}
		code := strings.ReplaceAll(sub[1], " ", "")
		status, body := request(t, "POST", s.base+"/api/v1/pos/identify", tc.tok, `{"code":"`+code+`","brand":"`+c.brand+`"}`)
		var got struct {
			Brand   string
			Coupons []struct{ Code string }
		}
		_ = json.Unmarshal([]byte(body), &got)
		if status != 200 || got.Brand != c.brand || len(got.Coupons) != 1 || got.Coupons[0].Code != c.coupon || strings.Contains(body, c.never) {
			t.Errorf("%s's till with %s's code: %d %s; want %s's coupon %s only", c.brand, c.kf, status, body, c.brand, c.coupon)
		}
	}
}

// TestDingTalkOrdersOfTheIdentitysBrandOnly: a DingTalk app serving no
// single brand. Chen (one phone) is a member of acme (陈女士, guide 张伟)
// and of zeta (Chen Zeta, guide 吴芳), with an order and a coupon of each;
// acme enrolled her DingTalk id staff-chen, and staff-chen-2 is hers too,
// given with no brand. "我的订单" and "我的导购" from staff-chen are
// acme's (the identity's brand): the session webhook replies carry acme's
// order and guide only. From staff-chen-2 a message is no one brand's
// (unattributed), and its answer is in every brand's export: the replies
// carry no brand's orders, name or guide. (They used to list every
// brand's orders, name her by acme's name and give acme's guide.)
func TestDingTalkOrdersOfTheIdentitysBrandOnly(t *testing.T) {
	openapi := dingtalkfake.NewOpenAPI(t)
	gw := dingtalkfake.New(t, dingtalkfake.WithOpenAPI(openapi))
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "dingtalk-orders-admin-token-01"
	cfg.Security.PhoneKey = strings.Repeat("ef", 32)
	cfg.DingTalk = dingtalk.Config{ClientID: gw.ClientID(), ClientSecret: gw.ClientSecret(), StreamHost: gw.URL(), APIBase: openapi.URL()}
	s := startServe(t, cfg)
	ctx, tok := context.Background(), cfg.AdminToken
	st := s.app.Store
	// staff-chen-2 first, with no brand: the identity is collected under
	// none.
	chen, _, err := st.EnsureMember(ctx, store.NewMember{Phone: "13800138000", Identities: []store.Identity{{Channel: "dingtalk", ExternalID: "staff-chen-2"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/brands", `{"id":"zeta","name":"Zeta"}`},
		{"/api/v1/stores", `{"id":"acme-sh","name":"徐汇店","brands":["acme"],"lat":31.19,"lng":121.44}`},
		{"/api/v1/stores", `{"id":"zeta-sh","name":"Zeta 浦东店","brands":["zeta"],"lat":31.22,"lng":121.54}`},
		{"/api/v1/guides", `{"id":"g-zhang","store_id":"acme-sh","name":"张伟"}`},
		{"/api/v1/guides", `{"id":"g-wu","store_id":"zeta-sh","name":"吴芳"}`},
		{"/api/v1/members", `{"phone":"13800138000","name":"陈女士","brand":"acme","identities":[{"channel":"dingtalk","external_id":"staff-chen"}]}`},
		{"/api/v1/members", `{"phone":"13800138000","name":"Chen Zeta","brand":"zeta"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, tok, req.body); code/100 != 2 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	v, err := st.MemberByIdentity(ctx, "dingtalk", "staff-chen")
	if err != nil || v.ID != chen.ID {
		t.Fatalf("staff-chen is member %+v, %v; want the person %d", v, err, chen.ID)
	}
	twoBrandPurchases(t, st, chen.ID, "acme", "acme-sh", "zeta", "zeta-sh")
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := gw.WaitConnected(waitCtx); err != nil {
		t.Fatalf("stream never connected: %v", err)
	}
	for _, b := range []struct{ brand, guide, store string }{{"acme", "g-zhang", "acme-sh"}, {"zeta", "g-wu", "zeta-sh"}} {
		if _, _, err := st.Bind(ctx, &store.Binding{MemberID: chen.ID, BrandID: b.brand, GuideID: b.guide, StoreID: b.store, Reason: "manual"}); err != nil {
			t.Fatal(err)
		}
	}
	for i, q := range []struct{ sender, text, want string }{
		{"staff-chen", "我的订单", `{"markdown":{"text":"#### 最近的订单\n- **2026-11-20** 徐汇店：洁面乳，合计 **¥129**","title":"我的订单"},"msgtype":"markdown"}`},
		{"staff-chen-2", "我的订单", `{"markdown":{"text":"暂时没有查到您在本品牌的订单。","title":"我的订单"},"msgtype":"markdown"}`},
		{"staff-chen-2", "我的积分", `{"msgtype":"text","text":{"content":"您在本品牌的积分：0。"}}`},
		{"staff-chen-2", "我的导购", `{"msgtype":"text","text":{"content":"您还没有专属导购。发送您的位置，我们为您安排最近门店的导购。"}}`},
		{"staff-chen", "我的导购", `{"msgtype":"text","text":{"content":"您的专属导购是 张伟（徐汇店）。门店地址：，营业时间 以门店为准。"}}`},
	} {
		id := gw.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cid-" + q.sender, SenderStaffID: q.sender, SenderNick: "陈",
			Text: &dingtalkfake.Text{Content: q.text}})
		if ack, err := gw.WaitAck(waitCtx, id); err != nil || ack.Code != 200 {
			t.Fatalf("ack = %+v, %v", ack, err)
		}
		waitFor(t, fmt.Sprintf("reply %d at the session webhook", i+1), func() bool { return len(openapi.Replies()) > i })
		replies := openapi.Replies()
		if len(replies) != i+1 || string(replies[i].Body) != q.want {
			t.Errorf("%s asked %s; session webhook replies = %d, the last: %s\nwant: %s", q.sender, q.text, len(replies), replies[len(replies)-1].Body, q.want)
		}
	}
}

// TestKFHandoffShowsOnlyItsBrandsMessages: Chen, a member of acme (guide
// 张伟) and of acme-kids (guide 吴芳) through the same WeCom contact,
// writes to acme-kids' customer-service account, then twice to acme's,
// the second time asking for a person. Neither what she wrote to
// acme-kids nor its name reaches acme's guide: her first message to acme
// is acme's first unanswered one (the help menu, not a handoff), and the
// handoff request at acme's message/send to 张伟 quotes only what she
// wrote to acme. (Messages to another brand used to count, and be quoted,
// as hers to this one.)
func TestKFHandoffShowsOnlyItsBrandsMessages(t *testing.T) {
	tc := startTwoCorps(t)
	s, ctx := tc.s, context.Background()
	const ext = "wmKFChenHandoff"
	st := s.app.Store
	m, _, err := st.EnsureMember(ctx, store.NewMember{Phone: "13800138000", Name: "陈女士", BrandID: "acme",
		Identities: []store.Identity{{Channel: "wecom:acme", ExternalID: ext}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.EnsureMember(ctx, store.NewMember{Phone: "13800138000", Name: "Chen Kids", BrandID: "acme-kids",
		Identities: []store.Identity{{Channel: "wecom:acme", ExternalID: ext}}}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct{ brand, guide, store string }{{"acme", "g-zhang", "acme-sh"}, {"acme-kids", "g-wu", "kids-sh"}} {
		if _, _, err := st.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: b.brand, GuideID: b.guide, StoreID: b.store, Reason: "manual"}); err != nil {
			t.Fatal(err)
		}
	}
	apps := len(tc.acme.AppMessages())
	n := 0
	ask := func(kf, text string) string {
		t.Helper()
		token := tc.acme.QueueKFMessages(kf, wecomfake.KFText(ext, text))
		notify := wecomfake.KfMsgOrEvent{CorpID: acmeCorpID, Token: token, OpenKfID: kf, CreateTime: time.Now().Add(time.Duration(n) * time.Second)}
		if status, body := deliver(t, s.base+"/callbacks/wecom/acme", notify.XML(), tc.acmeCallback); status != 200 {
			t.Fatalf("acme's kf_msg_or_event: %d %s", status, body)
		}
		n++
		waitFor(t, fmt.Sprintf("kf reply %d", n), func() bool { return len(tc.acme.KFSent()) >= n })
		r := tc.acme.KFSent()[n-1]
		if r.OpenKfID != kf || r.ToUser != ext || r.MsgType != "text" {
			t.Errorf("kf reply %d: %+v, want text from %s to %s", n, r, kf, ext)
		}
		return r.Text
	}
	ask("wkKids", "孩子穿110码有货吗")
	if got := ask("wkAcme", "想看看洁面乳"); strings.Contains(got, "转接") {
		t.Errorf("acme's first unanswered message was handed to a guide (another brand's message counted): %q", got)
	}
	if got := ask("wkAcme", "转人工"); got != "已为您转接专属导购 张伟（徐汇店），TA 会尽快回复您，请直接在这里留言。" {
		t.Errorf("the handoff's answer: %q", got)
	}
	waitFor(t, "the handoff request to 张伟", func() bool { return len(tc.acme.AppMessages()) > apps })
	time.Sleep(300 * time.Millisecond) // nothing else is sent to a guide
	got := tc.acme.AppMessages()[apps:]
	want := regexp.MustCompile(`^【转人工 #\d+】陈女士（尾号8000） · 徐汇店：\n转人工\n之前的消息：\n· \d\d-\d\d \d\d:\d\d 想看看洁面乳\n直接回复即发给会员；同时有多个对话时发送“#\d+ 内容”；发送“结束”结束对话。$`)
	if len(got) != 1 || fmt.Sprint(got[0].ToUser) != "[zhang]" || got[0].MsgType != "text" || !want.MatchString(got[0].Content) {
		t.Fatalf("messages to guides: %+v\nwant one text to zhang matching %s", got, want)
	}
	for _, never := range []string{"110码", "Chen Kids"} {
		if strings.Contains(string(got[0].Body), never) {
			t.Errorf("acme's guide was shown %q, which Chen told acme-kids: %s", never, got[0].Body)
		}
	}
}
