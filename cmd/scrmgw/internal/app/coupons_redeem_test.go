package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/gateway/membercode"
	"github.com/scrmgw/scrmgw/store"
)

// couponNudge gives a new member a coupon through their guide; the
// coupon's redemption at the till is the goal.
const couponNudge = `name: coupon-nudge
trigger:
  event: member.joined
entry:
  brand: camellia
goal: coupon.redeemed
steps:
  - id: coupon
    send: first_purchase_coupon
    coupon: NEW-MEMBER-50
  - id: wait_7d
    wait: 7d
`

// TestJourneyCouponRedeemedWeCom: a member who adds guide 李娜 gets a
// coupon through her (a WeCom message task); at the till the POS
// identifies the member, sees the coupon and redeems it (POST
// /coupons/redeem): the run converts (goal coupon.redeemed), the
// redemption and its coupon.redeemed are credited to 李娜 and the
// workflow, and the funnel counts it. Redeeming again for the order
// answers the same; another order is refused without naming anyone; the
// till no longer offers the coupon. A partial refund keeps it redeemed;
// the order refunded in full gives the coupon back (coupon.unredeemed);
// the POS then redeems it on another
// order as a signed CloudEvent, once however often it is sent.
func TestJourneyCouponRedeemedWeCom(t *testing.T) {
	start := time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai)
	j := startJourney(t, journeyChannels{wecom: true}, start)
	ctx := context.Background()
	code, body := request(t, "PUT", j.s.base+"/api/v1/workflows/coupon-nudge?brand="+journeyBrand, j.tok, couponNudge)
	if code != 201 {
		t.Fatalf("PUT coupon-nudge: %d %s", code, body)
	}
	if code, body := request(t, "POST", j.s.base+"/api/v1/workflows/coupon-nudge/enable?brand="+journeyBrand, j.tok, ""); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}
	j.wecomJoin("wmChen", "陈女士", "138 0013 8000")
	waitFor(t, "the member", func() bool {
		_, err := j.s.app.Store.MemberByPhone(ctx, "13800138000", journeyBrand)
		return err == nil
	})
	m := j.memberByPhone("13800138000")
	waitFor(t, "the coupon message task", func() bool { return len(j.wecom.MsgTemplates()) > 0 })
	c := j.coupon(m.ID, "NEW-MEMBER-50")
	if mt := j.wecom.MsgTemplates()[0]; mt.Sender != "li" || len(mt.Attachments) != 1 || !strings.Contains(mt.Attachments[0].Link.URL, c.Code) {
		t.Errorf("coupon message task = from %q with %s, want from li with the coupon %s", mt.Sender, attachmentsJSON(mt.Attachments), c.Code)
	}
	if c.GuideID != "g-li" || c.Workflow != "coupon-nudge" || c.RunID == nil {
		t.Errorf("issued coupon attribution = guide %q, workflow %q, run %v", c.GuideID, c.Workflow, c.RunID)
	}
	j.confirmAll()

	// The till: a brand token, the member code, the coupon offered.
	_, body = request(t, "POST", j.s.base+"/api/v1/tokens", j.tok, `{"name":"camellia pos","brand":"camellia"}`)
	var pos struct{ Token string }
	json.Unmarshal([]byte(body), &pos)
	identify := func() string {
		t.Helper()
		mc, _, err := membercode.New(j.s.app.Store, nil).MemberCode(ctx, m.ID, journeyBrand)
		if err != nil {
			t.Fatal(err)
		}
		code, body := request(t, "POST", j.s.base+"/api/v1/pos/identify", pos.Token, `{"code":"`+mc+`"}`)
		if code != 200 {
			t.Fatalf("identify: %d %s", code, body)
		}
		return body
	}
	if b := identify(); !strings.Contains(b, `"code":"`+c.Code+`"`) {
		t.Fatalf("identify before the redemption does not offer %s: %s", c.Code, b)
	}
	redeem := func(order string) (int, string) {
		return request(t, "POST", j.s.base+"/api/v1/coupons/redeem", pos.Token,
			fmt.Sprintf(`{"code":%q,"order_id":%q,"store_id":"sh-1"}`, c.Code, order))
	}
	code, body = redeem("SO-9001")
	var red struct {
		ID       int64  `json:"id"`
		OrderID  string `json:"order_id"`
		GuideID  string `json:"guide_id"`
		Workflow string `json:"workflow"`
		Value    int64  `json:"value_cents"`
	}
	json.Unmarshal([]byte(body), &red)
	if code != 201 || red.OrderID != "SO-9001" || red.GuideID != "g-li" || red.Workflow != "coupon-nudge" || red.Value != 5000 {
		t.Fatalf("redeem: %d %s", code, body)
	}
	waitFor(t, "the run converted", func() bool {
		rs := j.runs("coupon-nudge", m.ID)
		return len(rs) == 1 && rs[0].State == store.RunConverted
	})
	if rs := j.runs("coupon-nudge", m.ID); rs[0].EndReason != "goal: coupon.redeemed" || rs[0].ID != *c.RunID {
		t.Errorf("run %d ended %q, want the coupon's run %d by goal: coupon.redeemed", rs[0].ID, rs[0].EndReason, *c.RunID)
	}
	st, _ := j.stats("coupon-nudge")
	if st.Converted != 1 || st.Coupons != (store.CouponCounts{Issued: 1, Redeemed: 1}) {
		t.Errorf("funnel: converted %d, coupons %+v; want 1 converted, 1 of 1 coupon redeemed", st.Converted, st.Coupons)
	}
	logged := j.couponEvents(m.ID, events.TypeCouponRedeemed)
	if len(logged) != 1 || logged[0]["guide_id"] != "g-li" || logged[0]["workflow"] != "coupon-nudge" || logged[0]["order_id"] != "SO-9001" ||
		logged[0]["run_id"] != itoa(*c.RunID) {
		t.Errorf("coupon.redeemed logged = %v", logged)
	}

	// Again for the same order: the same redemption. Another order: 409,
	// naming nothing of the first. The till no longer offers it.
	if code, body := redeem("SO-9001"); code != 200 || !strings.Contains(body, fmt.Sprintf(`"id":%d`, red.ID)) {
		t.Errorf("redeem again: %d %s", code, body)
	}
	code, body = redeem("SO-9002")
	if code != 409 || !strings.Contains(body, `"code":"coupon_redeemed"`) || !strings.Contains(body, `"field":"code"`) ||
		strings.Contains(body, "SO-9001") || strings.Contains(body, "陈") || strings.Contains(body, "8000") || strings.Contains(body, itoa(m.ID)) {
		t.Errorf("redeem on another order: %d %s", code, body)
	}
	if b := identify(); strings.Contains(b, c.Code) {
		t.Errorf("identify offers the redeemed coupon: %s", b)
	}
	if n := len(j.couponEvents(m.ID, events.TypeCouponRedeemed)); n != 1 {
		t.Errorf("%d coupon.redeemed logged after the repeats, want 1", n)
	}
	// 李娜, whose message carried the coupon, earns its points once.
	waitFor(t, "李娜's coupon points", func() bool { return j.couponPoints() == 5 })

	// Another member's order: 422, naming no one.
	j.event("p-other", purchase("p-other", "13900139000", "SO-OTHER", j.clock.Now().Truncate(time.Second)))
	waitFor(t, "the other member's order", func() bool { _, err := j.s.app.Store.OrderByNo(ctx, journeyBrand, "SO-OTHER"); return err == nil })
	code, body = request(t, "POST", j.s.base+"/api/v1/coupons/redeem", pos.Token, fmt.Sprintf(`{"code":%q,"order_id":"SO-OTHER"}`, c.Code))
	if code != 422 || !strings.Contains(body, `"code":"coupon_member_mismatch"`) || !strings.Contains(body, `"field":"code"`) || strings.Contains(body, "陈") {
		t.Errorf("redeem on another member's order: %d %s", code, body)
	}

	// The order, then its refund in full: the coupon comes back.
	now := j.clock.Now().Truncate(time.Second)
	j.event("p-9001", purchase("p-9001", "13800138000", "SO-9001", now))
	waitFor(t, "the order", func() bool { _, err := j.s.app.Store.OrderByNo(ctx, journeyBrand, "SO-9001"); return err == nil })
	// The bag alone comes back: the coupon stays redeemed.
	j.event("r-9000", `{"specversion":"1.0","id":"r-9000","source":"/pos/sh-1","type":"purchase.refunded","brand":"camellia",
	  "data":{"member":{"phone":"13800138000"},"order_id":"SO-9001","refund_id":"RF-9000","items":[{"sku":"BG-1","qty":1}]}}`)
	waitFor(t, "the partial refund", func() bool {
		o, err := j.s.app.Store.OrderByNo(ctx, journeyBrand, "SO-9001")
		return err == nil && o.RefundedCents == 5900
	})
	j.settle()
	if n := len(j.couponEvents(m.ID, events.TypeCouponUnredeemed)); n != 0 {
		t.Errorf("a partial refund gave the coupon back (%d coupon.unredeemed)", n)
	}
	// The rest: the order is refunded in full.
	j.event("r-9001", `{"specversion":"1.0","id":"r-9001","source":"/pos/sh-1","type":"purchase.refunded","brand":"camellia",
	  "data":{"member":{"phone":"13800138000"},"order_id":"SO-9001","refund_id":"RF-9001"}}`)
	waitFor(t, "coupon.unredeemed", func() bool { return len(j.couponEvents(m.ID, events.TypeCouponUnredeemed)) == 1 })
	if un := j.couponEvents(m.ID, events.TypeCouponUnredeemed)[0]; un["refund_id"] != "RF-9001" || un["guide_id"] != "g-li" {
		t.Errorf("coupon.unredeemed = %v", un)
	}
	waitFor(t, "李娜's coupon points taken back", func() bool { return j.couponPoints() == 0 })
	if b := identify(); !strings.Contains(b, c.Code) {
		t.Errorf("identify after the refund does not offer the coupon again: %s", b)
	}

	// The POS redeems it on another order as a CloudEvent, sent twice
	// and once more under another id: one redemption.
	ce := func(id string) string {
		return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/pos/sh-1","type":"coupon.redeemed","brand":"camellia",
		  "data":{"code":%q,"order_id":"SO-9003","store":"sh-1"}}`, id, c.Code)
	}
	j.event("cr-1", ce("cr-1"))
	j.event("cr-1", ce("cr-1"))
	j.event("cr-2", ce("cr-2"))
	waitFor(t, "the CloudEvent's redemption", func() bool {
		reds, _ := j.s.app.Store.OrderRedemptions(ctx, journeyBrand, "SO-9003")
		return len(reds) == 1
	})
	j.settle()
	reds, _ := j.s.app.Store.OrderRedemptions(ctx, journeyBrand, "SO-9003")
	if len(reds) != 1 || reds[0].GuideID != "g-li" || reds[0].StoreID != "sh-1" || reds[0].UnredeemedAt != nil {
		t.Errorf("redemptions of SO-9003 = %+v", reds)
	}
	if n := len(j.couponEvents(m.ID, events.TypeCouponRedeemed)); n != 2 {
		t.Errorf("%d coupon.redeemed logged, want 2 (SO-9001, SO-9003)", n)
	}
	if code, body := redeem("SO-9004"); code != 409 {
		t.Errorf("redeem after the CloudEvent's redemption: %d %s", code, body)
	}
}

// couponEvents returns the payloads of the member's logged events of typ.
func (j *journey) couponEvents(memberID int64, typ string) []map[string]any {
	j.t.Helper()
	evs, err := j.s.app.Store.Events(context.Background(), store.EventFilter{MemberID: memberID, Type: typ})
	if err != nil {
		j.t.Fatal(err)
	}
	var out []map[string]any
	for _, e := range evs {
		var p map[string]any
		json.Unmarshal([]byte(e.Payload), &p)
		out = append(out, p)
	}
	return out
}

// couponPoints sums 李娜's coupon_redeemed points and their clawbacks.
func (j *journey) couponPoints() int64 {
	j.t.Helper()
	es, err := j.s.app.Store.GuidePoints(context.Background(), store.GuidePointsFilter{GuideID: "g-li"})
	if err != nil {
		j.t.Fatal(err)
	}
	var n int64
	for _, e := range es {
		if e.Kind == store.GuidePointsCoupon || strings.HasPrefix(e.Key, "uncoupon:") {
			n += e.Points
		}
	}
	return n
}
