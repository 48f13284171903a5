package app

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// Corp acme, the second WeCom corp of the two-corp deployment: its own
// corp id, app, secrets and callback settings.
const (
	acmeCorpID  = "ww4acme0c0rp1d"
	acmeAgentID = "1000005"
	acmeSecret  = "acme-app-secret-0123456789abcdefghijklmno"
	acmeToken   = "AcmeTok9"
	acmeAESKey  = "ACMEacmeACMEacmeACMEacmeACMEacmeACMEacme012"
)

// twoCorps is a gateway with two WeCom corps on fakes: the default
// (brand camellia: store sh-1, guide 李娜 "li") and acme, serving brands
// acme (store acme-sh 徐汇店, guide 张伟 "zhang") and acme-kids (store kids-sh,
// guide 吴芳 "wu"), with the customer-service account wkKids for
// acme-kids.
type twoCorps struct {
	s            *started
	tok          string
	def, acme    *wecomfake.Server
	acmeCallback wecomfake.Callback
}

func startTwoCorps(t *testing.T) *twoCorps {
	t.Helper()
	tc := &twoCorps{def: wecomfake.New(t),
		acme:         wecomfake.New(t, wecomfake.WithCorpID(acmeCorpID), wecomfake.WithAgentID(acmeAgentID), wecomfake.WithSecrets(acmeSecret, acmeSecret)),
		acmeCallback: wecomfake.Callback{Token: acmeToken, EncodingAESKey: acmeAESKey, CorpID: acmeCorpID}}
	// Both corps at one host, as at WeCom.
	corps := wecomfake.NewCorps(t, tc.def, tc.acme)
	cfg := weComConfig(t, tc.def, "two-corps-e2e-admin-token-01")
	cfg.WeCom = corps.Config(tc.def)
	cfg.WeCom.Brand = "camellia"
	cfg.WeCom.MaxClockSkew = 10 * time.Minute
	acme := corps.Config(tc.acme)
	acme.Token, acme.EncodingAESKey = acmeToken, acmeAESKey
	acme.Brands = []string{"acme", "acme-kids"}
	// acme's customer service: wkKids serves acme-kids, any other acme.
	acme.KFBrands = map[string]string{"wkKids": "acme-kids"}
	acme.MaxClockSkew, acme.MemberMassLimit = 10*time.Minute, "1/day"
	cfg.WeCom.Instances = map[string]wecom.Config{"acme": acme}
	tc.s, tc.tok = startServe(t, cfg), cfg.AdminToken
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"camellia","name":"山茶花"}`},
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/brands", `{"id":"acme-kids","name":"ACME 童装"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["camellia"],"lat":31.23,"lng":121.47}`},
		{"/api/v1/stores", `{"id":"acme-sh","name":"徐汇店","brands":["acme"],"lat":31.19,"lng":121.44,"address":"上海市徐汇区衡山路8号","opening_hours":"10:00-21:00"}`},
		{"/api/v1/stores", `{"id":"kids-sh","name":"ACME 童装浦东店","brands":["acme-kids"],"lat":31.22,"lng":121.54}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜","wecom_userid":"li"}`},
		{"/api/v1/guides", `{"id":"g-zhang","store_id":"acme-sh","name":"张伟","identities":[{"channel":"wecom:acme","external_id":"zhang"}]}`},
		{"/api/v1/guides", `{"id":"g-wu","store_id":"kids-sh","name":"吴芳","identities":[{"channel":"wecom:acme","external_id":"wu"}]}`},
	} {
		if code, body := request(t, "POST", tc.s.base+req.path, tc.tok, req.body); code != 201 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	tc.def.AddEmployees("li")
	tc.acme.AddEmployees("zhang", "wu")
	return tc
}

// acmeJoin plays a contact adding an acme employee through a guide's
// contact way (state g:<guide>), as corp acme calls back: signed and
// encrypted with acme's settings, at /callbacks/wecom/acme. It returns
// the welcome code acme issued.
func (tc *twoCorps) acmeJoin(t *testing.T, userID, externalID, name, state string) string {
	t.Helper()
	tc.acme.AddContact(wecomfake.Contact{ExternalUserID: externalID, Name: name, UnionID: "union-" + externalID,
		FollowUsers: []wecom.FollowUser{{UserID: userID, State: state}}})
	code := tc.acme.IssueWelcomeCode(externalID)
	ev := wecomfake.AddExternalContact(userID, externalID, state, code)
	ev.CreateTime, ev.CorpID = time.Now().Truncate(time.Second), acmeCorpID
	if status, body := deliver(t, tc.s.base+"/callbacks/wecom/acme", ev.XML(), tc.acmeCallback); status != 200 || body != "success" {
		t.Fatalf("acme's add_external_contact callback: %d %q", status, body)
	}
	return code
}

// TestTwoWeComCorpsEndToEnd: a contact added in corp acme becomes a
// member of acme's brand with the identity wecom:acme, is welcomed
// through acme's API (and the default corp hears nothing), and a
// workflow's message goes out as a message task of acme's guide at
// acme's add_msg_template; a contact of acme's guide of the other brand
// it serves joins that brand. Callbacks sealed for one corp are refused
// at the other's path.
func TestTwoWeComCorpsEndToEnd(t *testing.T) {
	tc := startTwoCorps(t)
	s, ctx := tc.s, context.Background()
	s.app.sender.CheckEvery(200 * time.Millisecond)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("default corp calls: %v\nacme calls: %v", tc.def.Calls(), tc.acme.Calls())
		}
	})
	if code, body := putWorkflow(t, s, tc.tok, "acme", "nudge-now", strings.ReplaceAll(nudgeNow, "priority: high", "priority: normal")); code != 201 {
		t.Fatalf("PUT workflow: %d %s", code, body)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/workflows/nudge-now/enable?brand=acme", tc.tok, ""); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}

	// Sealed for acme, delivered at the default corp's path (and the
	// other way round): refused, recorded nowhere.
	ev := wecomfake.AddExternalContact("zhang", "wmStray", "", "")
	ev.CreateTime = time.Now().Truncate(time.Second)
	if status, _ := deliver(t, s.base+wecom.CallbackPath, ev.XML(), tc.acmeCallback); status != 403 {
		t.Errorf("acme's callback at /callbacks/wecom: %d, want 403", status)
	}
	if status, _ := deliver(t, s.base+"/callbacks/wecom/acme", ev.XML(), wecomfake.Callback{}); status != 403 {
		t.Errorf("the default corp's callback at /callbacks/wecom/acme: %d, want 403", status)
	}

	code := tc.acmeJoin(t, "zhang", "wmAcmeWang", "王先生", "g:g-zhang")
	waitFor(t, "acme's welcome", func() bool { return len(tc.acme.Welcomes()) > 0 })
	v, err := s.app.Store.MemberByIdentity(ctx, "wecom:acme", "wmAcmeWang")
	if err != nil {
		t.Fatalf("member by identity wecom:acme: %v", err)
	}
	var ids []string
	for _, id := range v.Identities {
		ids = append(ids, id.Channel+"="+id.ExternalID)
	}
	if want := []string{"wecom:acme=wmAcmeWang", "wecom_unionid=union-wmAcmeWang"}; !slices.Equal(ids, want) {
		t.Errorf("identities = %q, want %q", ids, want)
	}
	if len(v.Bindings) != 1 || v.Bindings[0].BrandID != "acme" || v.Bindings[0].GuideID != "g-zhang" || v.Bindings[0].Reason != "state" {
		t.Errorf("bindings = %+v, want g-zhang of brand acme by state", v.Bindings)
	}
	if _, err := s.app.Store.MemberByIdentity(ctx, "wecom", "wmAcmeWang"); err == nil {
		t.Error("the member has an identity on the default corp")
	}
	w := tc.acme.Welcomes()[0]
	wantWelcome := "王先生好！我是ACME徐汇店的导购张伟，很高兴认识您。\n" +
		"门店地址：上海市徐汇区衡山路8号\n" +
		"营业时间：10:00-21:00\n" +
		"新品、尺码、售后，随时在这里找我。"
	if w.WelcomeCode != code || w.ExternalUserID != "wmAcmeWang" || w.Text != wantWelcome || len(w.Attachments) != 0 {
		t.Errorf("acme's welcome = code %s to %s: %q with %s\nwant code %s to wmAcmeWang: %q", w.WelcomeCode, w.ExternalUserID, w.Text,
			attachmentsJSON(w.Attachments), code, wantWelcome)
	}
	evs, _ := s.app.Store.Events(ctx, store.EventFilter{MemberID: v.ID, Type: "member.joined"})
	if len(evs) != 1 || evs[0].BrandID != "acme" || evs[0].Source != "wecom:acme" {
		t.Errorf("member.joined = %+v, want one of brand acme from wecom:acme", evs)
	}

	// The workflow's message: a message task of acme's guide, at acme.
	waitFor(t, "acme's message task", func() bool { return len(tc.acme.MsgTemplates()) > 0 })
	mt := tc.acme.MsgTemplates()[0]
	wantRecall := "王先生好，我是徐汇店的张伟。店里这周到了不少新款，想着您可能会喜欢，\n" +
		"有空来徐汇店坐坐，我帮您挑几件试试？（营业时间 10:00-21:00）"
	if mt.ChatType != "single" || mt.Sender != "zhang" || !slices.Equal(mt.ExternalUserIDs, []string{"wmAcmeWang"}) ||
		mt.Text != wantRecall || len(mt.Attachments) != 0 {
		t.Errorf("message task = %s from %s to %v: %q with %s\nwant single from zhang to [wmAcmeWang]: %q", mt.ChatType, mt.Sender,
			mt.ExternalUserIDs, mt.Text, attachmentsJSON(mt.Attachments), wantRecall)
	}
	// acme's guide is told to confirm it, by acme's app.
	waitFor(t, "the guide's task to confirm it", func() bool { return len(tc.acme.AppMessages()) > 0 })
	tasks, err := s.app.Store.GuideTasks(ctx, store.GuideTaskFilter{GuideID: "g-zhang"})
	if err != nil || len(tasks) != 1 || tasks[0].Title != "确认发送「recall」给 王先生" {
		t.Fatalf("g-zhang's tasks = %+v, %v; want the one to confirm the recall", tasks, err)
	}
	if a := tc.acme.AppMessages()[0]; !slices.Equal(a.ToUser, []string{"zhang"}) || strconv.Itoa(a.AgentID) != acmeAgentID || a.MsgType != "text" || a.Content != taskText(tasks[0]) {
		t.Errorf("app message = %s from agent %s to %v: %q\nwant text from %s to [zhang]: %q", a.MsgType, strconv.Itoa(a.AgentID), a.ToUser, a.Content,
			acmeAgentID, taskText(tasks[0]))
	}
	var run store.WorkflowRun
	waitFor(t, "the nudge sent", func() bool {
		rs, _ := s.app.Store.Runs(ctx, store.RunFilter{Brand: "acme", Workflow: "nudge-now", MemberID: v.ID})
		if len(rs) == 1 {
			run = rs[0]
		}
		return len(rs) == 1 && run.State != store.RunActive
	})
	step, err := s.app.Store.RunStep(ctx, run.ID, "nudge", 1)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := s.app.Store.OutboxByKey(ctx, step.OutboxKey); err != nil || o.Channel != "wecom:acme" || o.Recipient != "wmAcmeWang" || o.State != store.OutboxSent {
		t.Errorf("the nudge's outbox row = %+v, %v; want sent on wecom:acme to wmAcmeWang", o, err)
	}

	// A contact adding (without a contact way) the guide of acme's other
	// brand joins that brand.
	tc.acmeJoin(t, "wu", "wmAcmeKid", "吴妈妈", "")
	waitFor(t, "the second welcome", func() bool { return len(tc.acme.Welcomes()) > 1 })
	kid, err := s.app.Store.MemberByIdentity(ctx, "wecom:acme", "wmAcmeKid")
	if err != nil {
		t.Fatal(err)
	}
	if len(kid.Bindings) != 1 || kid.Bindings[0].BrandID != "acme-kids" || kid.Bindings[0].GuideID != "g-wu" || kid.Bindings[0].Reason != "contact" {
		t.Errorf("bindings = %+v, want g-wu of brand acme-kids by contact", kid.Bindings)
	}
	if !strings.Contains(tc.acme.Welcomes()[1].Text, "吴芳") {
		t.Errorf("second welcome = %+v, want 吴芳's", tc.acme.Welcomes()[1])
	}

	time.Sleep(500 * time.Millisecond) // let any stray work surface
	if calls := tc.def.Calls(); len(calls) != 0 {
		t.Errorf("the default corp got %d calls, want none: %v", len(calls), calls)
	}
	if n := len(tc.acme.Welcomes()); n != 2 {
		t.Errorf("acme sent %d welcomes, want 2", n)
	}
}

// TestTwoWeComCorpsDefaultKeepsItsPaths: the default corp answers at
// /callbacks/wecom and /callbacks/wecom/default, and its contacts keep
// the identity "wecom" and the brand of the wecom section.
func TestTwoWeComCorpsDefaultKeepsItsPaths(t *testing.T) {
	tc := startTwoCorps(t)
	s, ctx := tc.s, context.Background()
	for i, path := range []string{wecom.CallbackPath, wecom.CallbackPath + "/default"} {
		ext := []string{"wmLin", "wmZhou"}[i]
		tc.def.AddContact(wecomfake.Contact{ExternalUserID: ext, Name: "林女士",
			FollowUsers: []wecom.FollowUser{{UserID: "li", State: "s:sh-1"}}})
		ev := wecomfake.AddExternalContact("li", ext, "s:sh-1", tc.def.IssueWelcomeCode(ext))
		ev.CreateTime = time.Now().Truncate(time.Second)
		if status, body := deliver(t, s.base+path, ev.XML(), wecomfake.Callback{}); status != 200 || body != "success" {
			t.Fatalf("%s: %d %q", path, status, body)
		}
		waitFor(t, "the welcome of "+ext, func() bool { return len(tc.def.Welcomes()) > i })
		v, err := s.app.Store.MemberByIdentity(ctx, "wecom", ext)
		if err != nil {
			t.Fatalf("%s: member by identity wecom: %v", path, err)
		}
		if len(v.Bindings) != 1 || v.Bindings[0].BrandID != "camellia" || v.Bindings[0].GuideID != "g-li" {
			t.Errorf("%s: bindings = %+v, want g-li of camellia", path, v.Bindings)
		}
	}
	if n := len(tc.acme.Calls()); n != 0 {
		t.Errorf("acme got %d calls, want none", n)
	}
}

// TestSingleCorpDatabaseKeepsWorkingWithInstances: a database written by
// a gateway of one WeCom corp (identities "wecom") serves on unchanged
// once a second corp is configured: the same external_userid is the
// same member, contacts of the default corp still join its brand, and a
// workflow's message to the old member goes through the default corp,
// with nothing migrated.
func TestSingleCorpDatabaseKeepsWorkingWithInstances(t *testing.T) {
	def := wecomfake.New(t)
	acme := wecomfake.New(t, wecomfake.WithCorpID(acmeCorpID), wecomfake.WithAgentID(acmeAgentID), wecomfake.WithSecrets(acmeSecret, acmeSecret))
	corps := wecomfake.NewCorps(t, def, acme)
	ctx := context.Background()
	cfg := weComConfig(t, def, "one-corp-then-two-admin-token")
	cfg.WeCom = corps.Config(def)
	cfg.WeCom.Brand, cfg.WeCom.MaxClockSkew = "camellia", 10*time.Minute

	// One corp.
	one := startServe(t, cfg)
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"camellia","name":"山茶花"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["camellia"],"lat":31.23,"lng":121.47,"opening_hours":"10:00-22:00"}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜","wecom_userid":"li"}`},
	} {
		if code, body := request(t, "POST", one.base+req.path, cfg.AdminToken, req.body); code != 201 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	def.AddEmployees("li")
	def.AddContact(wecomfake.Contact{ExternalUserID: "wmOld", Name: "周女士", FollowUsers: []wecom.FollowUser{{UserID: "li", State: "s:sh-1"}}})
	first := time.Now().Truncate(time.Second)
	joins := 0
	join := func(s *started) {
		t.Helper()
		ev := wecomfake.AddExternalContact("li", "wmOld", "s:sh-1", def.IssueWelcomeCode("wmOld"))
		// Another second each time: WeCom's event of the same second
		// would be a redelivery of the first.
		ev.CreateTime = first.Add(time.Duration(joins) * time.Second)
		joins++
		if status, body := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 || body != "success" {
			t.Fatalf("add_external_contact: %d %q", status, body)
		}
	}
	join(one)
	waitFor(t, "the first welcome", func() bool { return len(def.Welcomes()) == 1 })
	old, err := one.app.Store.MemberByIdentity(ctx, "wecom", "wmOld")
	if err != nil {
		t.Fatal(err)
	}
	one.shutdown(t)

	// Two corps, on the same database and Redis.
	two := cfg
	ac := corps.Config(acme)
	ac.Token, ac.EncodingAESKey, ac.Brand, ac.MaxClockSkew = acmeToken, acmeAESKey, "acme", 10*time.Minute
	two.WeCom.Instances = map[string]wecom.Config{"acme": ac}
	s := startServe(t, two)
	if names := s.app.Channels.Names(); !slices.Equal(names, []string{"wecom", "wecom:acme", "webhook"}) {
		t.Errorf("channels = %q, want wecom, wecom:acme, webhook", names)
	}
	if code, body := putWorkflow(t, s, cfg.AdminToken, "camellia", "nudge-now", strings.ReplaceAll(nudgeNow, "brand: acme", "brand: camellia")); code != 201 {
		t.Fatalf("PUT workflow: %d %s", code, body)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/workflows/nudge-now/enable?brand=camellia", cfg.AdminToken, ""); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}
	// The member adds the guide again: the same member, joining again.
	join(s)
	waitFor(t, "the message task", func() bool { return len(def.MsgTemplates()) == 1 })
	v, err := s.app.Store.MemberByIdentity(ctx, "wecom", "wmOld")
	if err != nil || v.ID != old.ID {
		t.Fatalf("member of wecom/wmOld = %+v, %v; want member %d", v, err, old.ID)
	}
	mt := def.MsgTemplates()[0]
	if mt.Sender != "li" || !slices.Equal(mt.ExternalUserIDs, []string{"wmOld"}) || !strings.HasPrefix(mt.Text, "周女士好，我是静安店的李娜。") {
		t.Errorf("message task = from %s to %v: %q, want from li to [wmOld]", mt.Sender, mt.ExternalUserIDs, mt.Text)
	}
	if n := len(def.Welcomes()); n != 2 {
		t.Errorf("%d welcomes at the default corp, want 2", n)
	}
	if calls := acme.Calls(); len(calls) != 0 {
		t.Errorf("acme got calls: %v", calls)
	}
}

// TestTwoDingTalkApps: two DingTalk apps in one gateway each hold their
// own stream, in /readyz and scrmgw_channel_connected by instance key;
// a guide's message to app cn is recorded on dingtalk:cn and answered at
// cn's session webhook, nothing at the other app's.
func TestTwoDingTalkApps(t *testing.T) {
	defAPI := dingtalkfake.NewOpenAPI(t)
	defGW := dingtalkfake.New(t, dingtalkfake.WithOpenAPI(defAPI))
	cnAPI := dingtalkfake.NewOpenAPI(t, dingtalkfake.WithAppCredential("ding-cn-app", "cn-app-secret"))
	cnGW := dingtalkfake.New(t, dingtalkfake.WithOpenAPI(cnAPI), dingtalkfake.WithCredential("ding-cn-app", "cn-app-secret"))
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "two-dingtalk-apps-admin-token"
	cfg.Security.PhoneKey = strings.Repeat("ef", 32)
	cfg.DingTalk = dingtalk.Config{ClientID: defGW.ClientID(), ClientSecret: defGW.ClientSecret(), Brand: "camellia",
		StreamHost: defGW.URL(), APIBase: defAPI.URL()}
	cfg.DingTalk.Instances = map[string]dingtalk.Config{"cn": {ClientID: "ding-cn-app", ClientSecret: "cn-app-secret", Brand: "acme",
		StreamHost: cnGW.URL(), APIBase: cnAPI.URL()}}
	s := startServe(t, cfg)
	ctx := context.Background()
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47}`},
		{"/api/v1/guides", `{"id":"g-wu","store_id":"sh-1","name":"吴敏","identities":[{"channel":"dingtalk:cn","external_id":"staff-wu"}]}`},
		{"/api/v1/members", `{"phone":"13900139000","name":"周先生","brand":"acme"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, cfg.AdminToken, req.body); code/100 != 2 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	v, err := s.app.Store.MemberByPhone(ctx, "13900139000", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.app.Store.Bind(ctx, &store.Binding{MemberID: v.ID, BrandID: "acme", GuideID: "g-wu", StoreID: "sh-1", Reason: "manual"}); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, gw := range []*dingtalkfake.Gateway{defGW, cnGW} {
		if err := gw.WaitConnected(waitCtx); err != nil {
			t.Fatalf("stream never connected: %v", err)
		}
	}
	if code, body := request(t, "GET", s.base+"/readyz", "", ""); code != 200 || !strings.Contains(body, `"dingtalk":"ok"`) || !strings.Contains(body, `"dingtalk:cn":"ok"`) {
		t.Errorf("/readyz = %d %s, want dingtalk and dingtalk:cn ok", code, body)
	}
	if code, body := request(t, "GET", s.base+"/metrics", "", ""); code != 200 ||
		!strings.Contains(body, `scrmgw_channel_connected{channel="dingtalk"} 1`) || !strings.Contains(body, `scrmgw_channel_connected{channel="dingtalk:cn"} 1`) {
		t.Errorf("/metrics lacks both apps connected: %d", code)
	}
	id := cnGW.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cid-wu", SenderStaffID: "staff-wu", SenderNick: "吴敏",
		Text: &dingtalkfake.Text{Content: "我的会员"}})
	if ack, err := cnGW.WaitAck(waitCtx, id); err != nil || ack.Code != 200 {
		t.Fatalf("ack = %+v, %v", ack, err)
	}
	waitFor(t, "the reply at cn's session webhook", func() bool { return len(cnAPI.Replies()) > 0 })
	if r := cnAPI.Replies(); len(r) != 1 || !strings.Contains(string(r[0].Body), "周先生") {
		t.Errorf("cn's session webhook replies = %s", r)
	}
	rows, err := s.app.Store.InboxRows(ctx, "dingtalk:cn", "", 10)
	if err != nil || len(rows) != 1 {
		t.Errorf("inbox rows on dingtalk:cn = %d, %v; want 1", len(rows), err)
	}
	time.Sleep(300 * time.Millisecond)
	if r := defAPI.Replies(); len(r) != 0 {
		t.Errorf("the default app answered: %s", r)
	}
}
