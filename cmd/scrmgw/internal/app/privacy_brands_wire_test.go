package app

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestKFAnswersOnlyItsBrandsData: corp acme serves acme and acme-kids
// (customer-service account wkKids is acme-kids', wkAcme acme's). Chen is
// a member of both, through the same WeCom contact: acme's gold with 1280
// points and guide 张伟, acme-kids' silver with 99999 points and guide
// 吴芳. Asked through a signed kf_msg_or_event and kf/sync_msg, each
// account answers at kf/send_msg with its own brand's points and guide
// and nothing of the other's; what she wrote is recorded under the
// account's brand, in that brand's export only.
func TestKFAnswersOnlyItsBrandsData(t *testing.T) {
	tc := startTwoCorps(t)
	s, ctx := tc.s, context.Background()
	const ext = "wmKFChen"
	st := s.app.Store
	m, _, err := st.EnsureMember(ctx, store.NewMember{Name: "陈女士", BrandID: "acme", Identities: []store.Identity{{Channel: "wecom:acme", ExternalID: ext}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.EnsureMember(ctx, store.NewMember{Name: "Chen Kids", BrandID: "acme-kids", Identities: []store.Identity{{Channel: "wecom:acme", ExternalID: ext}}}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct {
		brand, level, guide, store string
		points                     int64
	}{{"acme", "gold", "g-zhang", "acme-sh", 1280}, {"acme-kids", "silver", "g-wu", "kids-sh", 99999}} {
		if err := st.SetMembership(ctx, m.ID, b.brand, b.level, &b.points); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: b.brand, GuideID: b.guide, StoreID: b.store, Reason: "manual"}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	ask := func(kf, text string) string {
		t.Helper()
		token := tc.acme.QueueKFMessages(kf, wecomfake.KFText(ext, text))
		notify := wecomfake.KfMsgOrEvent{CorpID: acmeCorpID, Token: token, OpenKfID: kf, CreateTime: time.Now().Add(time.Duration(n) * time.Second)}
		if status, body := deliver(t, s.base+"/callbacks/wecom/acme", notify.XML(), tc.acmeCallback); status != 200 {
			t.Fatalf("acme's kf_msg_or_event: %d %s", status, body)
		}
		n++
		waitFor(t, fmt.Sprintf("reply %d", n), func() bool { return len(tc.acme.KFSent()) >= n })
		r := tc.acme.KFSent()[n-1]
		if r.OpenKfID != kf || r.ToUser != ext {
			t.Errorf("reply %d from %s to %s, want from %s to %s", n, r.OpenKfID, r.ToUser, kf, ext)
		}
		return r.Text
	}
	for _, q := range []struct{ kf, text, want string }{
		{"wkKids", "我的积分", "Chen Kids在ACME 童装的积分：99999，会员等级：silver。"},
		{"wkAcme", "我的积分", "陈女士在ACME的积分：1280，会员等级：gold。"},
		{"wkKids", "我的导购", "您的专属导购是 吴芳（ACME 童装浦东店）。门店地址：，营业时间 以门店为准。"},
		{"wkAcme", "我的导购", "您的专属导购是 张伟（徐汇店）。门店地址：上海市徐汇区衡山路8号，营业时间 10:00-21:00。"},
	} {
		if got := ask(q.kf, q.text); got != q.want {
			t.Errorf("%s asked %q: %q\nwant %q", q.kf, q.text, got, q.want)
		}
	}
	// Each account's member code: the brand's name and Chen's name as
	// that brand knows her; the code identifies her at that brand's till
	// only, with that brand's points.
	codes := map[string]string{}
	for _, c := range []struct{ kf, brand, want string }{
		{"wkKids", "acme-kids", `^Chen Kids的ACME 童装会员码：\n(97\d\d \d{4} \d{4} \d{4} \d\d)\n结账时报出或出示此号码，收银员即可识别会员、积分和可用优惠券。\d\d:\d\d前有效，过期请再发送“会员码”。$`},
		{"wkAcme", "acme", `^陈女士的ACME会员码：\n(97\d\d \d{4} \d{4} \d{4} \d\d)\n结账时报出或出示此号码，收银员即可识别会员、积分和可用优惠券。\d\d:\d\d前有效，过期请再发送“会员码”。$`},
	} {
		got := ask(c.kf, "会员码")
		sub := regexp.MustCompile(c.want).FindStringSubmatch(got)
		if sub == nil {
			t.Fatalf("%s member code: %q, want %s", c.kf, got, c.want)
		}
		codes[c.brand] = strings.ReplaceAll(sub[1], " ", "")
	}
	for _, c := range []struct {
		code, till string
		status     int
		want       string
	}{
		{codes["acme-kids"], "acme-kids", 200, `"name":"Chen Kids"`},
		{codes["acme"], "acme", 200, `"name":"陈女士"`},
		{codes["acme-kids"], "acme", 404, `"code":"not_found"`},
		{codes["acme"], "acme-kids", 404, `"code":"not_found"`},
	} {
		status, body := request(t, "POST", s.base+"/api/v1/pos/identify", tc.tok, `{"code":"`+c.code+`","brand":"`+c.till+`"}`)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s's till identifies %s: %d %s; want %d with %s", c.till, c.code, status, body, c.status, c.want)
		}
		if c.status == 200 && (strings.Contains(body, "99999") != (c.till == "acme-kids") || strings.Contains(body, "1280") != (c.till == "acme")) {
			t.Errorf("%s's till shows another brand's points: %s", c.till, body)
		}
	}
	x, err := st.ExportMember(ctx, m.ID, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var said []string
	for _, r := range x.Received {
		said = append(said, r.Brand+":"+r.Text)
	}
	if got := fmt.Sprint(said); got != "[acme:我的积分 acme:我的导购 acme:会员码]" {
		t.Errorf("acme's export of what Chen wrote: %s", got)
	}
	evs, err := st.Events(ctx, store.EventFilter{MemberID: m.ID, Type: events.TypeMessageReceived})
	if err != nil {
		t.Fatal(err)
	}
	var brands []string
	for _, e := range evs {
		brands = append(brands, e.BrandID)
	}
	if got := fmt.Sprint(brands); got != "[acme-kids acme acme-kids acme acme-kids acme]" {
		t.Errorf("message.received brands = %s", got)
	}
}

// TestDingTalkAppWithoutBrandAnswersTheIdentitysBrand: a DingTalk app
// serving no single brand (no dingtalk.brand). Chen was enrolled by
// acme with her DingTalk id, and is a member of zeta too (same phone).
// Her "我的积分" to the robot is acme's (the brand her identity was
// collected under): the reply at the session webhook carries acme's
// points and nothing of zeta's, and her message is in acme's export and
// not zeta's.
func TestDingTalkAppWithoutBrandAnswersTheIdentitysBrand(t *testing.T) {
	openapi := dingtalkfake.NewOpenAPI(t)
	gw := dingtalkfake.New(t, dingtalkfake.WithOpenAPI(openapi))
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "dingtalk-nobrand-admin-token-01"
	cfg.Security.PhoneKey = strings.Repeat("ef", 32)
	cfg.DingTalk = dingtalk.Config{ClientID: gw.ClientID(), ClientSecret: gw.ClientSecret(), StreamHost: gw.URL(), APIBase: openapi.URL()}
	s := startServe(t, cfg)
	ctx, tok := context.Background(), cfg.AdminToken
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/brands", `{"id":"zeta","name":"Zeta"}`},
		{"/api/v1/members", `{"phone":"13800138000","name":"陈女士","brand":"acme","identities":[{"channel":"dingtalk","external_id":"staff-chen"}]}`},
		{"/api/v1/members", `{"phone":"13800138000","name":"Chen Zeta","brand":"zeta"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, tok, req.body); code/100 != 2 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	v, err := s.app.Store.MemberByIdentity(ctx, "dingtalk", "staff-chen")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct {
		brand, level string
		points       int64
	}{{"acme", "gold", 1280}, {"zeta", "silver", 99999}} {
		if err := s.app.Store.SetMembership(ctx, v.ID, b.brand, b.level, &b.points); err != nil {
			t.Fatal(err)
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := gw.WaitConnected(waitCtx); err != nil {
		t.Fatalf("stream never connected: %v", err)
	}
	id := gw.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cid-chen", SenderStaffID: "staff-chen", SenderNick: "陈",
		Text: &dingtalkfake.Text{Content: "我的积分"}})
	if ack, err := gw.WaitAck(waitCtx, id); err != nil || ack.Code != 200 {
		t.Fatalf("ack = %+v, %v", ack, err)
	}
	waitFor(t, "the reply at the session webhook", func() bool { return len(openapi.Replies()) > 0 })
	replies := openapi.Replies()
	want := `{"msgtype":"text","text":{"content":"陈女士在ACME的积分：1280，会员等级：gold。"}}`
	if len(replies) != 1 || string(replies[0].Body) != want {
		t.Fatalf("session webhook replies = %d: %s\nwant one: %s", len(replies), replies, want)
	}
	for _, c := range []struct {
		brand string
		want  string
	}{{"acme", "[acme:我的积分]"}, {"zeta", "[]"}} {
		x, err := s.app.Store.ExportMember(ctx, v.ID, c.brand)
		if err != nil {
			t.Fatal(err)
		}
		var said []string
		for _, r := range x.Received {
			said = append(said, r.Brand+":"+r.Text)
		}
		if got := fmt.Sprint(said); got != c.want {
			t.Errorf("%s's export of what Chen wrote: %s, want %s", c.brand, got, c.want)
		}
	}
}
