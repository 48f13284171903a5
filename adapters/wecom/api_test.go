package wecom_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// The SDK's HTTP client is process-wide: these tests do not run in
// parallel, and each NewAPI points it at the test's own fake.

// memTokens is an adapters.TokenCache in memory, standing in for Redis.
type memTokens struct {
	mu   sync.Mutex
	now  func() time.Time
	vals map[string]memToken
	err  error // returned by every method when set
}

type memToken struct {
	v   string
	exp time.Time
}

func newMemTokens() *memTokens {
	return &memTokens{now: time.Now, vals: make(map[string]memToken)}
}

func (m *memTokens) Get(_ context.Context, key string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return "", m.err
	}
	t, ok := m.vals[key]
	if !ok || !m.now().Before(t.exp) {
		return "", nil
	}
	return t.v, nil
}

func (m *memTokens) Set(_ context.Context, key, token string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.vals[key] = memToken{v: token, exp: m.now().Add(ttl)}
	return nil
}

func (m *memTokens) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	delete(m.vals, key)
	return nil
}

func (m *memTokens) keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.vals {
		out = append(out, k)
	}
	return out
}

// logBuffer collects log output.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	fake   *wecomfake.Server
	api    *wecom.API
	tokens *memTokens
	logs   *logBuffer
}

func newEnv(t *testing.T, opts ...wecomfake.Option) *env {
	t.Helper()
	fake := wecomfake.New(t, opts...)
	e := &env{fake: fake, tokens: newMemTokens(), logs: &logBuffer{}}
	e.api = e.newAPI(t)
	return e
}

func (e *env) newAPI(t *testing.T) *wecom.API {
	t.Helper()
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	api, err := wecom.NewAPI(e.fake.Config(), e.tokens, log)
	if err != nil {
		t.Fatal(err)
	}
	return api
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func apiCode(err error) int {
	var e *adapters.APIError
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func TestExternalContact(t *testing.T) {
	e := newEnv(t)
	created := time.Unix(1700000000, 0)
	want := wecom.Contact{
		ExternalUserID: "wmMember0001",
		Name:           "王小明",
		Avatar:         "https://wx.qlogo.cn/mmhead/abc/0",
		Type:           wecom.ContactWeChat,
		Gender:         wecom.GenderFemale,
		UnionID:        "ozynqsulJFCZ2z1aYeS8h-nuasdAAA",
		FollowUsers: []wecom.FollowUser{
			{UserID: "guide01", Remark: "王小明", CreateTime: created, State: "store-0451",
				RemarkMobiles: []string{"+8613800000001"}, AddWay: 1, OperUserID: "wmMember0001", TagIDs: []string{"etVIP"}},
			{UserID: "guide02", CreateTime: created.Add(time.Hour), AddWay: 3},
		},
	}
	e.fake.AddContact(want)

	got, err := e.api.ExternalContact(ctx(t), "wmMember0001")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("contact (-want +got):\n%s", diff)
	}
	if f, ok := got.FollowUser("guide01"); !ok || f.State != "store-0451" {
		t.Errorf("FollowUser(guide01) = %+v, %v", f, ok)
	}

	_, err = e.api.ExternalContact(ctx(t), "wmNobody")
	if !errors.Is(err, adapters.ErrInvalidRecipient) || apiCode(err) != 84061 {
		t.Errorf("unknown contact: err = %v, want 84061 ErrInvalidRecipient", err)
	}
}

// The documented answer of externalcontact/get decodes as documented.
func TestExternalContactRecordedSample(t *testing.T) {
	e := newEnv(t)
	got, err := e.api.ExternalContact(ctx(t), "woAJ2GCAAAXtWyujaWJHDDGi0mACHAAA")
	if err != nil {
		t.Fatal(err)
	}
	want := &wecom.Contact{
		ExternalUserID: "woAJ2GCAAAXtWyujaWJHDDGi0mACHAAA",
		Name:           "李四",
		Avatar:         "http://p.qlogo.cn/bizmail/IcsdgagqefergqerhewSdage/0",
		Type:           wecom.ContactWeCom,
		Gender:         wecom.GenderMale,
		UnionID:        "ozynqsulJFCZ2z1aYeS8h-nuasdAAA",
		FollowUsers: []wecom.FollowUser{
			{UserID: "rocky", Remark: "李部长", Description: "对接采购事务", CreateTime: time.Unix(1525779812, 0),
				RemarkMobiles: []string{"13800000001", "13000000002"}, AddWay: 1, OperUserID: "rocky",
				TagIDs: []string{"etAJ2GCAAAXtWyujaWJHDDGi0mACHAAA"}},
			{UserID: "tommy", Remark: "李总", Description: "采购问题咨询", CreateTime: time.Unix(1525881637, 0),
				State: "外联二维码1", AddWay: 3, OperUserID: "woAJ2GCAAAd1asdasdjO4wKmE8Aabj9AAA"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("contact (-want +got):\n%s", diff)
	}
}

func TestExternalContactPagesFollowUsers(t *testing.T) {
	e := newEnv(t, wecomfake.WithFollowUserPageSize(2))
	c := wecom.Contact{ExternalUserID: "wmMany", Name: "many", Type: wecom.ContactWeChat}
	for i := range 5 {
		c.FollowUsers = append(c.FollowUsers, wecom.FollowUser{UserID: fmt.Sprintf("guide%02d", i), CreateTime: time.Unix(1700000000, 0)})
	}
	e.fake.AddContact(c)
	got, err := e.api.ExternalContact(ctx(t), "wmMany")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&c, got); diff != "" {
		t.Errorf("contact (-want +got):\n%s", diff)
	}
	if n := e.fake.CallCount(wecomfake.PathExternalContactGet); n != 3 {
		t.Errorf("externalcontact/get calls = %d, want 3 pages", n)
	}
}

func TestSendWelcome(t *testing.T) {
	e := newEnv(t)
	code := e.fake.IssueWelcomeCode("wmMember0001")
	e.fake.AddMedia("image", "MEDIA_ID")
	e.fake.AddMedia("image", "PIC_MEDIA")
	err := e.api.SendWelcome(ctx(t), code, "欢迎光临，我是您的专属导购",
		wecom.Attachment{Kind: wecom.AttachImage, MediaID: "MEDIA_ID"},
		wecom.Attachment{Kind: wecom.AttachLink, Title: "会员权益", URL: "https://example.com/vip", Desc: "新会员礼"},
		wecom.Attachment{Kind: wecom.AttachMiniProgram, Title: "商城", MediaID: "PIC_MEDIA", AppID: "wx8bd80126147dfAAA", Page: "/pages/index"},
	)
	if err != nil {
		t.Fatal(err)
	}
	want := []wecomfake.WelcomeRequest{{
		WelcomeCode:    code,
		ExternalUserID: "wmMember0001",
		Text:           "欢迎光临，我是您的专属导购",
		Attachments: []wecomfake.Attachment{
			{MsgType: "image", Image: &wecomfake.AttachmentMedia{MediaID: "MEDIA_ID"}},
			{MsgType: "link", Link: &wecomfake.AttachmentLink{Title: "会员权益", URL: "https://example.com/vip", Desc: "新会员礼"}},
			{MsgType: "miniprogram", MiniProgram: &wecomfake.AttachmentMini{Title: "商城", PicMediaID: "PIC_MEDIA", AppID: "wx8bd80126147dfAAA", Page: "/pages/index"}},
		},
	}}
	if diff := cmp.Diff(want, e.fake.Welcomes(), cmp.FilterPath(func(p cmp.Path) bool { s := p.Last().String(); return s == ".At" || s == ".Body" }, cmp.Ignore())); diff != "" {
		t.Errorf("welcomes (-want +got):\n%s", diff)
	}

	// Arguments WeCom would refuse are refused before any call.
	calls := len(e.fake.Calls())
	for name, err := range map[string]error{
		"no code":      e.api.SendWelcome(ctx(t), "", "hi"),
		"nothing":      e.api.SendWelcome(ctx(t), "code", ""),
		"bad link":     e.api.SendWelcome(ctx(t), "code", "hi", wecom.Attachment{Kind: wecom.AttachLink, Title: "t"}),
		"unknown kind": e.api.SendWelcome(ctx(t), "code", "hi", wecom.Attachment{Kind: "news"}),
	} {
		if err == nil || adapters.Retryable(err) && !errors.Is(err, wecom.ErrInvalidRequest) {
			t.Errorf("%s: err = %v, want a refusal", name, err)
		}
	}
	if n := len(e.fake.Calls()); n != calls {
		t.Errorf("refused arguments made %d calls", n-calls)
	}
}

func TestWelcomeCodeExpiry(t *testing.T) {
	clk := &clock{t: time.Now()}
	e := newEnv(t, wecomfake.WithClock(clk.Now))

	late := e.fake.IssueWelcomeCode("wmLate")
	clk.Advance(21 * time.Second)
	err := e.api.SendWelcome(ctx(t), late, "hi")
	if !errors.Is(err, adapters.ErrInvalidRecipient) || apiCode(err) != 41050 || adapters.Retryable(err) {
		t.Fatalf("late code: err = %v, want 41050 ErrInvalidRecipient", err)
	}
	if wecom.WelcomeAlreadySent(err) {
		t.Error("late code reported as already sent")
	}

	code := e.fake.IssueWelcomeCode("wmOnTime")
	clk.Advance(19 * time.Second)
	if err := e.api.SendWelcome(ctx(t), code, "hi"); err != nil {
		t.Fatalf("code at 19s: %v", err)
	}
	err = e.api.SendWelcome(ctx(t), code, "hi again")
	if !errors.Is(err, adapters.ErrInvalidRecipient) || !wecom.WelcomeAlreadySent(err) {
		t.Fatalf("reused code: err = %v, want 41051", err)
	}
	if n := len(e.fake.Welcomes()); n != 1 {
		t.Errorf("welcomes sent = %d, want 1", n)
	}
}

func TestMessageTask(t *testing.T) {
	clk := &clock{t: time.Unix(1700000000, 0)}
	e := newEnv(t, wecomfake.WithClock(clk.Now))
	e.fake.AddContact(wecom.Contact{ExternalUserID: "wmMember0001", FollowUsers: []wecom.FollowUser{{UserID: "guide01"}}})
	e.fake.AddContact(wecom.Contact{ExternalUserID: "wmMember0002", FollowUsers: []wecom.FollowUser{{UserID: "guide01"}}})
	e.fake.AddContact(wecom.Contact{ExternalUserID: "wmOtherGuides", FollowUsers: []wecom.FollowUser{{UserID: "guide09"}}})

	msgID, failed, err := e.api.AddMsgTemplate(ctx(t), "guide01", []string{"wmMember0001", "wmMember0002", "wmOtherGuides"},
		"您的积分即将过期", wecom.Attachment{Kind: wecom.AttachImage, PicURL: "https://wework.qpic.cn/wwpic/1/0"})
	if err != nil {
		t.Fatal(err)
	}
	if msgID == "" || !cmp.Equal(failed, []string{"wmOtherGuides"}) {
		t.Errorf("msgid %q, fail list %v", msgID, failed)
	}
	tasks := e.fake.MsgTemplates()
	if len(tasks) != 1 || tasks[0].Sender != "guide01" || tasks[0].ChatType != "single" || tasks[0].Text != "您的积分即将过期" ||
		len(tasks[0].Attachments) != 1 || tasks[0].MsgID != msgID {
		t.Fatalf("tasks = %+v", tasks)
	}

	results, err := e.api.GroupMsgSendResult(ctx(t), msgID, "guide01")
	if err != nil {
		t.Fatal(err)
	}
	want := []wecom.SendResult{
		{ExternalUserID: "wmMember0001", UserID: "guide01", Status: wecom.SendPending},
		{ExternalUserID: "wmMember0002", UserID: "guide01", Status: wecom.SendPending},
	}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("before confirmation (-want +got):\n%s", diff)
	}

	clk.Advance(time.Hour)
	e.fake.ConfirmMsgTemplate(msgID)
	results, err = e.api.GroupMsgSendResult(ctx(t), msgID, "guide01")
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		want[i].Status, want[i].SendTime = wecom.SendSent, clk.Now()
	}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("after confirmation (-want +got):\n%s", diff)
	}

	_, _, err = e.api.AddMsgTemplate(ctx(t), "guide01", []string{"wmOtherGuides"}, "hi")
	if !errors.Is(err, adapters.ErrInvalidRecipient) || apiCode(err) != 41048 {
		t.Errorf("no customer of the sender: err = %v, want 41048", err)
	}
	if _, err := e.api.GroupMsgSendResult(ctx(t), "msgUnknown", "guide01"); apiCode(err) != 41047 || adapters.Retryable(err) {
		t.Errorf("unknown msgid: err = %v, want 41047, not retryable", err)
	}
}

func TestAddContactWay(t *testing.T) {
	e := newEnv(t)
	e.fake.AddEmployees("guide01", "guide02")
	configID, qr, err := e.api.AddContactWay(ctx(t), wecom.ContactWay{
		Type: wecom.ContactWaySingle, Users: []string{"guide01"}, State: "store-0451", Remark: "南京西路店",
	})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = e.api.AddContactWay(ctx(t), wecom.ContactWay{
		Type: wecom.ContactWayMulti, Users: []string{"guide01", "guide02"}, State: "store-0452", RequireVerify: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ways := e.fake.ContactWays()
	if len(ways) != 2 || ways[0].ConfigID != configID || ways[0].QRCode != qr || !strings.HasPrefix(qr, "http") {
		t.Fatalf("ways = %+v, config %q qr %q", ways, configID, qr)
	}
	yes, no := true, false
	want := []wecomfake.ContactWayRequest{
		{Type: 1, Scene: 2, Remark: "南京西路店", SkipVerify: &yes, State: "store-0451", Users: []string{"guide01"}},
		{Type: 2, Scene: 2, SkipVerify: &no, State: "store-0452", Users: []string{"guide01", "guide02"}},
	}
	ignore := cmp.FilterPath(func(p cmp.Path) bool {
		s := p.Last().String()
		return s == ".ConfigID" || s == ".QRCode"
	}, cmp.Ignore())
	if diff := cmp.Diff(want, ways, ignore); diff != "" {
		t.Errorf("contact ways (-want +got):\n%s", diff)
	}

	_, _, err = e.api.AddContactWay(ctx(t), wecom.ContactWay{Type: wecom.ContactWaySingle, Users: []string{"ghost"}, State: "s"})
	if !errors.Is(err, adapters.ErrInvalidRecipient) || apiCode(err) != 40003 {
		t.Errorf("unknown employee: err = %v, want 40003", err)
	}
	_, _, err = e.api.AddContactWay(ctx(t), wecom.ContactWay{Type: wecom.ContactWaySingle, Users: []string{"guide01"}, State: strings.Repeat("s", 31)})
	if !errors.Is(err, wecom.ErrInvalidRequest) {
		t.Errorf("31-character state: err = %v, want ErrInvalidRequest", err)
	}
}

func TestTransferCustomer(t *testing.T) {
	e := newEnv(t)
	e.fake.AddContact(wecom.Contact{ExternalUserID: "wmA", FollowUsers: []wecom.FollowUser{{UserID: "leaving"}}})
	e.fake.AddContact(wecom.Contact{ExternalUserID: "wmB", FollowUsers: []wecom.FollowUser{{UserID: "someone"}}})

	results, err := e.api.TransferCustomer(ctx(t), "leaving", "taking", []string{"wmA", "wmB", "wmGone"}, "您好，我是您的新导购")
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 || results[0].ErrCode != 0 || results[0].Err != nil ||
		results[1].ErrCode != 40131 || results[1].Err == nil || adapters.Retryable(results[1].Err) ||
		results[2].ErrCode != 40096 || !errors.Is(results[2].Err, adapters.ErrInvalidRecipient) {
		t.Errorf("results = %+v", results)
	}
	if _, err := e.api.TransferResignedCustomer(ctx(t), "left", "taking", []string{"wmA"}); err != nil {
		t.Fatal(err)
	}
	want := []wecomfake.TransferRequest{
		{HandoverUserID: "leaving", TakeoverUserID: "taking", ExternalUserIDs: []string{"wmA", "wmB", "wmGone"},
			TransferSuccessMsg: "您好，我是您的新导购", Results: map[string]int{"wmA": 0, "wmB": 40131, "wmGone": 40096}},
		{Resigned: true, HandoverUserID: "left", TakeoverUserID: "taking", ExternalUserIDs: []string{"wmA"},
			Results: map[string]int{"wmA": 40131}},
	}
	if diff := cmp.Diff(want, e.fake.Transfers()); diff != "" {
		t.Errorf("transfers (-want +got):\n%s", diff)
	}
}

func TestKFSyncMsg(t *testing.T) {
	e := newEnv(t)
	const kfid = "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q"
	token := e.fake.QueueKFMessages(kfid,
		wecomfake.KFText("wmMember0001", "最近的门店在哪里？"),
		wecomfake.KFLocation("wmMember0001", 31.2304, 121.4737, "人民广场", "上海市黄浦区"),
		wecomfake.KFEnterSession("wmMember0002", "store-0451", "WELCOME"),
	)
	e.fake.QueueKFMessages("wkOtherAccount", wecomfake.KFText("wmElse", "not for this account"))

	p1, err := e.api.KFSyncMsg(ctx(t), "", token, kfid, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.Messages) != 2 || !p1.HasMore || p1.NextCursor == "" {
		t.Fatalf("page 1 = %+v", p1)
	}
	text, loc := p1.Messages[0], p1.Messages[1]
	if text.MsgType != "text" || text.Text != "最近的门店在哪里？" || text.ExternalUserID != "wmMember0001" ||
		text.OpenKfID != kfid || text.Origin != wecom.KFOriginCustomer || text.MsgID == "" || text.SendTime == 0 {
		t.Errorf("text = %+v", text)
	}
	if loc.MsgType != "location" || loc.Latitude != 31.2304 || loc.Longitude != 121.4737 || loc.LocationName != "人民广场" ||
		loc.LocationAddress != "上海市黄浦区" {
		t.Errorf("location = %+v", loc)
	}

	p2, err := e.api.KFSyncMsg(ctx(t), p1.NextCursor, token, kfid, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.Messages) != 1 || p2.HasMore {
		t.Fatalf("page 2 = %+v", p2)
	}
	ev := p2.Messages[0]
	if ev.MsgType != "event" || ev.Origin != wecom.KFOriginEvent || ev.Event == nil || ev.Event.Type != "enter_session" ||
		ev.Event.Scene != "store-0451" || ev.Event.WelcomeCode != "WELCOME" || ev.ExternalUserID != "wmMember0002" || ev.OpenKfID != kfid {
		t.Errorf("event = %+v %+v", ev, ev.Event)
	}

	p3, err := e.api.KFSyncMsg(ctx(t), p2.NextCursor, token, kfid, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p3.Messages) != 0 || p3.HasMore {
		t.Errorf("page 3 = %+v", p3)
	}
	if _, err := e.api.KFSyncMsg(ctx(t), "garbage", token, kfid, 0); apiCode(err) != 50100 {
		t.Errorf("bad cursor: err = %v, want 50100", err)
	}
}

// Without the callback's token, sync_msg is throttled after 10 calls a
// minute.
func TestKFSyncMsgWithoutToken(t *testing.T) {
	e := newEnv(t)
	var err error
	for i := 0; i < 11 && err == nil; i++ {
		_, err = e.api.KFSyncMsg(ctx(t), "", "", "wkAccount", 0)
	}
	if !errors.Is(err, adapters.ErrRateLimited) || apiCode(err) != 45009 {
		t.Errorf("err = %v, want 45009 ErrRateLimited", err)
	}
	token := e.fake.QueueKFMessages("wkAccount")
	if _, err := e.api.KFSyncMsg(ctx(t), "", token, "wkAccount", 0); err != nil {
		t.Errorf("with token: %v", err)
	}
}

// The documented sync_msg answer decodes.
func TestKFSyncMsgRecordedSample(t *testing.T) {
	e := newEnv(t)
	var sample struct {
		MsgList []json.RawMessage `json:"msg_list"`
	}
	if err := json.Unmarshal(e.fake.Recorded("kf_sync_msg"), &sample); err != nil {
		t.Fatal(err)
	}
	var msgs []wecomfake.KFMessage
	for _, raw := range sample.MsgList {
		msgs = append(msgs, wecomfake.KFMessage{Raw: raw})
	}
	token := e.fake.QueueKFMessages("wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q", msgs...)
	page, err := e.api.KFSyncMsg(ctx(t), "", token, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 3 {
		t.Fatalf("messages = %d, want 3", len(page.Messages))
	}
	ignoreRaw := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Raw" }, cmp.Ignore())
	want := []wecom.KFMessage{
		{MsgID: "from_msgid_4622416642169452483", OpenKfID: "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q", ExternalUserID: "wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw",
			ServicerUserID: "Zhangsan", SendTime: 1615478585, Origin: 3, MsgType: "text", Text: "你好", MenuID: "101"},
		{MsgID: "from_msgid_4622416642169452484", OpenKfID: "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q", ExternalUserID: "wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw",
			SendTime: 1615478590, Origin: 3, MsgType: "location", Latitude: 23.106021881103501, Longitude: 113.320503234863,
			LocationName: "广州国际媒体港(广州市海珠区)", LocationAddress: "广东省广州市海珠区滨江东路"},
		{MsgID: "from_msgid_4622416642169452485", OpenKfID: "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q", ExternalUserID: "wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw",
			SendTime: 1615478600, Origin: 4, MsgType: "event",
			Event: &wecom.KFEvent{Type: "enter_session", Scene: "123", SceneParam: "abc", WelcomeCode: "aaaaaa"}},
	}
	if diff := cmp.Diff(want, page.Messages, ignoreRaw); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestKFSend(t *testing.T) {
	e := newEnv(t)
	const kfid = "wkStore"
	_, err := e.api.KFSendMsg(ctx(t), "wmMember0001", kfid, "", "hello")
	if !errors.Is(err, adapters.ErrInvalidRecipient) || apiCode(err) != 95018 {
		t.Fatalf("no session: err = %v, want 95018", err)
	}

	e.fake.QueueKFMessages(kfid, wecomfake.KFText("wmMember0001", "在吗"))
	msgID, err := e.api.KFSendMsg(ctx(t), "wmMember0001", kfid, "s0123456789abcdef", "在的，请问有什么可以帮您？")
	if err != nil {
		t.Fatal(err)
	}
	if msgID != "s0123456789abcdef" {
		t.Errorf("msgid = %q", msgID)
	}
	e.fake.AddMedia("image", "THUMB")
	if _, err := e.api.KFSendLink(ctx(t), "wmMember0001", kfid, "", wecom.KFLink{Title: "门店", URL: "https://example.com/s", ThumbMediaID: "THUMB"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.KFSendMiniProgram(ctx(t), "wmMember0001", kfid, "", wecom.KFMiniProgram{AppID: "wxapp", Title: "商城", ThumbMediaID: "THUMB", PagePath: "pages/index"}); err != nil {
		t.Fatal(err)
	}
	sent := e.fake.KFSent()
	if len(sent) != 3 || sent[0].MsgID != msgID || sent[0].Text != "在的，请问有什么可以帮您？" || sent[0].ToUser != "wmMember0001" ||
		sent[0].OpenKfID != kfid || sent[1].MsgType != "link" || sent[2].MsgType != "miniprogram" {
		t.Errorf("sent = %+v", sent)
	}

	// A retry with the same msgid is refused, not sent twice.
	if _, err := e.api.KFSendMsg(ctx(t), "wmMember0001", kfid, "s0123456789abcdef", "again"); err == nil || adapters.Retryable(err) {
		t.Errorf("repeated msgid: err = %v, want a permanent refusal", err)
	}
	if _, err := e.api.KFSendMsg(ctx(t), "wmMember0001", kfid, "not a valid msgid!", "x"); !errors.Is(err, wecom.ErrInvalidRequest) {
		t.Errorf("malformed msgid: err = %v", err)
	}
	// Five messages per customer message.
	for i := 0; i < 2; i++ {
		if _, err := e.api.KFSendMsg(ctx(t), "wmMember0001", kfid, "", "more"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.api.KFSendMsg(ctx(t), "wmMember0001", kfid, "", "sixth"); apiCode(err) != 95018 {
		t.Errorf("sixth message: err = %v, want 95018", err)
	}
}

func TestAppMessage(t *testing.T) {
	e := newEnv(t)
	e.fake.AddEmployees("guide01", "guide02")
	msgID, invalid, err := e.api.AppMessage(ctx(t), []string{"guide01", "Ghost"}, "今天有 3 位新会员待回访")
	if err != nil {
		t.Fatal(err)
	}
	if msgID == "" || !cmp.Equal(invalid, []string{"ghost"}) {
		t.Errorf("msgid %q, invalid %v", msgID, invalid)
	}
	if _, _, err := e.api.SendAppMsg(ctx(t), []string{"guide02"}, wecom.AppMsg{Kind: wecom.AppMarkdown, Content: "**3** 位新会员"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.api.SendAppMsg(ctx(t), []string{"guide02"}, wecom.AppMsg{Kind: wecom.AppTextCard, Title: "回访任务",
		Content: "3 位新会员", URL: "https://example.com/tasks"}); err != nil {
		t.Fatal(err)
	}
	msgs := e.fake.AppMessages()
	if len(msgs) != 3 {
		t.Fatalf("app messages = %d", len(msgs))
	}
	want := []struct {
		to      []string
		msgType string
		content string
	}{
		{[]string{"guide01", "Ghost"}, "text", "今天有 3 位新会员待回访"},
		{[]string{"guide02"}, "markdown", "**3** 位新会员"},
		{[]string{"guide02"}, "textcard", "3 位新会员"},
	}
	for i, w := range want {
		m := msgs[i]
		if !cmp.Equal(m.ToUser, w.to) || m.MsgType != w.msgType || m.Content != w.content || m.AgentID != 1000002 {
			t.Errorf("message %d = %+v", i, m)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(msgs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if _, ok := body["agentid"].(float64); !ok {
		t.Errorf("agentid sent as %T, want a JSON number", body["agentid"])
	}

	_, _, err = e.api.AppMessage(ctx(t), []string{"ghost1", "ghost2"}, "hi")
	if !errors.Is(err, adapters.ErrInvalidRecipient) || apiCode(err) != 81013 {
		t.Errorf("all invalid: err = %v, want 81013", err)
	}

	// WeCom's duplicate check drops a retried message.
	m := wecom.AppMsg{Content: "提醒：回访王小明", DuplicateCheck: time.Hour}
	for range 2 {
		if _, _, err := e.api.SendAppMsg(ctx(t), []string{"guide01"}, m); err != nil {
			t.Fatal(err)
		}
	}
	msgs = e.fake.AppMessages()
	if last := msgs[len(msgs)-1]; !last.Duplicate || msgs[len(msgs)-2].Duplicate {
		t.Errorf("duplicate flags: %v, %v", msgs[len(msgs)-2].Duplicate, last.Duplicate)
	}
}

// Replicas share one token per secret through the cache.
func TestTokenSharedBetweenReplicas(t *testing.T) {
	e := newEnv(t)
	e.fake.AddContact(wecom.Contact{ExternalUserID: "wmA"})
	other := e.newAPI(t)
	for _, api := range []*wecom.API{e.api, other, e.api, other} {
		if _, err := api.ExternalContact(ctx(t), "wmA"); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fake.TokenRequests(); n != 1 {
		t.Errorf("gettoken calls = %d, want 1 (contact secret)", n)
	}
	for _, api := range []*wecom.API{e.api, other} {
		if _, _, err := api.AppMessage(ctx(t), []string{"guide01"}, "hi"); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fake.TokenRequests(); n != 2 {
		t.Errorf("gettoken calls = %d, want 2 (contact and app secret)", n)
	}
	for _, k := range e.tokens.keys() {
		if strings.Contains(k, e.fake.Secret()) || strings.Contains(k, e.fake.ContactSecret()) {
			t.Errorf("cache key %q holds a secret", k)
		}
	}

	// One secret for both: one token.
	same := newEnv(t, wecomfake.WithSecrets("the-one-secret", "the-one-secret"))
	same.fake.AddContact(wecom.Contact{ExternalUserID: "wmA"})
	if _, err := same.api.ExternalContact(ctx(t), "wmA"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := same.api.AppMessage(ctx(t), []string{"guide01"}, "hi"); err != nil {
		t.Fatal(err)
	}
	if n := same.fake.TokenRequests(); n != 1 {
		t.Errorf("one secret: gettoken calls = %d, want 1", n)
	}
}

func TestTokenRefresh(t *testing.T) {
	e := newEnv(t)
	e.fake.AddContact(wecom.Contact{ExternalUserID: "wmA"})
	if _, err := e.api.ExternalContact(ctx(t), "wmA"); err != nil {
		t.Fatal(err)
	}

	// Expired: 42001, a new token, the call again.
	e.fake.ExpireTokens()
	if _, err := e.api.ExternalContact(ctx(t), "wmA"); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if n := e.fake.TokensIssued(); n != 2 {
		t.Errorf("tokens issued = %d, want 2", n)
	}
	if n := e.fake.CallCount(wecomfake.PathExternalContactGet); n != 3 {
		t.Errorf("externalcontact/get calls = %d, want 3", n)
	}

	// Refused once (40014) while still valid: gettoken again, which gives
	// the same token back, and the call succeeds.
	e.fake.FailNext(wecomfake.PathSendWelcomeMsg, 1, 40014, "")
	code := e.fake.IssueWelcomeCode("wmA")
	if err := e.api.SendWelcome(ctx(t), code, "hi"); err != nil {
		t.Fatalf("after 40014: %v", err)
	}
	if n := e.fake.TokenRequests(); n != 3 {
		t.Errorf("gettoken calls = %d, want 3", n)
	}

	// Refused twice: one retry only, then ErrUnauthorized.
	before := e.fake.CallCount(wecomfake.PathExternalContactGet)
	e.fake.FailNext(wecomfake.PathExternalContactGet, 2, 42001, "")
	_, err := e.api.ExternalContact(ctx(t), "wmA")
	if !errors.Is(err, adapters.ErrUnauthorized) || apiCode(err) != 42001 {
		t.Errorf("refused twice: err = %v, want 42001 ErrUnauthorized", err)
	}
	if n := e.fake.CallCount(wecomfake.PathExternalContactGet) - before; n != 2 {
		t.Errorf("calls = %d, want 2 (one retry)", n)
	}
}

// A cache that fails is read as empty: calls still work.
func TestTokenCacheDown(t *testing.T) {
	e := newEnv(t)
	e.fake.AddContact(wecom.Contact{ExternalUserID: "wmA"})
	e.tokens.err = errors.New("redis: connection refused")
	for range 2 {
		if _, err := e.api.ExternalContact(ctx(t), "wmA"); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(e.logs.String(), "connection refused") {
		t.Error("cache failure not logged")
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name      string
		code      int
		kind      error
		retryable bool
	}{
		{"system busy", -1, adapters.ErrTemporary, true},
		{"frequency", 45009, adapters.ErrRateLimited, true},
		{"concurrency", 45033, adapters.ErrRateLimited, true},
		{"minute quota", 45011, adapters.ErrRateLimited, true},
		{"api forbidden", 48002, adapters.ErrUnauthorized, true},
		{"ip not allowed", 60020, adapters.ErrUnauthorized, true},
		{"invalid userid", 40003, adapters.ErrInvalidRecipient, false},
		{"not external contact", 84061, adapters.ErrInvalidRecipient, false},
		{"invalid external userid", 40096, adapters.ErrInvalidRecipient, false},
		{"all recipients invalid", 81013, adapters.ErrInvalidRecipient, false},
		{"welcome code invalid", 41050, adapters.ErrInvalidRecipient, false},
		{"welcome delivered", 41051, adapters.ErrInvalidRecipient, false},
		{"welcome being sent", 41096, adapters.ErrTemporary, true},
		{"kf session closed", 95018, adapters.ErrInvalidRecipient, false},
		{"unknown", 12345, nil, false},
	}
	e := newEnv(t)
	e.fake.AddContact(wecom.Contact{ExternalUserID: "wmA"})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.fake.FailNext(wecomfake.PathExternalContactGet, 1, tc.code, "")
			_, err := e.api.ExternalContact(ctx(t), "wmA")
			var apiErr *adapters.APIError
			if !errors.As(err, &apiErr) || apiErr.Code != tc.code || apiErr.Channel != "wecom" {
				t.Fatalf("err = %v, want APIError %d", err, tc.code)
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("err = %v, want %v", err, tc.kind)
			}
			if tc.kind == nil && apiErr.Kind != nil {
				t.Errorf("kind = %v, want nil", apiErr.Kind)
			}
			if wecom.Kind(tc.code) != tc.kind {
				t.Errorf("Kind(%d) = %v", tc.code, wecom.Kind(tc.code))
			}
			if got := adapters.Retryable(err); got != tc.retryable {
				t.Errorf("Retryable = %v, want %v", got, tc.retryable)
			}
		})
	}

	t.Run("http 500", func(t *testing.T) {
		e.fake.FailHTTPNext(wecomfake.PathExternalContactGet, 1, 500)
		_, err := e.api.ExternalContact(ctx(t), "wmA")
		var apiErr *adapters.APIError
		if !errors.Is(err, adapters.ErrTemporary) || errors.As(err, &apiErr) || !adapters.Retryable(err) {
			t.Errorf("err = %v, want ErrTemporary", err)
		}
	})
	t.Run("http 502 on a post", func(t *testing.T) {
		e.fake.FailHTTPNext(wecomfake.PathAddContactWay, 1, 502)
		_, _, err := e.api.AddContactWay(ctx(t), wecom.ContactWay{Type: wecom.ContactWaySingle, Users: []string{"g"}})
		if !errors.Is(err, adapters.ErrTemporary) || !strings.Contains(err.Error(), "502") {
			t.Errorf("err = %v, want ErrTemporary with the status", err)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		f := wecomfake.New(t)
		cfg := f.Config()
		cfg.ContactSecret = "not-the-secret"
		api, err := wecom.NewAPI(cfg, newMemTokens(), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = api.ExternalContact(ctx(t), "wmA")
		if !errors.Is(err, adapters.ErrUnauthorized) || apiCode(err) != 40001 {
			t.Errorf("err = %v, want 40001 ErrUnauthorized", err)
		}
		if n := f.TokenRequests(); n != 1 {
			t.Errorf("gettoken calls = %d, want 1", n)
		}
		if strings.Contains(err.Error(), "not-the-secret") {
			t.Errorf("error carries the secret: %v", err)
		}
	})
	t.Run("server gone", func(t *testing.T) {
		f := wecomfake.New(t)
		api, err := wecom.NewAPI(f.Config(), newMemTokens(), nil)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		_, err = api.ExternalContact(ctx(t), "wmA")
		if !errors.Is(err, adapters.ErrTemporary) || !adapters.Retryable(err) {
			t.Errorf("err = %v, want ErrTemporary", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		c, cancel := context.WithCancel(context.Background())
		cancel()
		before := len(e.fake.Calls())
		_, err := e.api.ExternalContact(c, "wmA")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if n := len(e.fake.Calls()) - before; n != 0 {
			t.Errorf("%d calls made with a cancelled context", n)
		}
	})
}

// No token or secret reaches an error or a log line, whatever fails.
func TestNoCredentialInErrorsOrLogs(t *testing.T) {
	e := newEnv(t)
	e.fake.AddContact(wecom.Contact{ExternalUserID: "wmA"})
	var errs []error
	collect := func(err error) {
		if err == nil {
			t.Error("expected an error")
			return
		}
		errs = append(errs, err)
	}
	if _, err := e.api.ExternalContact(ctx(t), "wmA"); err != nil {
		t.Fatal(err)
	}
	// The SDK's own status error names the URL with access_token (GET,
	// through the SDK) ...
	e.fake.FailHTTPNext(wecomfake.PathExternalContactGet, 1, 500)
	_, err := e.api.ExternalContact(ctx(t), "wmA")
	collect(err)
	// ... and so does util.PostJSONContext's (POST, our structs).
	e.fake.FailHTTPNext(wecomfake.PathKFSyncMsg, 1, 503)
	_, err = e.api.KFSyncMsg(ctx(t), "", "", "wk", 0)
	collect(err)
	e.fake.FailHTTPNext(wecomfake.PathMessageSend, 1, 500)
	_, _, err = e.api.AppMessage(ctx(t), []string{"guide01"}, "hi")
	collect(err)
	// gettoken's URL has the secret.
	e.fake.ExpireTokens()
	e.fake.FailHTTPNext(wecomfake.PathGetToken, 1, 500)
	_, err = e.api.ExternalContact(ctx(t), "wmA")
	collect(err)
	e.fake.FailNext(wecomfake.PathExternalContactGet, 2, 42001, "")
	_, err = e.api.ExternalContact(ctx(t), "wmA")
	collect(err)
	// A dead server: net/http's *url.Error quotes the whole URL.
	if _, err := e.api.ExternalContact(ctx(t), "wmA"); err != nil {
		t.Fatal(err)
	}
	e.fake.Close()
	_, err = e.api.ExternalContact(ctx(t), "wmA")
	collect(err)
	_, err = e.api.KFSyncMsg(ctx(t), "", "", "wk", 0)
	collect(err)

	secrets := append(e.fake.IssuedTokens(), e.fake.Secret(), e.fake.ContactSecret())
	if len(secrets) < 4 {
		t.Fatalf("only %d tokens issued", len(secrets)-2)
	}
	logs := e.logs.String()
	for _, err := range errs {
		text := fmt.Sprintf("%v | %+v | %#v", err, err, err)
		for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
			text += " | " + u.Error()
		}
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("error carries a credential: %s", text)
			}
		}
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("logs carry a credential:\n%s", logs)
		}
	}
	if !strings.Contains(logs, "wecom call") {
		t.Errorf("no debug logs captured:\n%s", logs)
	}
}

func TestNewAPIRefusesBadConfig(t *testing.T) {
	good := wecom.Config{CorpID: "ww1", Secret: "s", AgentID: "1000002", APIBase: "http://127.0.0.1:1"}
	for name, mut := range map[string]func(*wecom.Config){
		"no corp":      func(c *wecom.Config) { c.CorpID = "" },
		"no secret":    func(c *wecom.Config) { c.Secret = "" },
		"agent id":     func(c *wecom.Config) { c.AgentID = "app" },
		"api base":     func(c *wecom.Config) { c.APIBase = "ftp://x" },
		"api base url": func(c *wecom.Config) { c.APIBase = "::" },
	} {
		cfg := good
		mut(&cfg)
		if _, err := wecom.NewAPI(cfg, newMemTokens(), nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := wecom.NewAPI(good, nil, nil); err == nil {
		t.Error("no token cache: no error")
	}
}

// APIBase may carry a path prefix (a proxy); requests keep their path
// under it.
func TestAPIBaseWithPrefix(t *testing.T) {
	var (
		mu    sync.Mutex
		paths []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/gettoken") {
			fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","access_token":"tok","expires_in":7200}`)
			return
		}
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","msgid":"m1"}`)
	}))
	defer srv.Close()
	api, err := wecom.NewAPI(wecom.Config{CorpID: "ww1", Secret: "s", AgentID: "1", APIBase: srv.URL + "/wecom-proxy/"}, newMemTokens(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.AppMessage(ctx(t), []string{"u"}, "hi"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"/wecom-proxy/cgi-bin/gettoken", "/wecom-proxy/cgi-bin/message/send"}
	if !cmp.Equal(paths, want) {
		t.Errorf("paths = %v, want %v", paths, want)
	}
}
