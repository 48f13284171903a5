package workflows

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/scrmgw/scrmgw/events"
)

// TestExamples loads every workflow shipped in configs/workflows against
// the shipped templates, so the examples never rot.
func TestExamples(t *testing.T) {
	reg := testTemplates(t)
	files, err := filepath.Glob("../configs/workflows/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("want at least 3 example workflows, found %d", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			w, err := LoadFile(f, Options{Templates: reg})
			if err != nil {
				t.Fatalf("\n%v", err)
			}
			if len(w.Version) != 16 || w.Name+".yaml" != filepath.Base(f) {
				t.Errorf("version %q, name %q", w.Version, w.Name)
			}
		})
	}
}

func loadExample(t *testing.T, name string) *Workflow {
	t.Helper()
	w, err := LoadFile("../configs/workflows/"+name+".yaml", Options{Templates: testTemplates(t)})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// graphOf lists every step's transitions: "id kind: label→to, ...".
func graphOf(w *Workflow) []string {
	var lines []string
	for _, s := range w.Steps {
		var ts []string
		for _, tr := range s.Transitions() {
			ts = append(ts, tr.Label+"→"+tr.To)
		}
		lines = append(lines, s.ID+" "+string(s.Kind)+": "+strings.Join(ts, ", "))
	}
	return lines
}

func TestWelcomeExample(t *testing.T) {
	w := loadExample(t, "new-member-welcome")
	want := []string{
		"assign assign_guide: next→say_hello",
		"say_hello guide_task: next→wait_3d",
		"wait_3d wait: next→not_bought_yet",
		"not_bought_yet if: then→coupon, else→end",
		"coupon send: next→wait_27d",
		"wait_27d wait: next→recall",
		"recall send: next→done",
		"done end: ",
	}
	if diff := cmp.Diff(want, graphOf(w)); diff != "" {
		t.Errorf("graph (-want +got):\n%s", diff)
	}
	s, _ := w.Step("wait_3d")
	if s.Wait.For != 3*Day {
		t.Errorf("wait_3d waits %v", s.Wait.For)
	}
	s, _ = w.Step("recall")
	if s.Send.Via != ViaGuide || s.Send.Channel != ChannelMember {
		t.Errorf("recall send: %+v", s.Send)
	}
	s, _ = w.Step("coupon")
	if s.Send.Coupon != "NEW-MEMBER-50" {
		t.Errorf("coupon batch %q", s.Send.Coupon)
	}
	// A new member who has not bought takes then; one who has, else.
	s, _ = w.Step("not_bought_yet")
	for orders, want := range map[int]bool{0: true, 1: false} {
		got, err := s.If.Cond.Bool(&Env{Member: Member{Orders: orders}})
		if err != nil || got != want {
			t.Errorf("orders=%d: got %v, %v", orders, got, err)
		}
	}
	s, _ = w.Step("say_hello")
	if s.GuideTask.DueIn != Day || s.GuideTask.Title == nil || s.GuideTask.Note == nil {
		t.Errorf("guide task: %+v", s.GuideTask)
	}
	if len(w.Goals) != 1 || w.Goals[0].Event != events.TypePurchaseCompleted {
		t.Errorf("goals: %+v", w.Goals)
	}
	if w.Entry.ReEntry.Policy != ReEntryNever || w.Entry.Brand != "camellia" {
		t.Errorf("entry: %+v", w.Entry)
	}
}

func TestRepurchaseExample(t *testing.T) {
	w := loadExample(t, "repurchase-replenishment")
	bought := time.Date(2024, 5, 2, 14, 0, 0, 0, time.UTC)
	env := &Env{Order: events.Order{
		PurchasedAt: bought,
		Items: []events.Item{
			{SKU: "bag", CycleDays: 0},
			{SKU: "cleanser", CycleDays: 30},
			{SKU: "toner", CycleDays: 60},
		},
	}}
	ok, err := w.Trigger.Matches(events.TypePurchaseCompleted, env)
	if err != nil || !ok {
		t.Fatalf("trigger: %v, %v", ok, err)
	}
	if ok, _ := w.Trigger.Matches(events.TypePurchaseCompleted, &Env{Order: events.Order{Items: []events.Item{{SKU: "bag"}}}}); ok {
		t.Error("an order without replenishable items started a run")
	}
	s, _ := w.Step("wait_refill")
	at, err := s.Wait.Until.Time(env)
	if err != nil {
		t.Fatal(err)
	}
	// Three days before the cleanser (the shortest cycle) runs out.
	if want := bought.Add(27 * Day); !at.Equal(want) {
		t.Errorf("wakes at %v, want %v", at, want)
	}
	if w.Entry.ReEntry.Policy != ReEntryAlways {
		t.Errorf("re-entry %+v", w.Entry.ReEntry)
	}
	if ok, _ := w.Goals[0].Matches(events.TypePurchaseCompleted, &Env{Order: events.Order{Total: 88}}); !ok {
		t.Error("a purchase did not reach the goal")
	}
	if ok, _ := w.Goals[0].Matches(events.TypeMessageReceived, &Env{}); ok {
		t.Error("a message reached the goal")
	}
}

func TestWinBackExample(t *testing.T) {
	w := loadExample(t, "dormant-win-back")
	sched := w.Trigger.Schedule
	if sched == nil || sched.Every != Daily || sched.At != 10*60 || sched.Location.String() != "Asia/Shanghai" {
		t.Fatalf("schedule: %+v", sched)
	}
	seg := w.Trigger.Segment
	now := time.Date(2024, 9, 1, 2, 0, 0, 0, time.UTC)
	for days, want := range map[int]bool{89: false, 90: true, 120: true, 121: false} {
		if got := seg.LastPurchase.Contains(now.Add(-time.Duration(days)*Day), now); got != want {
			t.Errorf("bought %d days ago: in segment %v, want %v", days, got, want)
		}
	}
	if seg.LastPurchase.Contains(time.Time{}, now) {
		t.Error("a member who never bought is in the segment")
	}
	ok, err := w.Trigger.Matches("schedule", &Env{Member: Member{Orders: 3, GuideID: "g1"}})
	if err != nil || !ok {
		t.Errorf("filter: %v, %v", ok, err)
	}
	s, _ := w.Step("by_level")
	for level, want := range map[string]string{"gold": "call", "platinum": "call", "silver": "tag_dormant"} {
		got, err := s.Switch.Target(&Env{Member: Member{Level: level}})
		if err != nil || got != want {
			t.Errorf("level %s: got %q, %v; want %q", level, got, err, want)
		}
	}
	if w.Entry.ReEntry.CoolDown != 180*Day || w.SendRules.Caps != (Caps{PerDay: 1, PerWeek: 2, WhenCapped: CapSkip}) {
		t.Errorf("entry %+v, caps %+v", w.Entry, w.SendRules.Caps)
	}
}

func TestScheduleNext(t *testing.T) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	newYork, _ := time.LoadLocation("America/New_York")
	tests := []struct {
		spec  string
		loc   *time.Location
		after time.Time
		want  time.Time
	}{
		{"every day at 10:00", shanghai, time.Date(2024, 5, 1, 1, 0, 0, 0, time.UTC), time.Date(2024, 5, 1, 10, 0, 0, 0, shanghai)},
		{"every day at 10:00", shanghai, time.Date(2024, 5, 1, 10, 0, 0, 0, shanghai), time.Date(2024, 5, 2, 10, 0, 0, 0, shanghai)},
		{"every weekday at 09:30", shanghai, time.Date(2024, 5, 3, 12, 0, 0, 0, shanghai), time.Date(2024, 5, 6, 9, 30, 0, 0, shanghai)}, // Friday → Monday
		{"Every Tuesday and Thursday at 18:00", shanghai, time.Date(2024, 5, 1, 0, 0, 0, 0, shanghai), time.Date(2024, 5, 2, 18, 0, 0, 0, shanghai)},
		{"every month on day 1 at 10:00", shanghai, time.Date(2024, 5, 1, 10, 0, 1, 0, shanghai), time.Date(2024, 6, 1, 10, 0, 0, 0, shanghai)},
		{"every hour", shanghai, time.Date(2024, 5, 1, 10, 59, 59, 0, shanghai), time.Date(2024, 5, 1, 11, 0, 0, 0, shanghai)},
		// 02:30 does not exist in New York on 2024-03-10: it fires when
		// the clock resumes, at 03:30 daylight time.
		{"every day at 02:30", newYork, time.Date(2024, 3, 9, 12, 0, 0, 0, newYork), time.Date(2024, 3, 10, 7, 30, 0, 0, time.UTC)},
		{"every day at 10:00", newYork, time.Date(2024, 3, 9, 12, 0, 0, 0, newYork), time.Date(2024, 3, 10, 14, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		s, err := parseSchedule(tc.spec, tc.loc)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if got := s.Next(tc.after); !got.Equal(tc.want) {
			t.Errorf("%s after %v: got %v, want %v", tc.spec, tc.after, got, tc.want)
		}
	}
}

// TestSendTime covers quiet hours across midnight, send windows and days,
// and reading the rules in the member's zone.
func TestSendTime(t *testing.T) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	london, _ := time.LoadLocation("Europe/London")
	quiet := Window{Start: 21 * 60, End: 9 * 60}
	window := Window{Start: 10 * 60, End: 20 * 60}
	at := func(loc *time.Location, d, h, m int) time.Time { return time.Date(2024, 5, d, h, m, 0, 0, loc) }
	tests := []struct {
		name  string
		rules SendRules
		loc   *time.Location
		t     time.Time
		want  time.Time
	}{
		{"allowed now", SendRules{QuietHours: &quiet}, shanghai, at(shanghai, 1, 12, 0), at(shanghai, 1, 12, 0)},
		{"late evening waits for the morning", SendRules{QuietHours: &quiet}, shanghai, at(shanghai, 1, 23, 10), at(shanghai, 2, 9, 0)},
		{"after midnight waits for the same morning", SendRules{QuietHours: &quiet}, shanghai, at(shanghai, 2, 0, 30), at(shanghai, 2, 9, 0)},
		{"quiet hours end is allowed", SendRules{QuietHours: &quiet}, shanghai, at(shanghai, 2, 9, 0), at(shanghai, 2, 9, 0)},
		{"quiet hours start is not", SendRules{QuietHours: &quiet}, shanghai, at(shanghai, 2, 21, 0), at(shanghai, 3, 9, 0)},
		{"window inside the day", SendRules{QuietHours: &quiet, SendWindow: &window}, shanghai, at(shanghai, 2, 9, 30), at(shanghai, 2, 10, 0)},
		{"window closed for the day", SendRules{QuietHours: &quiet, SendWindow: &window}, shanghai, at(shanghai, 2, 20, 0), at(shanghai, 3, 10, 0)},
		// 14:00 in Shanghai is 07:00 in London: a London member waits
		// for 09:00 London time, 16:00 in Shanghai.
		{"member's zone", SendRules{QuietHours: &quiet}, london, at(shanghai, 2, 14, 0), at(london, 2, 9, 0)},
		// Friday 22:00 with weekday sends only: Monday 09:00.
		{"send days", SendRules{QuietHours: &quiet, SendDays: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}}, shanghai, at(shanghai, 3, 22, 0), at(shanghai, 6, 9, 0)},
		{"no quiet hours", SendRules{}, shanghai, at(shanghai, 3, 3, 0), at(shanghai, 3, 3, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rules.SendTime(tc.t, tc.loc); !got.Equal(tc.want) {
				t.Errorf("got %v, want %v", got.In(tc.loc), tc.want.In(tc.loc))
			}
		})
	}
}

func TestSendRulesLocation(t *testing.T) {
	tests := []struct {
		zone, member, store, want string
	}{
		{ZoneMember, "Europe/London", "Asia/Shanghai", "Europe/London"},
		{ZoneMember, "", "Asia/Tokyo", "Asia/Tokyo"},
		{ZoneStore, "Europe/London", "Asia/Tokyo", "Asia/Tokyo"},
		{ZoneStore, "", "", DefaultTimeZone},
		{ZoneMember, "Not/AZone", "", DefaultTimeZone},
		{"Europe/Paris", "Europe/London", "Asia/Tokyo", "Europe/Paris"},
	}
	for _, tc := range tests {
		r := SendRules{TimeZone: tc.zone}
		if got := r.Location(tc.member, tc.store).String(); got != tc.want {
			t.Errorf("%+v: got %s, want %s", tc, got, tc.want)
		}
	}
}

func TestDefaultSendRules(t *testing.T) {
	w, err := Load("a.yaml", []byte(head+"  - send: welcome\n"), Options{Templates: testTemplates(t)})
	if err != nil {
		t.Fatal(err)
	}
	want := SendRules{TimeZone: ZoneMember, QuietHours: &DefaultQuietHours, Caps: Caps{WhenCapped: CapDelay}}
	if diff := cmp.Diff(want, w.SendRules); diff != "" {
		t.Errorf("default send rules (-want +got):\n%s", diff)
	}
	w, err = Load("a.yaml", []byte(strings.Replace(head, "steps:", "send_rules: {quiet_hours: none}\nsteps:", 1)+"  - send: welcome\n"), Options{Templates: testTemplates(t)})
	if err != nil {
		t.Fatal(err)
	}
	if w.SendRules.QuietHours != nil {
		t.Errorf("quiet_hours: none left %v", w.SendRules.QuietHours)
	}
}

func TestReEntry(t *testing.T) {
	ended := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		r         ReEntry
		lastEnded time.Time
		now       time.Time
		want      bool
	}{
		{ReEntry{Policy: ReEntryNever}, time.Time{}, ended, true},
		{ReEntry{Policy: ReEntryNever}, ended, ended.Add(365 * Day), false},
		{ReEntry{Policy: ReEntryAlways}, ended, ended, true},
		{ReEntry{Policy: ReEntryAfter, CoolDown: 30 * Day}, ended, ended.Add(29 * Day), false},
		{ReEntry{Policy: ReEntryAfter, CoolDown: 30 * Day}, ended, ended.Add(30 * Day), true},
	}
	for _, tc := range tests {
		if got := tc.r.Allows(tc.lastEnded, tc.now); got != tc.want {
			t.Errorf("%+v ended %v, now %v: got %v", tc.r, tc.lastEnded, tc.now, got)
		}
	}
}

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"3d": 3 * Day, "2w": 2 * Week, "72h": 72 * time.Hour, "90m": 90 * time.Minute,
		"1h30m": 90 * time.Minute, "1w2d": 9 * Day, "45s": 45 * time.Second, "3650d": 3650 * Day,
	}
	for s, want := range good {
		if got, err := ParseDuration(s); err != nil || got != want {
			t.Errorf("%s: got %v, %v; want %v", s, got, err, want)
		}
	}
	bad := map[string]string{
		"3 days": `bad duration "3 days" (did you mean 3d?)`,
		"3天":     `bad duration "3天" (did you mean 3d?)`,
		"2 周":    `bad duration "2 周" (did you mean 2w?)`,
		"1.5h":   `bad duration "1.5h": write a whole number and a unit, like 3d, 2w, 72h, 90m or 1h30m`,
		"-3d":    `bad duration "-3d": write a whole number and a unit, like 3d, 2w, 72h, 90m or 1h30m`,
		"48":     `duration "48" has no unit: write 48d for days, 48h for hours or 48m for minutes`,
		"3651d":  `duration "3651d" is too long: at most 3650d`,
		"":       `missing duration: write it like 3d, 72h or 1h30m`,
	}
	for s, want := range bad {
		if _, err := ParseDuration(s); err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %s", s, err, want)
		}
	}
}

func TestVersion(t *testing.T) {
	data, err := os.ReadFile("../configs/workflows/new-member-welcome.yaml")
	if err != nil {
		t.Fatal(err)
	}
	v := VersionOf(data)
	if v != VersionOf([]byte(strings.ReplaceAll(string(data), "\n", "\r\n"))) {
		t.Error("CRLF line ends changed the version")
	}
	if v == VersionOf(append([]byte("# edited\n"), data...)) {
		t.Error("an edit kept the version")
	}
	w := loadExample(t, "new-member-welcome")
	if w.Version != v {
		t.Errorf("Load's version %s, VersionOf %s", w.Version, v)
	}
}

func TestDerivedIDsAndFallThrough(t *testing.T) {
	w, err := Load("a.yaml", []byte(head+"  - send: welcome\n  - wait: 1d\n  - if: member.orders == 0\n    else: end\n  - send: recall\n"), Options{Templates: testTemplates(t)})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"step_0 send: next→step_1",
		"step_1 wait: next→step_2",
		"step_2 if: then→step_3, else→end",
		"step_3 send: next→end",
	}
	if diff := cmp.Diff(want, graphOf(w)); diff != "" {
		t.Errorf("graph (-want +got):\n%s", diff)
	}
	if w.Start() != "step_0" || !w.Sends() {
		t.Errorf("start %q, sends %v", w.Start(), w.Sends())
	}
}

func TestStructureOnlyWithoutTemplates(t *testing.T) {
	// Without a registry, any template id passes: structure-only checks.
	if _, err := Load("a.yaml", []byte(head+"  - send: anything\n"), Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestChannelsOption(t *testing.T) {
	yaml := head + "  - send: welcome\n    channel: webhook\n"
	opts := Options{Templates: testTemplates(t), Channels: []string{"wecom", "dingtalk", "webhook"}}
	if _, err := Load("a.yaml", []byte(yaml), opts); err != nil {
		t.Fatalf("a wired channel was refused: %v", err)
	}
}
