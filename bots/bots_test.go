package bots

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/geo"
	"github.com/scrmgw/scrmgw/store/storetest"
	"github.com/scrmgw/scrmgw/templates"
)

type indexFinder struct{ ix *geo.Index }

func (f indexFinder) Nearest(lat, lng float64, brand string, maxKm float64, n int) []geo.Hit {
	return f.ix.NearestN(lat, lng, brand, 50, n)
}

func ptr[T any](v T) *T { return &v }

// storeTasks completes tasks in the store, as the engine does without the
// events.
type storeTasks struct{ s *store.Store }

func (t storeTasks) CompleteGuideTask(ctx context.Context, id int64) (*store.GuideTask, bool, error) {
	return t.s.CompleteGuideTask(ctx, id, time.Now())
}

// setup: brand 山茶花 (camellia) with two Shanghai stores, guide Li bound
// to member wmChen; guide Wu (DingTalk) in the other store. Handing over
// is off: the bots answer everything themselves.
func setup(t *testing.T, s *store.Store) Bot {
	t.Helper()
	d := setupDeps(t, s)
	return Chain(&Router{Member: MemberBot(d), Guide: GuideBot(d)}, Recover(slog.New(slog.NewTextHandler(io.Discard, nil))), Normalize())
}

func setupDeps(t *testing.T, s *store.Store) Deps {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateBrand(ctx, &store.Brand{ID: "camellia", Name: "山茶花"}); err != nil {
		t.Fatal(err)
	}
	stores := []store.RetailStore{
		{ID: "ja", Name: "静安店", Address: "南京西路1515号", OpeningHours: "10:00-22:00", Lat: 31.2243, Lng: 121.4462, BrandIDs: []string{"camellia"}, Active: true},
		{ID: "xtd", Name: "新天地店", Address: "马当路245号", Lat: 31.2190, Lng: 121.4750, BrandIDs: []string{"camellia"}, Active: true},
	}
	ix := geo.New()
	for i := range stores {
		if err := s.CreateRetailStore(ctx, &stores[i]); err != nil {
			t.Fatal(err)
		}
		ix.Upsert(geo.Site{ID: stores[i].ID, Lat: stores[i].Lat, Lng: stores[i].Lng, Brands: stores[i].BrandIDs, Active: true})
	}
	for _, g := range []store.Guide{
		{ID: "li", StoreID: "ja", Name: "李娜", Identities: []store.GuideIdentity{{Channel: "wecom", ExternalID: "li"}}, Active: true},
		{ID: "wu", StoreID: "xtd", Name: "吴敏", Identities: []store.GuideIdentity{{Channel: "dingtalk", ExternalID: "staff-wu"}}, Active: true},
	} {
		if err := s.CreateGuide(ctx, &g); err != nil {
			t.Fatal(err)
		}
	}
	m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", Name: "陈女士", BrandID: "camellia",
		Identities: []store.Identity{{Channel: "wecom", ExternalID: "wmChen"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: "camellia", GuideID: "li", StoreID: "ja", Reason: "state"}); err != nil {
		t.Fatal(err)
	}
	reg, err := templates.LoadFS(configs.BuiltinTemplates())
	if err != nil {
		t.Fatal(err)
	}
	intents, err := LoadIntents(configs.BotIntents())
	if err != nil {
		t.Fatal(err)
	}
	return Deps{Directory: s, Stores: indexFinder{ix}, Templates: reg, Intents: intents, Tasks: storeTasks{s}, Incentives: s, Channels: testChannels}
}

func TestConversations(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		bot := setup(t, s)
		member := func(text string) *Message {
			return &Message{Channel: "wecom", From: adapters.PartyMember, SenderID: "wmChen", Brand: "camellia", Text: text}
		}
		tests := []struct {
			name string
			msg  *Message
			want []string // substrings of the one reply
		}{
			{"nearest by location", &Message{Channel: "wecom", From: adapters.PartyMember, SenderID: "wmX", Brand: "camellia",
				Location: &adapters.Location{Lat: 31.2230, Lng: 121.4480}}, []string{"离您最近的门店", "静安店（约0.2公里）", "新天地店", "营业时间 10:00-22:00"}},
			{"nearest without location", member("附近门店在哪"), []string{"请发送您的位置"}},
			{"my guide", member("我的导购是谁？"), []string{"李娜", "静安店", "南京西路1515号"}},
			{"my guide in English", member("who is my guide"), []string{"Your personal shopper is 李娜"}},
			{"unknown member asks for a guide", &Message{Channel: "wecom", From: adapters.PartyMember, SenderID: "wmNew", Brand: "camellia", Text: "我的导购"}, []string{"您还没有专属导购"}},
			{"help", member("帮助"), []string{"山茶花的小助手", "附近门店"}},
			{"unknown intent gets help", member("今天天气怎么样"), []string{"附近门店"}},
			{"empty message", member("   "), []string{"附近门店"}},
			{"emoji only", member("😀🎉"), []string{"附近门店"}},
			{"very long message", member(strings.Repeat("哈", 10000) + "我的导购"), []string{"附近门店"}}, // cut before the keyword
			{"latin keyword is a whole word", member("this is nice"), []string{"I'm the 山茶花 assistant"}},
			{"guide: my members", &Message{Channel: "wecom", From: adapters.PartyGuide, SenderID: "li", Brand: "camellia", Text: "我的会员"}, []string{"您最近绑定的会员", "陈女士（尾号8000）"}},
			{"guide with no members", &Message{Channel: "dingtalk", From: adapters.PartyGuide, SenderID: "staff-wu", Brand: "camellia", Text: "my members"}, []string{"You have no members yet"}},
			{"guide: unknown command", &Message{Channel: "dingtalk", From: adapters.PartyGuide, SenderID: "staff-wu", Brand: "camellia", Text: "order pizza"}, []string{"Guide assistant commands"}},
			{"guide: bad task number", &Message{Channel: "dingtalk", From: adapters.PartyGuide, SenderID: "staff-wu", Brand: "camellia", Text: "done 99"}, []string{"No open task has that number"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				replies, err := bot.Handle(context.Background(), tc.msg)
				if err != nil {
					t.Fatal(err)
				}
				if len(replies) != 1 {
					t.Fatalf("%d replies, want 1", len(replies))
				}
				for _, w := range tc.want {
					if !strings.Contains(replies[0].Text, w) {
						t.Errorf("reply %q lacks %q", replies[0].Text, w)
					}
				}
			})
		}
	})
}

func TestRecoverTurnsPanicsIntoErrors(t *testing.T) {
	bot := Chain(BotFunc(func(context.Context, *Message) ([]Reply, error) { panic("boom") }),
		Recover(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if _, err := bot.Handle(context.Background(), &Message{}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("err = %v, want the panic as an error", err)
	}
}

func TestIntentFiles(t *testing.T) {
	good := fstest.MapFS{
		"default.yaml":  {Data: []byte("member:\n  help:\n    keywords: [help]\n  my_guide:\n    keywords: [guide]\n")},
		"camellia.yaml": {Data: []byte("member:\n  my_guide:\n    patterns: ['^找(.+)导购$']\n")},
	}
	in, err := LoadIntents(good)
	if err != nil {
		t.Fatal(err)
	}
	if got, arg := in.Member("camellia").Match("找李娜导购"); got != IntentMyGuide || arg != "李娜" {
		t.Errorf("brand pattern: %q %q", got, arg)
	}
	if got, _ := in.Member("camellia").Match("guide"); got != "" {
		t.Errorf("brand file did not replace the intent: %q", got)
	}
	if got, _ := in.Member("other").Match("my guide please"); got != IntentMyGuide {
		t.Errorf("default for another brand: %q", got)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"unknown intent": {"default.yaml": {Data: []byte("member:\n  order_pizza:\n    keywords: [pizza]\n")}},
		"unknown key":    {"default.yaml": {Data: []byte("member:\n  help:\n    keyword: [x]\n")}},
		"bad pattern":    {"default.yaml": {Data: []byte("member:\n  help:\n    patterns: ['(']\n")}},
		"no default":     {"camellia.yaml": {Data: []byte("member: {}\n")}},
	} {
		if _, err := LoadIntents(fsys); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

func TestTasksPointsAndConsent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		bot := setup(t, s)
		v, _ := s.MemberByIdentity(ctx, "wecom", "wmChen")
		s.SetMembership(ctx, v.ID, "camellia", "gold", ptr(int64(1280)))
		task := &store.GuideTask{MemberID: v.ID, GuideID: "li", BrandID: "camellia", Title: "新会员 陈女士：打个招呼", DueAt: time.Now().Add(24 * time.Hour)}
		if _, err := s.CreateGuideTask(ctx, task); err != nil {
			t.Fatal(err)
		}
		wuTask := &store.GuideTask{MemberID: v.ID, GuideID: "wu", BrandID: "camellia", Title: "别人的任务", DueAt: time.Now()}
		s.CreateGuideTask(ctx, wuTask)
		id := fmt.Sprint(task.ID)
		say := func(from adapters.Party, sender, text string) string {
			t.Helper()
			channel := "wecom"
			if sender == "staff-wu" {
				channel = "dingtalk"
			}
			r, err := bot.Handle(ctx, &Message{Channel: channel, From: from, SenderID: sender, Brand: "camellia", Text: text})
			if err != nil || len(r) != 1 {
				t.Fatalf("%q: %v, %d replies", text, err, len(r))
			}
			return r[0].Text
		}
		for _, tc := range []struct {
			from               adapters.Party
			sender, text, want string
		}{
			{adapters.PartyGuide, "li", "我的任务", "#" + id + " 新会员 陈女士：打个招呼"},
			{adapters.PartyGuide, "li", "完成 9999", "没有找到这个编号"},
			{adapters.PartyGuide, "li", "完成 abc", "没有找到这个编号"},
			{adapters.PartyGuide, "li", "完成 " + fmt.Sprint(wuTask.ID), "没有找到这个编号"}, // not li's task
			{adapters.PartyGuide, "li", "完成 " + id, "已完成 #" + id},
			{adapters.PartyGuide, "li", "我的任务", "您没有待办任务"},
			{adapters.PartyMember, "wmChen", "我的积分", "积分：1280，会员等级：gold"},
			{adapters.PartyMember, "wmChen", "退订", "已为您退订"},
		} {
			if got := say(tc.from, tc.sender, tc.text); !strings.Contains(got, tc.want) {
				t.Errorf("%q → %q, want %q", tc.text, got, tc.want)
			}
		}
		if got, _ := s.GuideTask(ctx, wuTask.ID); got.State != store.GuideTaskOpen {
			t.Errorf("another guide's task was completed")
		}
		p, err := s.MemberProfile(ctx, "camellia", v.ID)
		if err != nil || !p.IsUnsubscribed("wecom") {
			t.Fatalf("unsubscribe not recorded: %+v, %v", p, err)
		}
		if got := say(adapters.PartyMember, "wmChen", "重新订阅"); !strings.Contains(got, "已为您恢复订阅") {
			t.Errorf("resubscribe → %q", got)
		}
		if p, _ := s.MemberProfile(ctx, "camellia", v.ID); p.IsUnsubscribed("wecom") {
			t.Error("resubscribe not recorded")
		}
	})
}

// testChannels are the channel instances bot tests run with, in the order
// of preference: both send guides text; a WeCom text carries 2048 bytes.
var testChannels = adapters.SpecList{
	{Name: "wecom", GuideKinds: []string{adapters.KindText}, MaxTextBytes: 2048},
	{Name: "dingtalk", GuideKinds: []string{adapters.KindText}},
}
