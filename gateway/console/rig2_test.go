package console_test

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/scrmgw/scrmgw/store"
)

// seedStores gives camellia two stores in Shanghai and one in Hangzhou,
// each with guides, and peony one store of its own.
func (r *rig) seedStores() {
	r.t.Helper()
	ctx := context.Background()
	for _, s := range []store.RetailStore{
		{ID: "sh-jingan", Name: "Jing'an Flagship", Lat: 31.2286, Lng: 121.4452, Address: "1601 Nanjing Rd W, Shanghai", TimeZone: "Asia/Shanghai", Active: true, BrandIDs: []string{"camellia"}},
		{ID: "sh-xujiahui", Name: "Xujiahui Mall", Lat: 31.1951, Lng: 121.4375, Address: "1 Hongqiao Rd, Shanghai", TimeZone: "Asia/Shanghai", Active: true, BrandIDs: []string{"camellia"}},
		{ID: "hz-westlake", Name: "West Lake", Lat: 30.2592, Lng: 120.1633, Address: "Hubin Rd, Hangzhou", TimeZone: "Asia/Shanghai", Active: true, BrandIDs: []string{"camellia"}},
		{ID: "bj-sanlitun", Name: "Peony Sanlitun", Lat: 39.9370, Lng: 116.4551, Address: "Sanlitun, Beijing", TimeZone: "Asia/Shanghai", Active: true, BrandIDs: []string{"peony"}},
	} {
		if err := r.store.CreateRetailStore(ctx, &s); err != nil {
			r.t.Fatalf("creating store %s: %v", s.ID, err)
		}
	}
	r.assigner.Refresh(ctx, "sh-jingan", "sh-xujiahui", "hz-westlake", "bj-sanlitun")
	for _, g := range []store.Guide{
		{ID: "g-wang", StoreID: "sh-jingan", Name: "Wang Fang", Capacity: 40, Active: true},
		{ID: "g-li", StoreID: "sh-jingan", Name: "Li Na", Capacity: 30, Active: true},
		{ID: "g-zhao", StoreID: "sh-xujiahui", Name: "Zhao Min", Capacity: 25, Active: true},
		{ID: "g-chen", StoreID: "hz-westlake", Name: "Chen Jie", Capacity: 20, Active: true},
		{ID: "g-peony", StoreID: "bj-sanlitun", Name: "Sun Li", Capacity: 20, Active: true},
	} {
		if err := r.store.CreateGuide(ctx, &g); err != nil {
			r.t.Fatalf("creating guide %s: %v", g.ID, err)
		}
	}
	// Contact-way QR codes of a store and two of its guides.
	for _, cw := range []store.ContactWay{
		{Channel: "wecom", StoreID: "sh-jingan", State: "s:sh-jingan", ConfigID: "cfg-s1", QRCode: "/test-qr/s-sh-jingan"},
		{Channel: "wecom", GuideID: "g-wang", State: "g:g-wang", ConfigID: "cfg-g1", QRCode: "/test-qr/g-wang"},
		{Channel: "wecom", GuideID: "g-li", State: "g:g-li", ConfigID: "cfg-g2", QRCode: "/test-qr/g-li"},
		{Channel: "wecom", GuideID: "g-peony", State: "g:g-peony", ConfigID: "cfg-g3", QRCode: "/test-qr/g-peony"},
	} {
		if err := r.store.SaveContactWay(ctx, &cw); err != nil {
			r.t.Fatal(err)
		}
	}
}

// throughWinBack takes a new member of brand, bound to guide at storeID,
// through the win-back workflow as the engine does: the run starts, its
// win_back step puts a message in the outbox, the channel accepts it
// (sent) or refuses it (failure), and the member converts or not.
func (r *rig) throughWinBack(brand, workflow, guide, storeID, failure string, converted bool, then ...string) {
	r.t.Helper()
	ctx := context.Background()
	head, err := r.store.Workflow(ctx, brand, workflow)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.seq++
	n := r.seq
	r.mu.Unlock()
	m, _, err := r.store.EnsureMember(ctx, store.NewMember{BrandID: brand, Name: fmt.Sprintf("Member %d", n),
		Identities: []store.Identity{{Channel: "wecom", ExternalID: fmt.Sprintf("wm-through-%d", n)}}})
	if err != nil {
		r.t.Fatal(err)
	}
	if _, _, err := r.store.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: brand, GuideID: guide, StoreID: storeID, Reason: "manual"}); err != nil {
		r.t.Fatal(err)
	}
	now := r.clock().Add(-time.Hour)
	runs, err := r.store.StartRuns(ctx, []*store.WorkflowRun{{MemberID: m.ID, BrandID: brand, Workflow: workflow, Version: head.Version,
		TriggerKey: "through", Step: "win_back", WakeAt: &now, StartedAt: now}})
	if err != nil || len(runs) != 1 {
		r.t.Fatalf("starting a run: %v", err)
	}
	run := runs[0]
	key := fmt.Sprintf("run:%d:win_back:1", run.ID)
	msg := &store.OutboxMessage{IdempotencyKey: key, Channel: "wecom", Recipient: "wm", MemberID: &m.ID, GuideID: guide, BrandID: brand,
		Kind: "text", Payload: []byte(`{}`), State: store.OutboxPending}
	if _, err := r.store.AddOutbox(ctx, msg); err != nil {
		r.t.Fatal(err)
	}
	if moved, _, err := r.store.MoveRun(ctx, store.RunMove{RunID: run.ID, Seq: run.WakeSeq, Step: "win_back", Visit: 1, StepState: store.StepSending,
		OutboxKey: key, At: now}); err != nil || !moved {
		r.t.Fatalf("sending: %v %v", moved, err)
	}
	if _, claimed, err := r.store.ClaimOutbox(ctx, msg.ID); err != nil || !claimed {
		r.t.Fatalf("claiming the message: %v %v", claimed, err)
	}
	if failure != "" {
		if err := r.store.FailOutboxFor(ctx, msg.ID, failure, "the channel refused it"); err != nil {
			r.t.Fatal(err)
		}
	} else if err := r.store.FinishOutbox(ctx, msg.ID, "ext-"+key, ""); err != nil {
		r.t.Fatal(err)
	}
	// Then the steps after win_back, one after the other.
	seq, cur := run.WakeSeq+1, "win_back"
	for _, next := range then {
		if moved, _, err := r.store.MoveRun(ctx, store.RunMove{RunID: run.ID, Seq: seq, Step: cur, Visit: 1, StepState: store.StepDone,
			Next: next, NextState: store.StepPending, WakeAt: &now, At: now}); err != nil || !moved {
			r.t.Fatalf("moving to %s: %v %v", next, moved, err)
		}
		seq, cur = seq+1, next
	}
	if converted {
		if _, err := r.store.EndRun(ctx, run.ID, store.RunConverted, "goal", now.Add(30*time.Minute)); err != nil {
			r.t.Fatal(err)
		}
	}
}

// seedGuideWork gives camellia's guides tasks (some overdue) and points
// this month, and peony's guide an overdue task of its own.
func (r *rig) seedGuideWork() {
	r.t.Helper()
	ctx := context.Background()
	now := r.clock()
	task := func(guide, brand, title string, due time.Duration) {
		m, _, err := r.store.EnsureMember(ctx, store.NewMember{BrandID: brand, Name: title,
			Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm-task-" + guide + title}}})
		if err != nil {
			r.t.Fatal(err)
		}
		if _, err := r.store.CreateGuideTask(ctx, &store.GuideTask{MemberID: m.ID, GuideID: guide, BrandID: brand, Title: title,
			DueAt: now.Add(due), CreatedAt: now.Add(-72 * time.Hour)}); err != nil {
			r.t.Fatal(err)
		}
	}
	task("g-zhao", "camellia", "Call back Liu Yang about the cashmere coat", -50*time.Hour)
	task("g-zhao", "camellia", "Invite Gao Lin to the autumn preview", -5*time.Hour)
	task("g-li", "camellia", "Thank Ma Jun for the first purchase", -26*time.Hour)
	task("g-li", "camellia", "Remind He Ping of the birthday coupon", 20*time.Hour)
	task("g-wang", "camellia", "Follow up the alteration for Xu Mei", 6*time.Hour)
	task("g-peony", "peony", "Peony secret task", -30*time.Hour)
	month := now.In(shanghai).Format("2006-01")
	var entries []store.GuidePointsEntry
	for i, p := range []struct {
		guide, storeID string
		points         int64
	}{{"g-wang", "sh-jingan", 320}, {"g-li", "sh-jingan", 180}, {"g-zhao", "sh-xujiahui", 240}, {"g-chen", "hz-westlake", 90}, {"g-peony", "bj-sanlitun", 999}} {
		brand := "camellia"
		if p.guide == "g-peony" {
			brand = "peony"
		}
		entries = append(entries, store.GuidePointsEntry{Key: fmt.Sprintf("seed-%d", i), GuideID: p.guide, BrandID: brand, StoreID: p.storeID,
			Month: month, Kind: "manual", Points: p.points, EarnedAt: now})
	}
	if _, err := r.store.AwardGuidePoints(ctx, entries); err != nil {
		r.t.Fatal(err)
	}
}

func atof(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(err)
	}
	return f
}
