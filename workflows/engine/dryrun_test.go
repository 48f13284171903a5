package engine

import (
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/templates"
)

func exampleWorkflowText(t *testing.T, name string) string {
	t.Helper()
	data, err := fs.ReadFile(configs.ExampleWorkflows(), name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func dryRunOptions(t *testing.T) DryRunOptions {
	reg, err := templates.LoadFS(configs.BuiltinTemplates())
	if err != nil {
		t.Fatal(err)
	}
	return DryRunOptions{Templates: reg, Specs: testChannels}
}

// timelineText prints a timeline as the CLI does.
func timelineText(t *testing.T, tl []TimelineEntry) string {
	var b strings.Builder
	if err := WriteTimeline(&b, tl); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestDryRunWelcome(t *testing.T) {
	wf := loadWorkflow(t, exampleWorkflowText(t, "new-member-welcome"))
	lily := MemberFixture{ID: 7, Name: "Lily", PhoneTail: "8000", Level: "silver", GuideID: "g1", GuideName: "小王",
		StoreName: "静安店", StoreTimeZone: "Asia/Shanghai"}
	start := at(3, 22, 30)
	tl, err := DryRun(dryRunOptions(t), wf, lily, nil, start)
	if err != nil {
		t.Fatal(err)
	}
	text := timelineText(t, tl)
	t.Log("\n" + text)
	for _, want := range []string{
		"member.joined happens",
		"keeps guide 小王",
		"task for guide 小王, due 2025-03-04 22:30:00: 新会员 Lily（尾号8000）：打个招呼",
		"waits until 2025-03-06 22:30:00",
		"member.orders == 0: true, goes to coupon",
		"held by the send rules until 2025-03-07 09:0",
		"sends first_purchase_coupon on wecom",
		"url: https://shop.example.com/coupons/NEW-MEMBER-50-",
		"sends recall on wecom through guide 小王",
		"run ends (done): no purchase in the first month",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	var coupon TimelineEntry
	for _, e := range tl {
		if e.Step == "coupon" && e.Message != nil {
			coupon = e
		}
	}
	if coupon.At.Before(at(7, 9, 0)) || coupon.Message.Kind != "news" {
		t.Errorf("coupon entry: %+v", coupon)
	}

	// A purchase on the second day reaches the goal while the run waits.
	tl, _ = DryRun(dryRunOptions(t), wf, lily, []EventFixture{
		{At: at(5, 15, 0), Type: "purchase.completed", Order: &events.Order{ID: "o1", Total: 299}},
	}, start)
	text = timelineText(t, tl)
	if !strings.Contains(text, "purchase.completed reaches the goal: run ends (converted)") || strings.Contains(text, "sends") {
		t.Errorf("with a purchase:\n%s", text)
	}
	if last := tl[len(tl)-1]; !last.At.Equal(at(5, 15, 0)) {
		t.Errorf("converted at %v", last.At)
	}
}

func TestDryRunRepurchase(t *testing.T) {
	wf := loadWorkflow(t, exampleWorkflowText(t, "repurchase-replenishment"))
	bo := MemberFixture{Name: "Bo", GuideID: "g1", GuideName: "小王", StoreTimeZone: "Asia/Shanghai"}
	order := &events.Order{ID: "o-1", Total: 199, Items: []events.Item{{SKU: "c1", Name: "洁面乳", Qty: 1, Price: 199, CycleDays: 30}}}
	tl, err := DryRun(dryRunOptions(t), wf, bo, []EventFixture{
		{At: at(3, 8, 0), Type: "purchase.completed", Order: order},
		{At: at(31, 9, 30), Type: "message.received", Text: "好的"},
	}, at(3, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	text := timelineText(t, tl)
	t.Log("\n" + text)
	for _, want := range []string{
		"waits until 2025-03-30 08:00:00",
		// 08:00 is before the 10:00-20:00 send window.
		"held by the send rules until 2025-03-30 10:0",
		"sends repurchase_reminder on wecom",
		"got message.received: goes to follow_up",
		"task for guide 小王",
		"按订单 o-1 帮 TA 备货",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
}

func TestDryRunScheduleFilter(t *testing.T) {
	wf := loadWorkflow(t, exampleWorkflowText(t, "dormant-win-back"))
	// No guide: the trigger's filter (member.guide_id != "") keeps them out.
	tl, err := DryRun(dryRunOptions(t), wf, MemberFixture{Name: "X", Orders: 2}, nil, at(3, 10, 0))
	if err != nil {
		t.Fatal(err)
	}
	if text := timelineText(t, tl); !strings.Contains(text, "no run starts") {
		t.Errorf("timeline:\n%s", text)
	}
	gold := MemberFixture{Name: "G", Level: "gold", Orders: 3, GuideID: "g1", StoreTimeZone: "Asia/Shanghai",
		LastPurchaseAt: at(3, 10, 0).Add(-100 * 24 * time.Hour)}
	tl, _ = DryRun(dryRunOptions(t), wf, gold, nil, at(3, 10, 0))
	text := timelineText(t, tl)
	for _, want := range []string{"sends win_back", "no message.received: goes to by_level", "member.level: goes to call", "回访沉睡会员 G（gold"} {
		if !strings.Contains(text, want) {
			t.Errorf("timeline lacks %q:\n%s", want, text)
		}
	}
}
