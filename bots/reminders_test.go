package bots

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestTaskReminders walks a day in Shanghai. Li's store 静安店 opens
// 10:00-22:00; Wu's 新天地店 has no hours (always open). Reminders go 2h
// before due and at due, pushed to the opening when the store is closed.
func TestTaskReminders(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := newHandoffRig(t, s)
		r.d.Reminders = s
		ctx := context.Background()
		sh, _ := time.LoadLocation("Asia/Shanghai")
		at := func(h, m int) time.Time { return time.Date(2026, 11, 25, h, m, 0, 0, sh) }
		v, _ := s.MemberByIdentity(ctx, "wecom", "wmChen")
		task := func(guide, title string, due time.Time) int64 {
			t.Helper()
			tk := &store.GuideTask{MemberID: v.ID, GuideID: guide, BrandID: "camellia", Title: title, DueAt: due, CreatedAt: at(6, 0)}
			if _, err := s.CreateGuideTask(ctx, tk); err != nil {
				t.Fatal(err)
			}
			return tk.ID
		}
		late := task("li", "回访陈女士", at(11, 0)) // before-due 09:00 -> 10:00 opening; due 11:00
		early := task("li", "确认到店", at(9, 30)) // both fall before opening: at-due only, at 10:00
		wu := task("wu", "电话回访", at(8, 0))     // always open: 06:00 and 08:00
		done := task("li", "寄送小样", at(10, 30)) // completed before any reminder
		rem := Reminders{Before: 2 * time.Hour, AtDue: true}
		out := &recordingOutbox{}
		key := func(id int64, kind string) string { return ReminderKey(id, kind) }
		sweep := func(now time.Time, want ...string) {
			t.Helper()
			r.clock.t = now
			before := slices.Sorted(maps.Keys(out.byKey))
			for range 2 { // a second sweep sends nothing more
				if _, err := r.d.SendTaskReminders(ctx, rem, out); err != nil {
					t.Fatal(err)
				}
			}
			var added []string
			for _, k := range slices.Sorted(maps.Keys(out.byKey)) {
				if !slices.Contains(before, k) {
					added = append(added, k)
				}
			}
			slices.Sort(want)
			if diff := cmp.Diff(want, added); diff != "" {
				t.Errorf("at %s: reminders queued (-want +got):\n%s", now.Format("15:04"), diff)
			}
		}
		sweep(at(7, 0), key(wu, store.ReminderBefore))
		sweep(at(8, 0), key(wu, store.ReminderDue))
		r.clock.t = at(9, 0)
		if _, ok, err := r.d.Tasks.CompleteGuideTask(ctx, done); err != nil || !ok {
			t.Fatalf("completing: %v %v", ok, err)
		}
		sweep(at(9, 59))
		sweep(at(10, 0), key(late, store.ReminderBefore), key(early, store.ReminderDue))
		sweep(at(10, 45))
		sweep(at(11, 0), key(late, store.ReminderDue))
		sweep(at(23, 0))
		if out.queued != 5 {
			t.Errorf("%d reminders queued, want 5 (once each)", out.queued)
		}

		wantReminder := func(k, channel, to string, texts ...string) {
			t.Helper()
			got, ok := out.byKey[k]
			if !ok || got.To.Channel != channel || got.To.ID != to || got.To.Party != adapters.PartyGuide || got.To.Brand != "camellia" {
				t.Fatalf("%s = %+v, want to %s/%s", k, got, channel, to)
			}
			for _, w := range texts {
				if !strings.Contains(got.Text, w) {
					t.Errorf("%s: %q lacks %q", k, got.Text, w)
				}
			}
		}
		id := func(n int64) string { return strconv.FormatInt(n, 10) }
		wantReminder(key(wu, store.ReminderBefore), "dingtalk", "staff-wu", "任务提醒：#"+id(wu)+" 电话回访（会员 陈女士），将于 11-25 08:00 到期", "完成 "+id(wu))
		wantReminder(key(wu, store.ReminderDue), "dingtalk", "staff-wu", "任务到期：#"+id(wu)+" 电话回访")
		wantReminder(key(late, store.ReminderBefore), "wecom", "li", "任务提醒：#"+id(late)+" 回访陈女士（会员 陈女士），将于 11-25 11:00 到期")
		wantReminder(key(early, store.ReminderDue), "wecom", "li", "任务已逾期：#"+id(early)+" 确认到店（会员 陈女士），应于 11-25 09:30 前完成")
	})
}

// TestTaskRemindersOff: with neither reminder on, nothing is looked up;
// with the at-due one off, a task past due is settled without a message.
func TestTaskRemindersOff(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := newHandoffRig(t, s)
		r.d.Reminders = s
		ctx := context.Background()
		v, _ := s.MemberByIdentity(ctx, "wecom", "wmChen")
		tk := &store.GuideTask{MemberID: v.ID, GuideID: "wu", BrandID: "camellia", Title: "回访", DueAt: r.clock.Now().Add(-time.Minute)}
		if _, err := s.CreateGuideTask(ctx, tk); err != nil {
			t.Fatal(err)
		}
		out := &recordingOutbox{}
		if n, err := r.d.SendTaskReminders(ctx, Reminders{}, out); n != 0 || err != nil {
			t.Errorf("reminders off: %d, %v", n, err)
		}
		if n, err := r.d.SendTaskReminders(ctx, Reminders{Before: time.Hour}, out); n != 0 || err != nil || out.queued != 0 {
			t.Errorf("past due with at-due reminders off: %d, %v, %d queued", n, err, out.queued)
		}
		got, _ := s.GuideTask(ctx, tk.ID)
		if got.DueRemindedAt == nil {
			t.Error("the task past due was not settled")
		}
		// A guide who left is not reminded (at noon, 静安店 is open).
		sh, _ := time.LoadLocation("Asia/Shanghai")
		r.clock.t = time.Date(2026, 11, 25, 12, 0, 0, 0, sh)
		left := &store.GuideTask{MemberID: v.ID, GuideID: "li", BrandID: "camellia", Title: "回访", DueAt: r.clock.Now().Add(time.Hour)}
		if _, err := s.CreateGuideTask(ctx, left); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MarkGuideLeft(ctx, "li"); err != nil {
			t.Fatal(err)
		}
		if n, err := r.d.SendTaskReminders(ctx, Reminders{Before: 2 * time.Hour, AtDue: true}, out); n != 0 || err != nil || out.queued != 0 {
			t.Errorf("a guide who left: %d, %v, %d queued", n, err, out.queued)
		}
		if got, _ := s.GuideTask(ctx, left.ID); got.BeforeRemindedAt == nil {
			t.Error("the reminder of a guide who left was not settled")
		}
	})
}

// TestOverdueFirst: "my tasks" and the digest list overdue tasks first,
// marked, though they were given later.
func TestOverdueFirst(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := newHandoffRig(t, s)
		ctx := context.Background()
		sh, _ := time.LoadLocation("Asia/Shanghai")
		r.clock.t = time.Date(2026, 11, 25, 9, 1, 0, 0, sh)
		v, _ := s.MemberByIdentity(ctx, "wecom", "wmChen")
		for _, tk := range []struct {
			title string
			due   time.Time
		}{
			{"今天回访", time.Date(2026, 11, 25, 18, 0, 0, 0, sh)},
			{"昨天的回访", time.Date(2026, 11, 24, 18, 0, 0, 0, sh)},
		} {
			if _, err := s.CreateGuideTask(ctx, &store.GuideTask{MemberID: v.ID, GuideID: "li", BrandID: "camellia", Title: tk.title, DueAt: tk.due}); err != nil {
				t.Fatal(err)
			}
		}
		rs := r.say("wecom", adapters.PartyGuide, "li", "我的任务")
		if len(rs) != 1 {
			t.Fatalf("my tasks: %s", texts(rs))
		}
		overdue, today := strings.Index(rs[0].Text, "【已逾期】昨天的回访（11-24 18:00 前）"), strings.Index(rs[0].Text, "今天回访（11-25 18:00 前）")
		if overdue < 0 || today < 0 || overdue > today || strings.Count(rs[0].Text, "已逾期") != 1 {
			t.Errorf("my tasks, overdue first and marked:\n%s", rs[0].Text)
		}
		out := &recordingOutbox{}
		if _, err := r.d.SendDigests(ctx, 9*time.Hour, out); err != nil {
			t.Fatal(err)
		}
		d := out.byKey["digest:li:2026-11-25"].Text
		overdue, today = strings.Index(d, "【已逾期】昨天的回访"), strings.Index(d, "今天回访")
		if overdue < 0 || today < 0 || overdue > today {
			t.Errorf("digest, overdue first and marked:\n%s", d)
		}
	})
}
