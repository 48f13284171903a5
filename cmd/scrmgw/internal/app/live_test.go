package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/gateway/commerce"
	"github.com/scrmgw/scrmgw/gateway/outbox"
	"github.com/scrmgw/scrmgw/store"
)

// liveSession is store sh-1's live session of the journeys: Sunday 10
// January 2027, 20:00 to 21:30 in Shanghai.
const liveSession = `{"id":"live-0110","brand":"camellia","store_id":"sh-1","title":"春季新品试用",
  "url":"https://live.example.com/s/live-0110","starts_at":"2027-01-10T20:00:00+08:00","ends_at":"2027-01-10T21:30:00+08:00"}`

// TestJourneyStoreLiveWeCom: store sh-1 schedules a live session
// through the API; its two bound members (both added guide 李娜 on
// WeCom) are invited through her at once (a WeCom message task with a
// link card to the live platform), reminded the day before at 20:00 and
// 10 minutes before it starts, each the exact add_msg_template WeCom
// receives. The live platform's signed CloudEvents say one joined and
// bought: the order is recorded credited to sh-1 and 李娜 (attribution
// live, commission lines, her sales points), the member's run converts
// (goal live.ordered), and the session's funnel says invited 2 → joined 1
// → bought 1 for sh-1. A session ending before it starts, or of another
// brand's store, is refused with the field named and nothing written;
// the same session again is answered as it was, its id with other fields
// is a conflict.
func TestJourneyStoreLiveWeCom(t *testing.T) {
	start := time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai)
	j := startJourney(t, journeyChannels{wecom: true}, start)
	ctx := context.Background()
	j.enableShipped("store-live-invite")
	j.wecomJoin("wmChen", "陈女士", "138 0013 8000")
	j.wecomJoin("wmWang", "王先生", "139 0013 9000")
	waitFor(t, "both members bound", func() bool {
		for _, p := range []string{"13800138000", "13900139000"} {
			v, err := j.s.app.Store.MemberByPhone(ctx, p, journeyBrand)
			if err != nil || len(v.Bindings) == 0 {
				return false
			}
		}
		return true
	})
	chen, wang := j.memberByPhone("13800138000"), j.memberByPhone("13900139000")
	base := len(j.wecom.MsgTemplates())

	// Bad sessions: the field named, nothing written.
	for _, tc := range []struct{ name, body, field string }{
		{"ends before it starts", strings.Replace(liveSession, `"ends_at":"2027-01-10T21:30:00+08:00"`, `"ends_at":"2027-01-10T19:00:00+08:00"`, 1), "ends_at"},
		{"another brand's store", strings.Replace(liveSession, `"store_id":"sh-1"`, `"store_id":"nowhere"`, 1), "store_id"},
		{"no url", strings.Replace(liveSession, `"url":"https://live.example.com/s/live-0110",`, ``, 1), "url"},
	} {
		code, body := request(t, "POST", j.s.base+"/api/v1/live-sessions", j.tok, tc.body)
		if code != 400 || !strings.Contains(body, `"field":"`+tc.field+`"`) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.name, code, body, tc.field)
		}
	}
	if code, body := request(t, "GET", j.s.base+"/api/v1/live-sessions/live-0110?brand=camellia", j.tok, ""); code != 404 {
		t.Fatalf("a refused session was written: %d %s", code, body)
	}

	code, body := request(t, "POST", j.s.base+"/api/v1/live-sessions", j.tok, liveSession)
	if code != 201 {
		t.Fatalf("scheduling the live session: %d %s", code, body)
	}
	if code, body := request(t, "POST", j.s.base+"/api/v1/live-sessions", j.tok, liveSession); code != 200 {
		t.Errorf("the same session again: %d %s, want 200", code, body)
	}
	if code, body := request(t, "POST", j.s.base+"/api/v1/live-sessions", j.tok, strings.Replace(liveSession, "春季新品试用", "别的", 1)); code != 409 {
		t.Errorf("the id with another title: %d %s, want 409", code, body)
	}

	// The invitation, through 李娜, to each member.
	tasks := func() []wecomfake.MsgTemplateRequest { return j.wecom.MsgTemplates()[base:] }
	waitFor(t, "the two invitations", func() bool { return len(tasks()) == 2 })
	wantInvite := `[{"msgtype":"link","link":{"title":"静安店直播：春季新品试用","picurl":"https://shop.example.com/static/live.png",
	  "desc":"1月10日 20:00开播，李娜邀您来看，直播专享价。","url":"https://live.example.com/s/live-0110"}}]`
	var to []string
	for _, mt := range tasks() {
		if mt.ChatType != "single" || mt.Sender != "li" || len(mt.ExternalUserIDs) != 1 || mt.Text != "" {
			t.Errorf("invitation = %+v, want a single chat task from li to one member", mt)
		}
		jsonEq(t, "the invitation's attachments", attachmentsJSON(mt.Attachments), wantInvite)
		to = append(to, mt.ExternalUserIDs...)
	}
	slices.Sort(to)
	if !slices.Equal(to, []string{"wmChen", "wmWang"}) {
		t.Errorf("invited %v, want wmChen and wmWang", to)
	}
	j.confirmAll()

	// The day before at 20:00: the reminder (both runs past their
	// invitation first: a run still settling it when the clock jumps
	// would find the day before gone).
	j.waitRun("store-live-invite", chen.ID, "wait_day_before")
	j.waitRun("store-live-invite", wang.ID, "wait_day_before")
	j.advance(time.Date(2027, 1, 9, 20, 0, 5, 0, shanghai).Sub(j.clock.Now()), "the day-before reminders", func() bool { return len(tasks()) == 4 })
	wantDay := `[{"msgtype":"link","link":{"title":"明天20:00开播：春季新品试用","picurl":"https://shop.example.com/static/live.png",
	  "desc":"李娜提醒您：静安店直播明天见。","url":"https://live.example.com/s/live-0110"}}]`
	for _, mt := range tasks()[2:] {
		if mt.Sender != "li" || len(mt.ExternalUserIDs) != 1 {
			t.Errorf("day-before reminder = %+v", mt)
		}
		jsonEq(t, "the day-before reminder's attachments", attachmentsJSON(mt.Attachments), wantDay)
	}
	j.confirmAll()

	// 19:50 on the day: starting in 10 minutes, a text.
	j.waitRun("store-live-invite", chen.ID, "wait_soon")
	j.waitRun("store-live-invite", wang.ID, "wait_soon")
	j.advance(time.Date(2027, 1, 10, 19, 50, 5, 0, shanghai).Sub(j.clock.Now()), "the 10-minute reminders", func() bool { return len(tasks()) == 6 })
	for _, mt := range tasks()[4:] {
		if mt.Sender != "li" || len(mt.ExternalUserIDs) != 1 || len(mt.Attachments) != 0 ||
			mt.Text != "静安店直播「春季新品试用」10分钟后开始，点这里进入直播间：https://live.example.com/s/live-0110" {
			t.Errorf("10-minute reminder = from %q to %v: %q with %s", mt.Sender, mt.ExternalUserIDs, mt.Text, attachmentsJSON(mt.Attachments))
		}
	}
	j.confirmAll()
	j.waitRun("store-live-invite", chen.ID, "wait_end")

	// The live platform: 陈女士 joins, buys, leaves; 王先生 never comes.
	j.clock.Advance(15 * time.Minute)
	at := j.clock.Now().Truncate(time.Second)
	liveEvent := func(id, typ, data string, at time.Time) string {
		return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/live/platform","type":%q,"brand":"camellia","time":%q,"data":%s}`,
			id, typ, at.Format(time.RFC3339), data)
	}
	j.event("lj-1", liveEvent("lj-1", "live.joined", `{"member":{"phone":"13800138000"},"live":"live-0110"}`, at))
	order := `{"member":{"phone":"13800138000"},"live":"live-0110","order_id":"LV-0110-1","channel":"live",
	  "items":[{"sku":"CL-100","qty":2,"price":99}]}`
	j.event("lo-1", liveEvent("lo-1", "live.ordered", order, at.Add(5*time.Minute)))
	j.event("lo-1", liveEvent("lo-1", "live.ordered", order, at.Add(5*time.Minute)))
	j.event("ll-1", liveEvent("ll-1", "live.left", `{"member":{"phone":"13800138000"},"live":"live-0110"}`, at.Add(20*time.Minute)))
	waitFor(t, "the live order", func() bool { _, err := j.s.app.Store.OrderByNo(ctx, journeyBrand, "LV-0110-1"); return err == nil })
	waitFor(t, "the run converted", func() bool {
		rs := j.runs("store-live-invite", chen.ID)
		return len(rs) == 1 && rs[0].State == store.RunConverted
	})
	j.settle()
	o, _ := j.s.app.Store.OrderByNo(ctx, journeyBrand, "LV-0110-1")
	if o.Attribution != commerce.AttributionLive || o.GuideID == nil || *o.GuideID != "g-li" || o.StoreID == nil || *o.StoreID != "sh-1" ||
		o.TotalCents != 19800 || o.MemberID != chen.ID {
		t.Errorf("live order = %+v, want 198.00 of 陈女士 credited to g-li at sh-1 (live)", o)
	}
	lines, _ := j.s.app.Store.CommissionLines(ctx, o.ID)
	var guideCents int64
	for _, l := range lines {
		if l.Party == store.PartyGuide && l.PartyID == "g-li" {
			guideCents += l.AmountCents
		}
	}
	if guideCents <= 0 {
		t.Errorf("no commission for g-li on the live order: %+v", lines)
	}
	pts, _ := j.s.app.Store.GuidePoints(ctx, store.GuidePointsFilter{OrderID: o.ID})
	if !slices.ContainsFunc(pts, func(e store.GuidePointsEntry) bool { return e.Kind == store.GuidePointsSales && e.GuideID == "g-li" }) {
		t.Errorf("no sales points for g-li on the live order: %+v", pts)
	}
	if rs := j.runs("store-live-invite", wang.ID); len(rs) != 1 || rs[0].State != store.RunActive {
		t.Errorf("王先生's run = %+v, want still active (waiting for the end)", rs)
	}

	code, body = request(t, "GET", j.s.base+"/api/v1/live-sessions/live-0110?brand=camellia", j.tok, "")
	if code != 200 {
		t.Fatalf("the session's funnel: %d %s", code, body)
	}
	var got struct {
		Stores []store.LiveStoreFunnel `json:"stores"`
	}
	json.Unmarshal([]byte(body), &got)
	want := []store.LiveStoreFunnel{{StoreID: "sh-1", Invited: 2, Joined: 1, Bought: 1, Orders: 1, SalesCents: 19800}}
	if !slices.Equal(got.Stores, want) {
		t.Errorf("funnel = %s\nwant stores %+v", body, want)
	}
	a, err := j.s.app.Store.LiveAudienceMember(ctx, mustLive(t, j).ID, chen.ID)
	if err != nil || a.JoinedAt == nil || a.LeftAt == nil || !a.LeftAt.Equal(at.Add(20*time.Minute).UTC()) || a.GuideID != "g-li" {
		t.Errorf("陈女士 in the audience = %+v, %v", a, err)
	}
}

func mustLive(t *testing.T, j *journey) *store.LiveSession {
	t.Helper()
	l, err := j.s.app.Store.LiveSession(context.Background(), journeyBrand, "live-0110")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// activeRun is a condition: the member's active run of the live
// invitations waits at step (its wake in the future).
func (j *journey) activeRun(memberID int64, step string) func() bool {
	return func() bool {
		for _, r := range j.runs("store-live-invite", memberID) {
			if r.State == store.RunActive && r.Step == step && r.WakeAt != nil && r.WakeAt.After(j.clock.Now()) {
				return true
			}
		}
		return false
	}
}

// quiet sweeps for a while and reports the WeCom message tasks sent
// meanwhile (none, when nothing is due).
func (j *journey) quiet(since int) []wecomfake.MsgTemplateRequest {
	j.t.Helper()
	for i := 0; i < 6; i++ {
		if err := j.s.app.engine.Sweep(context.Background()); err != nil {
			j.t.Logf("sweep: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	return j.wecom.MsgTemplates()[since:]
}

// TestJourneyStoreLiveEditCancel: store sh-1's live session is moved two
// days later through the API after its invitations went out: both
// members are invited again with the new time (the exact WeCom message
// task), the day-before reminder of the old time never goes out and the
// one of the new time does. A new title (no new invitation) leaves the
// runs waiting for the 10-minute reminder; then the session is
// cancelled: live.cancelled ends both runs (exited, not converted) and
// at 10 minutes before the old start WeCom receives nothing. Cancelling
// again answers the same; editing a cancelled session is a conflict.
func TestJourneyStoreLiveEditCancel(t *testing.T) {
	start := time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai)
	j := startJourney(t, journeyChannels{wecom: true}, start)
	ctx := context.Background()
	j.enableShipped("store-live-invite")
	j.wecomJoin("wmChen", "陈女士", "138 0013 8000")
	j.wecomJoin("wmWang", "王先生", "139 0013 9000")
	waitFor(t, "both members bound", func() bool {
		for _, p := range []string{"13800138000", "13900139000"} {
			v, err := j.s.app.Store.MemberByPhone(ctx, p, journeyBrand)
			if err != nil || len(v.Bindings) == 0 {
				return false
			}
		}
		return true
	})
	chen, wang := j.memberByPhone("13800138000"), j.memberByPhone("13900139000")
	base := len(j.wecom.MsgTemplates())
	tasks := func() []wecomfake.MsgTemplateRequest { return j.wecom.MsgTemplates()[base:] }

	if code, body := request(t, "POST", j.s.base+"/api/v1/live-sessions", j.tok, liveSession); code != 201 {
		t.Fatalf("scheduling the live session: %d %s", code, body)
	}
	waitFor(t, "the two invitations", func() bool { return len(tasks()) == 2 })
	j.confirmAll()
	j.sweepUntil("both runs wait for the day before", func() bool {
		return j.activeRun(chen.ID, "wait_day_before")() && j.activeRun(wang.ID, "wait_day_before")()
	})

	// Two days later: invited again, with the new time.
	code, body := request(t, "PATCH", j.s.base+"/api/v1/live-sessions/live-0110?brand=camellia", j.tok,
		`{"starts_at":"2027-01-12T20:00:00+08:00","ends_at":"2027-01-12T21:30:00+08:00"}`)
	if code != 200 || !strings.Contains(body, `"change":"rescheduled"`) || !strings.Contains(body, `"revision":1`) {
		t.Fatalf("moving the session: %d %s", code, body)
	}
	waitFor(t, "the new invitations", func() bool { return len(tasks()) == 4 })
	wantInvite := `[{"msgtype":"link","link":{"title":"静安店直播：春季新品试用","picurl":"https://shop.example.com/static/live.png",
	  "desc":"1月12日 20:00开播，李娜邀您来看，直播专享价。","url":"https://live.example.com/s/live-0110"}}]`
	var to []string
	for _, mt := range tasks()[2:] {
		if mt.ChatType != "single" || mt.Sender != "li" || len(mt.ExternalUserIDs) != 1 {
			t.Errorf("new invitation = %+v", mt)
		}
		jsonEq(t, "the new invitation's attachments", attachmentsJSON(mt.Attachments), wantInvite)
		to = append(to, mt.ExternalUserIDs...)
	}
	slices.Sort(to)
	if !slices.Equal(to, []string{"wmChen", "wmWang"}) {
		t.Errorf("invited again %v, want wmChen and wmWang", to)
	}
	j.confirmAll()
	j.sweepUntil("the new runs wait for the new day before", func() bool {
		return j.activeRun(chen.ID, "wait_day_before")() && j.activeRun(wang.ID, "wait_day_before")()
	})
	for _, m := range []int64{chen.ID, wang.ID} {
		rs := j.runs("store-live-invite", m)
		states := map[string]int{}
		for _, r := range rs {
			states[r.State]++
		}
		if len(rs) != 2 || states[store.RunExited] != 1 || states[store.RunActive] != 1 {
			t.Errorf("member %d's runs = %+v, want the old one exited and a new one active", m, rs)
		}
	}

	// The old day before passes in silence; the new one reminds.
	j.clock.Advance(time.Date(2027, 1, 9, 20, 0, 5, 0, shanghai).Sub(j.clock.Now()))
	if sent := j.quiet(base + 4); len(sent) != 0 {
		t.Fatalf("reminders at the old time: %+v", sent)
	}
	j.advance(time.Date(2027, 1, 11, 20, 0, 5, 0, shanghai).Sub(j.clock.Now()), "the day-before reminders", func() bool { return len(tasks()) == 6 })
	wantDay := `[{"msgtype":"link","link":{"title":"明天20:00开播：春季新品试用","picurl":"https://shop.example.com/static/live.png",
	  "desc":"李娜提醒您：静安店直播明天见。","url":"https://live.example.com/s/live-0110"}}]`
	for _, mt := range tasks()[4:] {
		jsonEq(t, "the day-before reminder's attachments", attachmentsJSON(mt.Attachments), wantDay)
	}
	j.confirmAll()
	j.sweepUntil("both runs wait for 10 minutes before", func() bool {
		return j.activeRun(chen.ID, "wait_soon")() && j.activeRun(wang.ID, "wait_soon")()
	})

	// A new title: no new invitation, the runs wait for the 10 minutes.
	if code, body := request(t, "PATCH", j.s.base+"/api/v1/live-sessions/live-0110?brand=camellia", j.tok, `{"title":"春季新品试用·加场"}`); code != 200 ||
		!strings.Contains(body, `"change":"updated"`) {
		t.Fatalf("a new title: %d %s", code, body)
	}
	j.sweepUntil("the runs of the new title wait for 10 minutes before", func() bool {
		n := 0
		for _, m := range []int64{chen.ID, wang.ID} {
			if len(j.runs("store-live-invite", m)) == 3 && j.activeRun(m, "wait_soon")() {
				n++
			}
		}
		return n == 2
	})
	if sent := j.quiet(base + 6); len(sent) != 0 {
		t.Fatalf("a new title sent %+v", sent)
	}

	// Cancelled: the runs end, nothing goes out at 19:50.
	code, body = request(t, "POST", j.s.base+"/api/v1/live-sessions/live-0110/cancel?brand=camellia", j.tok, "")
	if code != 200 || !strings.Contains(body, `"cancelled_at"`) {
		t.Fatalf("cancelling: %d %s", code, body)
	}
	waitFor(t, "the runs exited", func() bool {
		for _, m := range []int64{chen.ID, wang.ID} {
			for _, r := range j.runs("store-live-invite", m) {
				if r.State == store.RunActive {
					return false
				}
			}
		}
		return true
	})
	for _, m := range []int64{chen.ID, wang.ID} {
		for _, r := range j.runs("store-live-invite", m) {
			if r.State != store.RunExited {
				t.Errorf("member %d's run %d is %s, want exited", m, r.ID, r.State)
			}
		}
	}
	j.clock.Advance(time.Date(2027, 1, 12, 19, 50, 5, 0, shanghai).Sub(j.clock.Now()))
	if sent := j.quiet(base + 6); len(sent) != 0 {
		t.Fatalf("reminders after the cancellation: %+v", sent)
	}
	if code, body := request(t, "POST", j.s.base+"/api/v1/live-sessions/live-0110/cancel?brand=camellia", j.tok, ""); code != 200 || !strings.Contains(body, `"revision":3`) {
		t.Errorf("cancelling again: %d %s", code, body)
	}
	if code, body := request(t, "PATCH", j.s.base+"/api/v1/live-sessions/live-0110?brand=camellia", j.tok, `{"title":"x"}`); code != 409 {
		t.Errorf("editing a cancelled session: %d %s, want 409", code, body)
	}
}

// TestJourneyStoreLiveLateBinding: a member who adds 李娜 after store
// sh-1's session was announced (before it starts) is invited too, once:
// the periodic sweep logs live.scheduled for them and the exact WeCom
// invitation goes out through her; sweeping again sends nothing more,
// and the funnel counts them invited. Once the session is cancelled, a
// member bound later is not invited.
func TestJourneyStoreLiveLateBinding(t *testing.T) {
	j := startJourney(t, journeyChannels{wecom: true}, time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai))
	ctx := context.Background()
	j.enableShipped("store-live-invite")
	bound := func(phones ...string) func() bool {
		return func() bool {
			for _, p := range phones {
				v, err := j.s.app.Store.MemberByPhone(ctx, p, journeyBrand)
				if err != nil || len(v.Bindings) == 0 {
					return false
				}
			}
			return true
		}
	}
	j.wecomJoin("wmChen", "陈女士", "138 0013 8000")
	waitFor(t, "陈女士 bound", bound("13800138000"))
	base := len(j.wecom.MsgTemplates())
	tasks := func() []wecomfake.MsgTemplateRequest { return j.wecom.MsgTemplates()[base:] }
	if code, body := request(t, "POST", j.s.base+"/api/v1/live-sessions", j.tok, liveSession); code != 201 {
		t.Fatalf("scheduling the live session: %d %s", code, body)
	}
	waitFor(t, "the invitation", func() bool { return len(tasks()) == 1 })
	waitFor(t, "the announcement done", func() bool { return mustLive(t, j).InvitedAt != nil })

	j.wecomJoin("wmWang", "王先生", "139 0013 9000")
	waitFor(t, "王先生 bound", bound("13900139000"))
	wang := j.memberByPhone("13900139000")
	if err := j.s.app.sweepLive(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "王先生's invitation", func() bool { return len(tasks()) == 2 })
	mt := tasks()[1]
	if mt.Sender != "li" || !slices.Equal(mt.ExternalUserIDs, []string{"wmWang"}) {
		t.Errorf("late invitation = %+v, want from li to wmWang", mt)
	}
	jsonEq(t, "the late invitation's attachments", attachmentsJSON(mt.Attachments), `[{"msgtype":"link","link":{"title":"静安店直播：春季新品试用",
	  "picurl":"https://shop.example.com/static/live.png","desc":"1月10日 20:00开播，李娜邀您来看，直播专享价。","url":"https://live.example.com/s/live-0110"}}]`)
	j.confirmAll()
	j.sweepUntil("王先生's run waits for the day before", j.activeRun(wang.ID, "wait_day_before"))
	for range 2 {
		if err := j.s.app.sweepLive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if sent := j.quiet(base + 2); len(sent) != 0 {
		t.Errorf("sweeping again sent %+v", sent)
	}
	_, body := request(t, "GET", j.s.base+"/api/v1/live-sessions/live-0110?brand=camellia", j.tok, "")
	if !strings.Contains(body, `"stores":[{"store_id":"sh-1","invited":2,`) {
		t.Errorf("funnel = %s, want 2 invited at sh-1", body)
	}

	// Cancelled: a member bound since is not invited.
	if code, body := request(t, "POST", j.s.base+"/api/v1/live-sessions/live-0110/cancel?brand=camellia", j.tok, ""); code != 200 {
		t.Fatalf("cancelling: %d %s", code, body)
	}
	waitFor(t, "the cancellation announced", func() bool { return mustLive(t, j).InvitedAt != nil })
	j.wecomJoin("wmZhao", "赵女士", "137 0013 7000")
	waitFor(t, "赵女士 bound", bound("13700137000"))
	if err := j.s.app.sweepLive(ctx); err != nil {
		t.Fatal(err)
	}
	if sent := j.quiet(base + 2); len(sent) != 0 {
		t.Errorf("a member bound after the cancellation was invited: %+v", sent)
	}
	if rs := j.runs("store-live-invite", j.memberByPhone("13700137000").ID); len(rs) != 0 {
		t.Errorf("赵女士's runs = %+v, want none", rs)
	}
}

// invitedPending schedules live-0110 for 陈女士 and 王先生, both added 李娜
// on WeCom, and waits for their invitations: message tasks sent, waiting
// for 李娜. It returns each member's task msgid by external_userid and
// a reader of a member's invitation in the outbox.
func invitedPending(t *testing.T) (j *journey, chen, wang *store.MemberView, msgOf map[string]string, invite func(int64) *store.OutboxMessage) {
	start := time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai)
	j = startJourney(t, journeyChannels{wecom: true}, start)
	ctx := context.Background()
	j.enableShipped("store-live-invite")
	j.wecomJoin("wmChen", "陈女士", "138 0013 8000")
	j.wecomJoin("wmWang", "王先生", "139 0013 9000")
	waitFor(t, "both members bound", func() bool {
		for _, p := range []string{"13800138000", "13900139000"} {
			v, err := j.s.app.Store.MemberByPhone(ctx, p, journeyBrand)
			if err != nil || len(v.Bindings) == 0 {
				return false
			}
		}
		return true
	})
	chen, wang = j.memberByPhone("13800138000"), j.memberByPhone("13900139000")
	base := len(j.wecom.MsgTemplates())
	if code, body := request(t, "POST", j.s.base+"/api/v1/live-sessions", j.tok, liveSession); code != 201 {
		t.Fatalf("scheduling the live session: %d %s", code, body)
	}
	waitFor(t, "the two invitations", func() bool { return len(j.wecom.MsgTemplates()) == base+2 })
	msgOf = map[string]string{}
	for _, mt := range j.wecom.MsgTemplates()[base:] {
		msgOf[mt.ExternalUserIDs[0]] = mt.MsgID
	}
	invite = func(m int64) *store.OutboxMessage {
		rs := j.runs("store-live-invite", m)
		if len(rs) != 1 {
			t.Fatalf("member %d has %d runs", m, len(rs))
		}
		row, err := j.s.app.Store.OutboxByKey(ctx, fmt.Sprintf("wf:%d:invite:1", rs[0].ID))
		if err != nil {
			t.Fatal(err)
		}
		return row
	}
	waitFor(t, "both invitations sent, pending", func() bool {
		return invite(chen.ID).Delivery == "pending" && invite(wang.ID).Delivery == "pending"
	})
	return j, chen, wang, msgOf, invite
}

// TestJourneyStoreLiveCancelWithdraws: a session is cancelled while one
// member's invitation still waits for 李娜 to send it. The gateway stops
// that message task at WeCom (cancel_groupmsg_send with its msgid: her
// WeCom no longer offers it) and records the invitation withdrawn; the
// invitation she had sent stays delivered.
func TestJourneyStoreLiveCancelWithdraws(t *testing.T) {
	j, chen, wang, msgOf, invite := invitedPending(t)
	j.wecom.ConfirmMsgTemplate(msgOf["wmWang"]) // 王先生's went out

	code, body := request(t, "POST", j.s.base+"/api/v1/live-sessions/live-0110/cancel?brand=camellia", j.tok, "")
	if code != 200 {
		t.Fatalf("cancelling: %d %s", code, body)
	}
	waitFor(t, "陈女士's invitation withdrawn", func() bool { return invite(chen.ID).Delivery == "failed" })
	if row := invite(chen.ID); row.DeliveryDetail != "withdrawn: exit: live.cancelled" || row.ExternalID != msgOf["wmChen"] {
		t.Errorf("陈女士's invitation: %q %q (task %s), want withdrawn at the exit", row.Delivery, row.DeliveryDetail, row.ExternalID)
	}
	if !slices.Contains(j.wecom.MsgTemplateStops(), msgOf["wmChen"]) {
		t.Errorf("WeCom stopped %v, want 陈女士's task %s", j.wecom.MsgTemplateStops(), msgOf["wmChen"])
	}
	waitFor(t, "王先生's invitation delivered", func() bool { return invite(wang.ID).Delivery == "delivered" })
}

// TestJourneyEraseWithdrawsTasks: 陈女士 is erased (POST
// /members/{id}/erase) while her invitation waits for 李娜: the erasure
// says it withdrew one send, the task is stopped at WeCom with its msgid
// (only hers), and her invitation is recorded withdrawn, never
// delivered, even when a delivery check comes after.
func TestJourneyEraseWithdrawsTasks(t *testing.T) {
	j, chen, wang, msgOf, invite := invitedPending(t)
	row := invite(chen.ID)
	code, body := request(t, "POST", fmt.Sprintf("%s/api/v1/members/%d/erase", j.s.base, chen.ID), j.tok, "")
	if code != 200 || !strings.Contains(body, `"outbox_withdrawn":1`) {
		t.Fatalf("erasing 陈女士: %d %s", code, body)
	}
	waitFor(t, "陈女士's task stopped at WeCom", func() bool { return len(j.wecom.MsgTemplateStops()) > 0 })
	if got := j.wecom.MsgTemplateStops(); !slices.Equal(got, []string{msgOf["wmChen"]}) {
		t.Errorf("WeCom stopped %v, want only 陈女士's task %s", got, msgOf["wmChen"])
	}
	// Its delivery check comes: the emptied payload names no recipient
	// to look for, and the send stays withdrawn.
	j.wecom.ConfirmMsgTemplate(msgOf["wmChen"])
	check := asynq.NewTask(outbox.TypeCheckDelivery, fmt.Appendf(nil, `{"id":%d,"n":0}`, row.ID))
	if err := j.s.app.sender.CheckTask(context.Background(), check); err != nil {
		t.Fatal(err)
	}
	got, err := j.s.app.Store.Outbox(context.Background(), row.ID)
	if err != nil || got.Delivery != "failed" || got.DeliveryDetail != store.ErasedWithdrawn {
		t.Errorf("陈女士's invitation after the erasure: %+v, %v; want failed, %q", got, err, store.ErasedWithdrawn)
	}
	if got := invite(wang.ID); got.Delivery != "pending" {
		t.Errorf("王先生's invitation: %q, want still pending", got.Delivery)
	}
}
