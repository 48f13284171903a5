package wecom_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// TestResignedTransfer walks a resigned employee's handover through the
// fake's rules: per-customer errcodes (not resigned, 90 days, takeover
// limit, already in transfer), transfer_result statuses changing as the
// customers are taken over or refuse, and the transfer_fail callback.
func TestResignedTransfer(t *testing.T) {
	now := time.Unix(1700000000, 0)
	clock := func() time.Time { return now }
	e := newEnv(t, wecomfake.WithClock(clock))
	e.fake.AddEmployees("left", "wang", "zhao", "full")
	for _, id := range []string{"wmA", "wmB", "wmC", "wmRecent"} {
		e.fake.AddContact(wecom.Contact{ExternalUserID: id, FollowUsers: []wecom.FollowUser{{UserID: "left"}}})
	}
	e.fake.MarkTransferred("wmRecent", now.Add(-30*24*time.Hour))
	e.fake.SetContactLimit("full", 0)

	res, err := e.api.TransferResignedCustomer(ctx(t), "left", "wang", []string{"wmA"})
	if err != nil || len(res) != 1 || res[0].ErrCode != wecom.TransferNotResigned {
		t.Fatalf("before the employee resigned: %+v, %v; want 40097", res, err)
	}
	if ev := e.fake.Resign("left"); ev.ChangeType != wecom.ChangeTypeDeleteUser || ev.UserID != "left" {
		t.Fatalf("Resign callback = %+v", ev)
	}
	res, err = e.api.TransferResignedCustomer(ctx(t), "left", "wang", []string{"wmA", "wmB", "wmRecent"})
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int{}
	for _, r := range res {
		codes[r.ExternalUserID] = r.ErrCode
	}
	if diff := cmp.Diff(map[string]int{"wmA": 0, "wmB": 0, "wmRecent": wecom.TransferTooSoon}, codes); diff != "" {
		t.Errorf("per-customer codes (-want +got):\n%s", diff)
	}
	res, _ = e.api.TransferResignedCustomer(ctx(t), "left", "zhao", []string{"wmA"})
	if len(res) != 1 || res[0].ErrCode != wecom.TransferInProgress {
		t.Errorf("a customer waiting for a takeover: %+v, want 40129", res)
	}
	res, _ = e.api.TransferResignedCustomer(ctx(t), "left", "full", []string{"wmC"})
	if len(res) != 1 || res[0].ErrCode != wecom.TransferTakeoverFull {
		t.Errorf("a takeover over the limit: %+v, want 40099", res)
	}

	got, err := e.api.ResignedTransferResult(ctx(t), "left", "wang")
	if err != nil {
		t.Fatal(err)
	}
	wantWaiting := []wecom.Takeover{
		{ExternalUserID: "wmA", Status: wecom.TakeoverWaiting, TakeoverTime: now.Add(24 * time.Hour)},
		{ExternalUserID: "wmB", Status: wecom.TakeoverWaiting, TakeoverTime: now.Add(24 * time.Hour)},
	}
	if diff := cmp.Diff(wantWaiting, got); diff != "" {
		t.Errorf("transfer_result while waiting (-want +got):\n%s", diff)
	}

	fail, ok := e.fake.RefuseTransfer("wmB", "customer_refused")
	if !ok || fail.ChangeType != wecom.ChangeTypeTransferFail || fail.UserID != "wang" || fail.ExternalUserID != "wmB" || fail.FailReason != "customer_refused" {
		t.Fatalf("RefuseTransfer = %+v, %v", fail, ok)
	}
	if n := e.fake.CompleteTransfers(); n != 1 {
		t.Errorf("CompleteTransfers took over %d, want 1", n)
	}
	got, _ = e.api.ResignedTransferResult(ctx(t), "left", "wang")
	want := []wecom.Takeover{
		{ExternalUserID: "wmA", Status: wecom.TakeoverDone, TakeoverTime: now},
		{ExternalUserID: "wmB", Status: wecom.TakeoverRefused},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("transfer_result after the takeover (-want +got):\n%s", diff)
	}
	c, err := e.api.ExternalContact(ctx(t), "wmA")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.FollowUser("wang"); !ok {
		t.Errorf("wmA follow users after the takeover = %+v, want wang", c.FollowUsers)
	}
	// Taken over now: another transfer within 90 days is refused.
	res, _ = e.api.TransferCustomer(ctx(t), "wang", "zhao", []string{"wmA"}, "")
	if len(res) != 1 || res[0].ErrCode != wecom.TransferTooSoon {
		t.Errorf("a second transfer within 90 days: %+v, want 40128", res)
	}
}
