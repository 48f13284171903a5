package app

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store"
)

// TestWeComContactWorkWithRedis: what a new contact's handling writes
// and says with its reads cut (docs/performance-surge.md, "The contact's
// own work"). A member adds guide li (a signed add_external_contact
// callback): the welcome WeCom got names the guide, store and brand as
// they are; the guide points ledger credits li's binding (its store,
// month and reason) though the ledger no longer reads it; the member's
// last inbound time on WeCom is the callback's CreateTime, recorded by
// the member's write. Then the operator renames the brand, the store
// (and its address and hours) and the guide: the next contact's welcome
// says the new names (nothing is cached across contacts).
func TestWeComContactWorkWithRedis(t *testing.T) {
	s, fake, tok := startWithWeCom(t)
	ctx := context.Background()
	put := func(path, body string) {
		t.Helper()
		if code, resp := request(t, "PUT", s.base+path, tok, body); code != 200 {
			t.Fatalf("PUT %s: %d %s", path, code, resp)
		}
	}
	put("/api/v1/stores/sh-1", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47,
	  "address":"南京西路1601号","opening_hours":"10:00-22:00"}`)
	join := func(externalID, name string) (string, time.Time) {
		t.Helper()
		fake.AddContact(wecomfake.Contact{ExternalUserID: externalID, Name: name, FollowUsers: []wecom.FollowUser{{UserID: "li"}}})
		code := fake.IssueWelcomeCode(externalID)
		ev := wecomfake.AddExternalContact("li", externalID, "", code)
		ev.CreateTime = time.Now().Truncate(time.Second)
		if status, body := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 || body != "success" {
			t.Fatalf("add_external_contact %s: %d %q", externalID, status, body)
		}
		return code, ev.CreateTime
	}
	welcomeTo := func(n int, code, externalID, want string) {
		t.Helper()
		waitFor(t, "welcome "+strconv.Itoa(n), func() bool { return len(fake.Welcomes()) >= n })
		w := fake.Welcomes()[n-1]
		if w.WelcomeCode != code || w.ExternalUserID != externalID || w.Text != want || len(w.Attachments) != 0 {
			t.Errorf("welcome %d = code %s to %s: %q with %d attachments\nwant code %s to %s: %q", n, w.WelcomeCode, w.ExternalUserID, w.Text,
				len(w.Attachments), code, externalID, want)
		}
	}

	code, at := join("wmChen", "陈女士")
	welcomeTo(1, code, "wmChen", "陈女士好！我是ACME静安店的导购李娜，很高兴认识您。\n"+
		"门店地址：南京西路1601号\n"+
		"营业时间：10:00-22:00\n"+
		"新品、尺码、售后，随时在这里找我。")
	v, err := s.app.Store.MemberByIdentity(ctx, "wecom", "wmChen")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Bindings) != 1 || v.Bindings[0].GuideID != "g-li" || v.Bindings[0].StoreID != "sh-1" || v.Bindings[0].Reason != "contact" {
		t.Fatalf("bindings = %+v, want g-li of sh-1 (contact)", v.Bindings)
	}
	b := v.Bindings[0]
	var last *time.Time
	for _, id := range v.Identities {
		if id.Channel == "wecom" {
			last = id.LastInboundAt
		}
	}
	if last == nil || !last.Equal(at) {
		t.Errorf("wecom identity's last inbound = %v, want the callback's CreateTime %v", last, at)
	}

	// The ledger: li earns the binding once, in its month, at its store.
	var entries []store.GuidePointsEntry
	waitFor(t, "li's points for the binding", func() bool {
		entries, err = s.app.Store.GuidePoints(ctx, store.GuidePointsFilter{GuideID: "g-li"})
		return err == nil && len(entries) > 0
	})
	e := entries[0]
	wantKey := "bound:acme:" + strconv.FormatInt(v.ID, 10) + ":g-li"
	month := b.CreatedAt.In(s.app.guidePoints.Location).Format("2006-01")
	if len(entries) != 1 || e.Key != wantKey || e.Kind != store.GuidePointsBound || e.BrandID != "acme" || e.StoreID != "sh-1" ||
		e.MemberID != v.ID || e.Points <= 0 || e.Month != month || !e.EarnedAt.Equal(b.CreatedAt) || e.Rule != "member_bound contact" {
		t.Errorf("li's entries = %+v\nwant one %s for store sh-1, member %d, month %s, earned at the binding's %v, rule member_bound contact",
			entries, wantKey, v.ID, month, b.CreatedAt)
	}

	// Renamed: the next welcome says the new names.
	put("/api/v1/brands/acme", `{"id":"acme","name":"ACME 中国"}`)
	put("/api/v1/stores/sh-1", `{"id":"sh-1","name":"静安旗舰店","brands":["acme"],"lat":31.23,"lng":121.47,
	  "address":"南京西路1618号","opening_hours":"10:00-21:30"}`)
	put("/api/v1/guides/g-li", `{"id":"g-li","store_id":"sh-1","name":"李娜娜","wecom_userid":"li"}`)
	code, _ = join("wmWang", "王先生")
	welcomeTo(2, code, "wmWang", "王先生好！我是ACME 中国静安旗舰店的导购李娜娜，很高兴认识您。\n"+
		"门店地址：南京西路1618号\n"+
		"营业时间：10:00-21:30\n"+
		"新品、尺码、售后，随时在这里找我。")
}
