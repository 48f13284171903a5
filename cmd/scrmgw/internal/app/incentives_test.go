package app

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestIncentivesWithRedis runs guide points, my orders, the leaderboard
// and cross-brand opt-ins end to end on PostgreSQL and Redis, with WeCom
// on its fake: a member signs up through the brand's CRM and is bound to
// guide Li of a collection store (acme and zeta), buys (the purchase sent
// twice), asks for her orders on WeCom customer service and accepts zeta's
// offers; Li sees her points and rank in the WeCom app; a refund takes the
// purchase points back; the API's leaderboard is brand-scoped. Points are
// the built-in rules': 10 per member bound, 0.1 per yuan.
func TestIncentivesWithRedis(t *testing.T) {
	fake := wecomfake.New(t)
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "incentives-e2e-admin-token-1"
	cfg.Security.PhoneKey = strings.Repeat("ef", 32)
	cfg.WeCom = fake.Config()
	cfg.WeCom.Brand = "acme"
	s := startServe(t, cfg)
	tok := cfg.AdminToken
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/brands", `{"id":"zeta","name":"Zeta"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme","zeta"],"lat":31.23,"lng":121.47,"time_zone":"Asia/Shanghai"}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜","wecom_userid":"li"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, tok, req.body); code != 201 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	fake.AddEmployees("li")
	code, body := request(t, "POST", s.base+"/api/v1/event-sources", tok, `{"id":"crm-acme","brand":"acme"}`)
	var src struct {
		Secret string `json:"secret"`
	}
	json.Unmarshal([]byte(body), &src)
	if code != 201 || src.Secret == "" {
		t.Fatalf("event source: %d %s", code, body)
	}
	post := func(msgID, event string) {
		t.Helper()
		if code, body := postSigned(t, s.base, src.Secret, msgID, "application/cloudevents+json", event); code != 200 {
			t.Fatalf("%s: %d %s", msgID, code, body)
		}
	}
	ctx := context.Background()
	points := func() int64 {
		t.Helper()
		es, err := s.app.Store.GuidePoints(ctx, store.GuidePointsFilter{GuideID: "g-li"})
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, e := range es {
			n += e.Points
		}
		return n
	}

	// The sign-up binds her to Li (10 points); sent again under another
	// event id, it awards nothing more.
	signup := func(id string) string {
		return `{"specversion":"1.0","id":"` + id + `","source":"/crm","type":"member.signed_up",
		  "data":{"member":{"phone":"13800138000"},"name":"陈女士","home_store":"sh-1","identities":[{"channel":"wecom","external_id":"wmKF"}]}}`
	}
	post("m-su1", signup("su-1"))
	waitFor(t, "the binding's points", func() bool { return points() == 10 })
	post("m-su2", signup("su-2"))

	// A purchase credited to Li: 357.50 × 0.1 = 35.75 → 36 points; the
	// same order sent again under a new event id counts once.
	purchase := func(id string) string {
		return `{"specversion":"1.0","id":"` + id + `","source":"/pos/sh-1","type":"purchase.completed",
		  "data":{"member":{"phone":"13800138000"},"order_id":"SO-1","store":"sh-1","guide":"g-li",
		  "items":[{"sku":"CL-100","name":"洁面乳","qty":2,"price":"129.00"},{"sku":"TN-200","name":"爽肤水","qty":1,"price":"99.50"}]}}`
	}
	post("m-p1", purchase("p-1"))
	post("m-p2", purchase("p-2"))
	waitFor(t, "the purchase's points", func() bool { return points() == 46 })

	// The member asks for her orders on WeCom customer service.
	kfSay(t, s, fake, "我的订单")
	today := time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01-02")
	waitKF(t, fake, 1, "陈女士最近的订单：\n· "+today+" 静安店：洁面乳、爽肤水，合计 ¥357.50")

	// Li's stats and rank in the WeCom app.
	guideSay(t, s, fake, "我的业绩")
	waitApp(t, fake, 1, "本月获得导购积分 46")
	guideSay(t, s, fake, "排行榜")
	rank := waitApp(t, fake, 2, "【静安店】您排第 1 名（共 1 人），46 分")
	if !strings.Contains(rank.Content, "【ACME】您排第 1 名") {
		t.Errorf("brand board missing: %s", rank.Content)
	}

	// The whole order refunded (twice delivered): the 36 points go back.
	refund := `{"specversion":"1.0","id":"r-1","source":"/pos/sh-1","type":"purchase.refunded",
	  "data":{"member":{"phone":"13800138000"},"order_id":"SO-1","refund_id":"RF-1"}}`
	post("m-r1", refund)
	post("m-r1", refund)
	waitFor(t, "the clawback", func() bool { return points() == 10 })
	guideSay(t, s, fake, "my stats")
	waitApp(t, fake, 3, "your points: 10")
	kfSay(t, s, fake, "my orders")
	waitKF(t, fake, 2, "total ¥357.50 (¥357.50 refunded)")

	// Cross-brand: she accepts zeta's offers through Li, then zeta may
	// nudge her; after declining it may not.
	member, err := s.app.Store.MemberByIdentity(ctx, "wecom", "wmKF")
	if err != nil {
		t.Fatal(err)
	}
	allowed := func() bool {
		ok, _, err := s.app.Store.CrossBrandAllowed(ctx, member.ID, "acme", "zeta", "wecom")
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if allowed() {
		t.Fatal("zeta allowed before the opt-in")
	}
	kfSay(t, s, fake, "接收其他品牌优惠")
	waitKF(t, fake, 3, "您的专属导购 李娜 也可以为您推荐Zeta的优惠")
	if !allowed() {
		t.Error("zeta not allowed after the opt-in")
	}
	kfSay(t, s, fake, "不接收其他品牌优惠")
	waitKF(t, fake, 4, "不会再通过导购收到其他品牌的优惠")
	if allowed() {
		t.Error("zeta still allowed after declining")
	}

	// The API's leaderboards: the brand's, the store's, brand-scoped.
	code, body = request(t, "GET", s.base+"/api/v1/leaderboards?brand=acme", tok, "")
	month := time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01")
	if code != 200 || !strings.Contains(body, `"period":"`+month+`"`) ||
		!strings.Contains(body, `{"rank":1,"guide_id":"g-li","guide_name":"李娜","store_id":"sh-1","points":10}`) {
		t.Errorf("acme leaderboard: %d %s", code, body)
	}
	if code, body := request(t, "GET", s.base+"/api/v1/leaderboards?store_id=sh-1&period=last_month", tok, ""); code != 200 || !strings.Contains(body, `"items":[]`) {
		t.Errorf("last month's store board: %d %s", code, body)
	}
	for _, q := range []string{"?brand=acme&period=2026-13", "?period=this_month", "?brand=nope", "?store_id=nope"} {
		if code, body := request(t, "GET", s.base+"/api/v1/leaderboards"+q, tok, ""); code != 400 && code != 404 {
			t.Errorf("leaderboards%s: %d %s", q, code, body)
		}
	}
	code, body = request(t, "POST", s.base+"/api/v1/tokens", tok, `{"name":"zeta-bi","brand":"zeta"}`)
	var zt struct {
		Token string `json:"token"`
	}
	json.Unmarshal([]byte(body), &zt)
	if code != 201 {
		t.Fatalf("zeta token: %d %s", code, body)
	}
	if code, body := request(t, "GET", s.base+"/api/v1/leaderboards?brand=acme", zt.Token, ""); code != 404 {
		t.Errorf("zeta token reading acme's board: %d %s", code, body)
	}
	if code, body := request(t, "GET", s.base+"/api/v1/leaderboards?store_id=sh-1", zt.Token, ""); code != 200 || !strings.Contains(body, `"brand":"zeta"`) || !strings.Contains(body, `"items":[]`) {
		t.Errorf("zeta token, its own brand in the store: %d %s", code, body)
	}

	time.Sleep(300 * time.Millisecond) // let duplicates surface
	if n, m := len(fake.KFSent()), len(fake.AppMessages()); n != 4 || m != 3 {
		t.Errorf("%d kf and %d app messages, want 4 and 3", n, m)
	}
}

// TestDingTalkIncentivesWithRedis: a DingTalk guide completes a task on
// time through the robot chat (5 points, once however often she says it),
// then sees her points and rank; a DingTalk member sees their orders as
// markdown in the session.
func TestDingTalkIncentivesWithRedis(t *testing.T) {
	r := handoffDingTalk(t, 30*time.Minute)
	ctx := context.Background()
	st := r.s.app.Store
	member, err := st.MemberByIdentity(ctx, "dingtalk", dingTalkMember)
	if err != nil {
		t.Fatal(err)
	}
	task := &store.GuideTask{MemberID: member.ID, GuideID: "g-wu", BrandID: "acme", Title: "回访周先生", DueAt: time.Now().Add(time.Hour)}
	if _, err := st.CreateGuideTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	sh1 := "sh-1"
	if _, err := st.RecordOrder(ctx, &store.Order{BrandID: "acme", OrderNo: "SO-9", MemberID: member.ID, StoreID: &sh1, Channel: "pos", Currency: "CNY",
		Attribution: "none", PlacedAt: time.Now(), SettleDate: "2026-11-25", Items: []store.OrderItem{{SKU: "TN-200", Name: "爽肤水", Qty: 1, PriceCents: 9950}}}, nil); err != nil {
		t.Fatal(err)
	}
	body := func(n int) string {
		t.Helper()
		waitFor(t, "webhook reply", func() bool { return len(r.openapi.Replies()) >= n })
		return string(r.openapi.Replies()[n-1].Body)
	}
	done := "完成 " + strconv.FormatInt(task.ID, 10)
	r.guide(done)
	if b := body(1); !strings.Contains(b, "回访周先生") {
		t.Errorf("done: %s", b)
	}
	r.guide(done)
	body(2)
	es, _ := st.GuidePoints(ctx, store.GuidePointsFilter{GuideID: "g-wu"})
	if len(es) != 1 || es[0].Kind != store.GuidePointsTask || es[0].Points != 5 {
		t.Fatalf("Wu's entries after completing the task twice: %+v", es)
	}
	r.guide("我的业绩")
	if b := body(3); !strings.Contains(b, "本月获得导购积分 5") {
		t.Errorf("my stats: %s", b)
	}
	r.guide("排行榜")
	if b := body(4); !strings.Contains(b, `"msgtype":"markdown"`) || !strings.Contains(b, "**静安店**：第 1 名 / 1 人，5 分") || !strings.Contains(b, "**ACME**：第 1 名 / 1 人") {
		t.Errorf("leaderboard: %s", b)
	}
	r.member("我的订单")
	if b := body(5); !strings.Contains(b, "#### 最近的订单") || !strings.Contains(b, "静安店：爽肤水，合计 **¥99.50**") {
		t.Errorf("my orders: %s", b)
	}
	if got := r.openapi.Replies()[4].ConversationID; got != "cid-zhou" {
		t.Errorf("orders went to %s", got)
	}
}
