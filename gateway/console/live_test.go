package console_test

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/gateway/console"
	"github.com/scrmgw/scrmgw/store"
)

// liveRecorder schedules and cancels sessions by recording them (the
// gateway also queues their announcement).
type liveRecorder struct{ s *store.Store }

func (r liveRecorder) ScheduleLive(ctx context.Context, l *store.LiveSession) (bool, error) {
	return r.s.CreateLiveSession(ctx, l)
}

func (r liveRecorder) EditLive(ctx context.Context, brand, id string, e store.LiveEdit) (*store.LiveSession, error) {
	return r.s.UpdateLiveSession(ctx, brand, id, e, time.Now())
}

func (r liveRecorder) CancelLive(ctx context.Context, brand, id string) (*store.LiveSession, bool, error) {
	return r.s.CancelLiveSession(ctx, brand, id, time.Now())
}

var liveRowRE = regexp.MustCompile(`(?s)<tr data-live="([^"]+)"[^>]*>(.*?)</tr>`)

// seedLive gives camellia a session at Jing'an announced to two members,
// one of whom joined and bought for 199.00, and peony one of its own.
func (r *rig) seedLive() {
	r.t.Helper()
	ctx := context.Background()
	starts := time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC)
	var ids []int64
	for _, s := range []store.LiveSession{
		{Key: "live-a", BrandID: "camellia", StoreID: "sh-jingan", Title: "Spring launch", URL: "https://live.example.com/a", StartsAt: starts, EndsAt: starts.Add(90 * time.Minute)},
		{Key: "live-p", BrandID: "peony", Title: "Peony secret sale", URL: "https://live.example.com/p", StartsAt: starts, EndsAt: starts.Add(time.Hour)},
	} {
		if _, err := r.store.CreateLiveSession(ctx, &s); err != nil {
			r.t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	at := starts.Add(-48 * time.Hour)
	joined, ordered := starts.Add(5*time.Minute), starts.Add(20*time.Minute)
	for i, a := range []store.LiveAudience{
		{SessionID: ids[0], MemberID: 101, BrandID: "camellia", StoreID: "sh-jingan", GuideID: "g-li", InvitedAt: &at, JoinedAt: &joined, OrderedAt: &ordered},
		{SessionID: ids[0], MemberID: 102, BrandID: "camellia", StoreID: "sh-jingan", GuideID: "g-li", InvitedAt: &at},
		{SessionID: ids[1], MemberID: 201, BrandID: "peony", StoreID: "bj-sanlitun", InvitedAt: &at},
	} {
		if _, err := r.store.EnsureLiveAudience(ctx, &a); err != nil {
			r.t.Fatalf("audience %d: %v", i, err)
		}
	}
	if err := r.store.RecordLiveOrder(ctx, &store.LiveOrder{OrderID: 9001, SessionID: ids[0], MemberID: 101, StoreID: "sh-jingan", GuideID: "g-li", TotalCents: 19900}); err != nil {
		r.t.Fatal(err)
	}
}

// The live page: a brand's sessions with their funnel and nothing of
// another brand's; the schedule form (CSRF, the fields' faults named,
// times read in the console's zone) records a session for the token's
// brand only; cancelling one marks it and takes its cancel button away.
func TestConsoleLive(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) { testLive(t, dialect) })
	}
}

func testLive(t *testing.T, dialect string) {
	r := newRig(t, dialect, console.Config{})
	r.seedStores()
	r.seedLive()
	ctx := context.Background()

	c := r.english()
	r.signIn(c, r.brandToken("camellia"))
	page := r.get(c, "/console/live")
	rows := rowsOf(liveRowRE, page)
	if want := "Spring launch live-a https://live.example.com/a Jing'an Flagship 2027-01-10 20:00 – 2027-01-10 21:30 Inviting… 2 1 1 1 199.00 Cancel"; rows["live-a"] != want {
		t.Errorf("live-a's row %q, want %q", rows["live-a"], want)
	}
	if len(rows) != 1 || strings.Contains(page, "Peony secret sale") {
		t.Errorf("camellia's live page shows another brand's sessions: %v", rows)
	}
	if !strings.Contains(page, `href="/console/live"`) || !strings.Contains(page, `id="schedule-form"`) {
		t.Errorf("no Live nav entry or schedule form:\n%s", page)
	}
	if resp := mustGet(t, c, r.srv.URL+"/console/live?brand=peony"); resp.StatusCode != 404 {
		t.Errorf("another brand's live page: %d, want 404", resp.StatusCode)
	}

	csrf := csrfRE.FindStringSubmatch(page)[1]
	form := func(set map[string]string) url.Values {
		v := url.Values{"csrf_token": {csrf}, "id": {"live-b"}, "store_id": {"sh-xujiahui"}, "title": {"Winter clearance"},
			"url": {"https://live.example.com/b"}, "starts_at": {"2027-01-20T19:30"}, "ends_at": {"2027-01-20T21:00"}}
		for k, x := range set {
			v.Set(k, x)
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		set    map[string]string
		status int
		want   string
	}{
		{"no CSRF token", map[string]string{"csrf_token": ""}, 403, ""},
		{"an end before the start", map[string]string{"ends_at": "2027-01-20T19:00"}, 422, "ends_at: must be after starts_at"},
		{"not a time", map[string]string{"starts_at": "tomorrow"}, 422, "Not a date and time: starts_at"},
		{"a URL that is none", map[string]string{"url": "javascript:alert(1)"}, 422, "url: want an http(s) URL"},
		{"another brand's store", map[string]string{"store_id": "bj-sanlitun"}, 422, "store_id: no store of brand camellia"},
		{"another brand", map[string]string{"brand": "peony"}, 404, ""},
		{"the id of another session", map[string]string{"id": "live-a"}, 409, "A session with id live-a already exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := r.post(c, "/console/live", form(tc.set))
			body := readAll(t, resp)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("%d, want %d with %q:\n%s", resp.StatusCode, tc.status, tc.want, body)
			}
			if tc.status == 422 && !strings.Contains(body, `value="Winter clearance"`) {
				t.Errorf("the form lost what was typed")
			}
		})
	}
	if _, err := r.store.LiveSession(ctx, "camellia", "live-b"); err == nil {
		t.Fatal("a refused form recorded the session")
	}
	if _, err := r.store.LiveSession(ctx, "peony", "live-b"); err == nil {
		t.Fatal("camellia's token scheduled a session for peony")
	}
	resp := r.post(c, "/console/live", form(nil))
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || loc != "/console/live?id=live-b&notice=scheduled" {
		t.Fatalf("scheduling: %d to %q", resp.StatusCode, loc)
	}
	l, err := r.store.LiveSession(ctx, "camellia", "live-b")
	if err != nil || l.StoreID != "sh-xujiahui" || !l.StartsAt.Equal(time.Date(2027, 1, 20, 11, 30, 0, 0, time.UTC)) || l.Title != "Winter clearance" {
		t.Fatalf("scheduled %+v, %v", l, err)
	}
	page = r.get(c, "/console/live?id=live-b&notice=scheduled")
	if !strings.Contains(page, "Session live-b scheduled") || !strings.Contains(rowsOf(liveRowRE, page)["live-b"], "Xujiahui Mall 2027-01-20 19:30") {
		t.Errorf("after scheduling:\n%s", page)
	}

	resp = r.post(c, "/console/live/live-a/cancel", url.Values{"csrf_token": {csrf}})
	resp.Body.Close()
	if resp.StatusCode != 303 {
		t.Fatalf("cancelling: %d", resp.StatusCode)
	}
	if l, _ := r.store.LiveSession(ctx, "camellia", "live-a"); l.CancelledAt == nil {
		t.Error("live-a was not cancelled")
	}
	if resp := r.post(c, "/console/live/live-p/cancel", url.Values{"csrf_token": {csrf}}); resp.StatusCode != 404 {
		t.Errorf("cancelling another brand's session: %d, want 404", resp.StatusCode)
	}
	if l, _ := r.store.LiveSession(ctx, "peony", "live-p"); l.CancelledAt != nil {
		t.Error("camellia's token cancelled peony's session")
	}
	row := rowsOf(liveRowRE, r.get(c, "/console/live"))["live-a"]
	if !strings.Contains(row, "Cancelled") || strings.Contains(row, "Cancel ") || strings.HasSuffix(row, "Cancel") {
		t.Errorf("live-a after the cancellation: %q", row)
	}

	// The admin picks the brand; the page is in Chinese by default.
	a := r.client()
	r.signIn(a, adminToken)
	zh := r.get(a, "/console/live?brand=peony")
	if !strings.Contains(zh, "门店直播") || !strings.Contains(zh, "Peony secret sale") || strings.Contains(zh, "Spring launch") {
		t.Errorf("the admin's peony page:\n%s", zh)
	}
}
