package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store"
)

// startTwoCorpsHandover is the two-corp gateway with a colleague of
// zhang's in acme's store (孙丽 "sun", on acme) and two contacts of
// zhang in acme; the handover checks are shortened.
func startTwoCorpsHandover(t *testing.T) *twoCorps {
	t.Helper()
	old := handoverPollInterval
	handoverPollInterval = 300 * time.Millisecond
	t.Cleanup(func() { handoverPollInterval = old })
	tc := startTwoCorps(t)
	if code, body := request(t, "POST", tc.s.base+"/api/v1/guides", tc.tok,
		`{"id":"g-sun","store_id":"acme-sh","name":"孙丽","identities":[{"channel":"wecom:acme","external_id":"sun"}]}`); code != 201 {
		t.Fatalf("seeding g-sun: %d %s", code, body)
	}
	tc.acme.AddEmployees("sun")
	for _, ext := range []string{"wmAcme1", "wmAcme2"} {
		tc.acmeJoin(t, "zhang", ext, "客户"+ext, "g:g-zhang")
		waitFor(t, ext+" bound", func() bool {
			v, err := tc.s.app.Store.MemberByIdentity(context.Background(), "wecom:acme", ext)
			return err == nil && len(v.Bindings) == 1
		})
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("default corp calls: %v\nacme calls: %v", tc.def.Calls(), tc.acme.Calls())
		}
	})
	return tc
}

// zhangLeaves plays zhang leaving corp acme (delete_user at
// /callbacks/wecom/acme) and waits for their two customers' handovers to
// be requested.
func (tc *twoCorps) zhangLeaves(t *testing.T) {
	t.Helper()
	resign := tc.acme.Resign("zhang")
	resign.CreateTime = time.Now().Truncate(time.Second)
	if status, body := deliver(t, tc.s.base+"/callbacks/wecom/acme", resign.XML(), tc.acmeCallback); status != 200 {
		t.Fatalf("acme's delete_user: %d %s", status, body)
	}
	waitFor(t, "two handovers requested", func() bool { return len(handovers(t, tc.s, tc.tok, "state=requested")) == 2 })
}

// TestTwoWeComCorpsHandover: zhang leaves corp acme (delete_user at
// /callbacks/wecom/acme); their customers are handed to sun at acme's
// resigned/transfer_customer, the handovers record wecom:acme, the
// takeover is checked at acme's transfer_result, and the default corp
// hears nothing of it.
func TestTwoWeComCorpsHandover(t *testing.T) {
	tc := startTwoCorpsHandover(t)
	s := tc.s
	tc.zhangLeaves(t)
	for _, h := range handovers(t, s, tc.tok, "state=requested") {
		if h.Channel != "wecom:acme" || h.HandoverUserID != "zhang" || h.TakeoverUserID != "sun" || h.ToGuideID != "g-sun" || h.BrandID != "acme" {
			t.Errorf("handover = %+v, want zhang's to sun (g-sun) on wecom:acme for acme", h)
		}
	}
	want := []wecomfake.TransferRequest{{Resigned: true, HandoverUserID: "zhang", TakeoverUserID: "sun",
		ExternalUserIDs: []string{"wmAcme1", "wmAcme2"}, Results: map[string]int{"wmAcme1": 0, "wmAcme2": 0}}}
	if diff := cmp.Diff(want, tc.acme.Transfers()); diff != "" {
		t.Errorf("transfers at acme (-want +got):\n%s", diff)
	}

	tc.acme.CompleteTransfers()
	waitFor(t, "the handovers transferred", func() bool { return len(handovers(t, s, tc.tok, "state=transferred")) == 2 })
	if n := tc.acme.CallCount(wecomfake.PathResignedTransferResult); n == 0 {
		t.Error("acme's transfer_result was never asked")
	}
	for _, ext := range []string{"wmAcme1", "wmAcme2"} {
		if to, status := tc.acme.TransferStatus(ext); to != "sun" || status != wecomfake.TransferStatusDone {
			t.Errorf("%s at acme: %s status %d, want taken over by sun", ext, to, status)
		}
	}
	for _, p := range []string{wecomfake.PathResignedTransferCustomer, wecomfake.PathResignedTransferResult, wecomfake.PathTransferCustomer} {
		if n := tc.def.CallCount(p); n != 0 {
			t.Errorf("the default corp got %d calls of %s, want none", n, p)
		}
	}
	if tr := tc.def.Transfers(); len(tr) != 0 {
		t.Errorf("transfers at the default corp: %+v", tr)
	}
}

// TestTwoWeComCorpsTransferRefused: a customer of acme refuses their new
// guide (acme's transfer_fail callback): the handover on wecom:acme goes
// back to pending without sun and, with no other guide of the brand,
// fails for an operator naming acme.
func TestTwoWeComCorpsTransferRefused(t *testing.T) {
	tc := startTwoCorpsHandover(t)
	s := tc.s
	tc.zhangLeaves(t)
	refused, ok := tc.acme.RefuseTransfer("wmAcme1", "customer_refused")
	if !ok {
		t.Fatal("acme has no transfer of wmAcme1 to refuse")
	}
	refused.CreateTime = time.Now().Add(time.Second).Truncate(time.Second)
	refused.CorpID = acmeCorpID
	if status, body := deliver(t, s.base+"/callbacks/wecom/acme", refused.XML(), tc.acmeCallback); status != 200 {
		t.Fatalf("acme's transfer_fail: %d %s", status, body)
	}
	var failed []store.Handover
	waitFor(t, "wmAcme1's handover failed", func() bool {
		failed = handovers(t, s, tc.tok, "state=failed")
		return len(failed) == 1
	})
	if h := failed[0]; h.Channel != "wecom:acme" || h.ExternalUserID != "wmAcme1" || h.Tried != "g-sun" {
		t.Errorf("failed handover = %+v, want wmAcme1's on wecom:acme, sun tried", h)
	}
	if n := len(tc.def.Calls()); n != 0 {
		t.Errorf("the default corp got %d calls, want none: %v", n, tc.def.Calls())
	}
}

// TestTwoWeComCorpsGuideLeaveAndContactWays: the admin API's QR codes
// and the transfer of a guide leaving (still employed) go to the corp of
// the guide (or of the store's guides): acme's add_contact_way and
// transfer_customer, not the default corp's.
func TestTwoWeComCorpsGuideLeaveAndContactWays(t *testing.T) {
	tc := startTwoCorpsHandover(t)
	s := tc.s
	for _, tt := range []struct{ path, state string }{
		{"/api/v1/guides/g-zhang/contact-way", "g:g-zhang"},
		{"/api/v1/stores/acme-sh/contact-way", "s:acme-sh"},
		{"/api/v1/guides/g-li/contact-way", "g:g-li"},
	} {
		code, body := request(t, "POST", s.base+tt.path, tc.tok, "")
		if code != 201 {
			t.Fatalf("POST %s: %d %s", tt.path, code, body)
		}
	}
	var acmeWays []string
	for _, cw := range tc.acme.ContactWays() {
		acmeWays = append(acmeWays, cw.State+" "+strings.Join(cw.Users, ","))
	}
	if diff := cmp.Diff([]string{"g:g-zhang zhang", "s:acme-sh sun,zhang"}, acmeWays); diff != "" {
		t.Errorf("contact ways at acme (-want +got):\n%s", diff)
	}
	if d := tc.def.ContactWays(); len(d) != 1 || d[0].State != "g:g-li" || strings.Join(d[0].Users, ",") != "li" {
		t.Errorf("contact ways at the default corp = %+v, want li's alone", d)
	}
	ways, err := s.app.Store.ContactWays(context.Background(), "acme-sh", "")
	if err != nil || len(ways) != 1 || ways[0].Channel != "wecom:acme" {
		t.Errorf("acme-sh's contact ways = %+v, %v; want one on wecom:acme", ways, err)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/guides/g-li/contact-way?channel=wecom:nope", tc.tok, ""); code != 400 {
		t.Errorf("a contact way on an unknown instance: %d %s, want 400", code, body)
	}

	if code, body := request(t, "POST", s.base+"/api/v1/guides/g-zhang/leave", tc.tok, ""); code != 200 {
		t.Fatalf("zhang leaves: %d %s", code, body)
	}
	want := []wecomfake.TransferRequest{{HandoverUserID: "zhang", TakeoverUserID: "sun",
		ExternalUserIDs: []string{"wmAcme1", "wmAcme2"}, Results: map[string]int{"wmAcme1": 0, "wmAcme2": 0}}}
	if diff := cmp.Diff(want, tc.acme.Transfers()); diff != "" {
		t.Errorf("transfers at acme (-want +got):\n%s", diff)
	}
	if n := tc.def.CallCount(wecomfake.PathTransferCustomer); n != 0 {
		t.Errorf("%d transfer_customer calls at the default corp, want none", n)
	}
}

// TestTwoWeComCorpsKFBrands: corp acme serves two brands; a customer
// asking acme's customer-service account wkKids for the nearest store
// (kf/sync_msg after acme's kf_msg_or_event) is answered, at acme's
// kf/send_msg, with acme-kids' store; through another account of acme,
// with acme's (the default brand) store.
func TestTwoWeComCorpsKFBrands(t *testing.T) {
	tc := startTwoCorps(t)
	s := tc.s
	for i, tt := range []struct{ kf, want, not string }{
		{"wkKids", "ACME 童装浦东店", "徐汇店"},
		{"wkAcme", "徐汇店", "童装"},
	} {
		ext := "wmKF" + tt.kf
		token := tc.acme.QueueKFMessages(tt.kf, wecomfake.KFLocation(ext, 31.21, 121.50, "陆家嘴", "上海市浦东新区"))
		notify := wecomfake.KfMsgOrEvent{CorpID: acmeCorpID, Token: token, OpenKfID: tt.kf, CreateTime: time.Now().Add(time.Duration(i) * time.Second)}
		if status, body := deliver(t, s.base+"/callbacks/wecom/acme", notify.XML(), tc.acmeCallback); status != 200 {
			t.Fatalf("acme's kf_msg_or_event: %d %s", status, body)
		}
		waitFor(t, "the reply of "+tt.kf, func() bool { return len(tc.acme.KFSent()) > i })
		r := tc.acme.KFSent()[i]
		if r.OpenKfID != tt.kf || r.ToUser != ext || !strings.Contains(r.Text, tt.want) || strings.Contains(r.Text, tt.not) {
			t.Errorf("reply = %s to %s: %q; want from %s to %s naming %s, not %s", r.OpenKfID, r.ToUser, r.Text, tt.kf, ext, tt.want, tt.not)
		}
	}
	if n := len(tc.def.Calls()); n != 0 {
		t.Errorf("the default corp got %d calls, want none", n)
	}
}
