package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store"
)

// addCustomers adds WeCom customers of the employee userID through
// add_external_contact callbacks, one after the other (so their bindings
// are in that order), and waits until each is a member bound to them; it
// returns the members' ids.
func addCustomers(t *testing.T, s *started, fake *wecomfake.Server, userID string, ids ...string) []int64 {
	t.Helper()
	ctx := context.Background()
	out := make([]int64, len(ids))
	for i, id := range ids {
		fake.AddContact(wecomfake.Contact{ExternalUserID: id, Name: "客户" + id, FollowUsers: []wecom.FollowUser{{UserID: userID}}})
		if status, body := deliver(t, s.base+wecom.CallbackPath, wecomfake.AddExternalContact(userID, id, "", "").XML(), wecomfake.Callback{}); status != 200 {
			t.Fatalf("adding %s: %d %s", id, status, body)
		}
		waitFor(t, id+" bound", func() bool {
			v, err := s.app.Store.MemberByIdentity(ctx, "wecom", id)
			if err != nil || len(v.Bindings) != 1 {
				return false
			}
			out[i] = v.ID
			return true
		})
	}
	return out
}

func boundGuide(t *testing.T, s *started, externalID string) string {
	t.Helper()
	v, err := s.app.Store.MemberByIdentity(context.Background(), "wecom", externalID)
	if err != nil {
		t.Fatalf("member %s: %v", externalID, err)
	}
	if len(v.Bindings) != 1 {
		return ""
	}
	return v.Bindings[0].GuideID
}

// TestWeComEditContactUnifiesByPhoneWithRedis: a guide records a phone
// number (and a remark and a tag) on a customer in WeCom; the
// edit_external_contact callback makes the WeCom member the member the
// CRM already had with that phone, the binding carries the remark and the
// brand's tags the tag.
func TestWeComEditContactUnifiesByPhoneWithRedis(t *testing.T) {
	s, fake, _ := startWithWeCom(t)
	ctx := context.Background()
	crm, _, err := s.app.Store.EnsureMember(ctx, store.NewMember{Phone: "+8613900139000", Name: "王先生", BrandID: "acme",
		Identities: []store.Identity{{Channel: "crm:acme", ExternalID: "C-0042"}}})
	if err != nil {
		t.Fatal(err)
	}
	wx := addCustomers(t, s, fake, "li", "wmWang")[0]
	if wx == crm.ID {
		t.Fatal("the WeCom member is the CRM member before any phone is known")
	}

	fake.AddContact(wecomfake.Contact{ExternalUserID: "wmWang", Name: "阿王", FollowUsers: []wecom.FollowUser{{UserID: "li", Remark: "王总",
		RemarkMobiles: []string{"139 0013 9000"}, TagIDs: []string{"etVIP"}, TagNames: []string{"VIP"}}}})
	edit := wecomfake.EditExternalContact("li", "wmWang")
	edit.CreateTime = time.Now().Truncate(time.Second)
	for i := 0; i < 2; i++ { // WeCom retries: the second delivery changes nothing
		if status, _ := deliver(t, s.base+wecom.CallbackPath, edit.XML(), wecomfake.Callback{}); status != 200 {
			t.Fatalf("edit callback: %d", status)
		}
	}
	var v *store.MemberView
	waitFor(t, "the WeCom member unified with the CRM member", func() bool {
		v, err = s.app.Store.MemberByIdentity(ctx, "wecom", "wmWang")
		return err == nil && v.ID == crm.ID
	})
	waitFor(t, "member.updated", func() bool {
		evs, _ := s.app.Store.Events(ctx, store.EventFilter{MemberID: crm.ID, Type: "member.updated"})
		return len(evs) > 0
	})
	v, _ = s.app.Store.Member(ctx, wx, "acme") // the merged id resolves to the survivor
	var channels []string
	for _, id := range v.Identities {
		channels = append(channels, id.Channel+":"+id.ExternalID)
	}
	if want := []string{"crm:acme:C-0042", "wecom:wmWang"}; v.ID != crm.ID || !cmp.Equal(channels, want) {
		t.Errorf("member %d identities %v, want %d with %v", v.ID, channels, crm.ID, want)
	}
	if v.Phone != "+8613900139000" || v.Name != "王先生" {
		t.Errorf("member phone %q name %q", v.Phone, v.Name)
	}
	if len(v.Bindings) != 1 || v.Bindings[0].GuideID != "g-li" || v.Bindings[0].Remark != "王总" {
		t.Errorf("bindings = %+v, want g-li with remark 王总", v.Bindings)
	}
	if tags, _ := s.app.Store.MemberTags(ctx, crm.ID, "acme"); !slices.Contains(tags, "VIP") {
		t.Errorf("tags = %v, want VIP", tags)
	}
	time.Sleep(300 * time.Millisecond)
	if evs, _ := s.app.Store.Events(ctx, store.EventFilter{MemberID: crm.ID, Type: "member.updated"}); len(evs) != 1 ||
		!strings.Contains(evs[0].Payload, fmt.Sprintf(`"merged_into":"%d"`, crm.ID)) {
		t.Errorf("member.updated events = %+v, want one saying merged_into %d", evs, crm.ID)
	}

	// Another WeCom customer whose remark the guide gave the same number
	// (a slip of the finger) is someone else on WeCom: not merged.
	other := addCustomers(t, s, fake, "li", "wmLiu")[0]
	fake.AddContact(wecomfake.Contact{ExternalUserID: "wmLiu", Name: "刘女士", FollowUsers: []wecom.FollowUser{{UserID: "li",
		RemarkMobiles: []string{"139 0013 9000"}}}})
	edit = wecomfake.EditExternalContact("li", "wmLiu")
	edit.CreateTime = time.Now().Truncate(time.Second)
	if status, _ := deliver(t, s.base+wecom.CallbackPath, edit.XML(), wecomfake.Callback{}); status != 200 {
		t.Fatalf("edit callback: %d", status)
	}
	waitFor(t, "the second edit handled", func() bool {
		evs, _ := s.app.Store.Events(ctx, store.EventFilter{MemberID: other, Type: "member.updated"})
		return len(evs) == 1
	})
	if liu, err := s.app.Store.MemberByIdentity(ctx, "wecom", "wmLiu"); err != nil || liu.ID != other || liu.Phone != "" {
		t.Errorf("wmLiu = %+v, %v; want member %d still, without the other customer's phone", liu, err, other)
	}
}

// TestWeComContactRemovedWithRedis: a customer deleting their guide
// (del_follow_user) ends the binding and logs member.left by=member;
// adding the guide again binds anew. A guide deleting a customer
// (del_external_contact) logs by=guide; one moved by a handover
// (DELETE_BY_TRANSFER) did not leave.
func TestWeComContactRemovedWithRedis(t *testing.T) {
	s, fake, _ := startWithWeCom(t)
	ctx := context.Background()
	ids := addCustomers(t, s, fake, "li", "wmZhou", "wmSun", "wmMoved")
	url := s.base + wecom.CallbackPath
	at := time.Now().Truncate(time.Second)
	for _, ev := range []wecomfake.ContactChange{
		wecomfake.DelFollowUser("li", "wmZhou"),
		wecomfake.DelExternalContact("li", "wmSun"),
		{ChangeType: wecom.ChangeTypeDelExternalContact, UserID: "li", ExternalUserID: "wmMoved", Source: "DELETE_BY_TRANSFER"},
	} {
		ev.CreateTime = at
		if status, _ := deliver(t, url, ev.XML(), wecomfake.Callback{}); status != 200 {
			t.Fatalf("%s: %d", ev.ChangeType, status)
		}
	}
	waitFor(t, "the bindings ended", func() bool {
		return boundGuide(t, s, "wmZhou") == "" && boundGuide(t, s, "wmSun") == ""
	})
	for i, want := range []string{"member", "guide"} {
		evs, _ := s.app.Store.Events(ctx, store.EventFilter{MemberID: ids[i], Type: "member.left"})
		var p map[string]string
		if len(evs) == 1 {
			json.Unmarshal([]byte(evs[0].Payload), &p)
		}
		if len(evs) != 1 || p["by"] != want || p["guide_id"] != "g-li" {
			t.Errorf("member %d: member.left = %+v, want one by=%s guide_id=g-li", ids[i], evs, want)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if g := boundGuide(t, s, "wmMoved"); g != "g-li" {
		t.Errorf("a contact moved by a handover: bound to %q, want still g-li", g)
	}
	if evs, _ := s.app.Store.Events(ctx, store.EventFilter{MemberID: ids[2], Type: "member.left"}); len(evs) != 0 {
		t.Errorf("a contact moved by a handover left: %+v", evs)
	}

	// Re-adding binds again.
	again := wecomfake.AddExternalContact("li", "wmZhou", "", "")
	again.CreateTime = at.Add(time.Second)
	if status, _ := deliver(t, url, again.XML(), wecomfake.Callback{}); status != 200 {
		t.Fatal(status)
	}
	waitFor(t, "bound again and joined again", func() bool {
		evs, _ := s.app.Store.Events(ctx, store.EventFilter{MemberID: ids[0], Type: "member.joined"})
		return boundGuide(t, s, "wmZhou") == "g-li" && len(evs) == 2
	})
}

// startHandover seeds guides wang and zhao in li's store, three customers
// of li, and shortens the handover checks.
func startHandover(t *testing.T) (*started, *wecomfake.Server, string) {
	t.Helper()
	old := handoverPollInterval
	handoverPollInterval = 300 * time.Millisecond
	t.Cleanup(func() { handoverPollInterval = old })
	s, fake, tok := startWithWeCom(t)
	for _, body := range []string{
		`{"id":"g-wang","store_id":"sh-1","name":"王芳","wecom_userid":"wang"}`,
		`{"id":"g-zhao","store_id":"sh-1","name":"赵敏","wecom_userid":"zhao"}`,
	} {
		if code, resp := request(t, "POST", s.base+"/api/v1/guides", tok, body); code != 201 {
			t.Fatalf("seeding a guide: %d %s", code, resp)
		}
	}
	fake.AddEmployees("li", "wang", "zhao")
	addCustomers(t, s, fake, "li", "wmA", "wmB", "wmC")
	return s, fake, tok
}

// handovers lists handovers through the admin API.
func handovers(t *testing.T, s *started, tok, query string) []store.Handover {
	t.Helper()
	code, body := request(t, "GET", s.base+"/api/v1/handovers?"+query, tok, "")
	if code != 200 {
		t.Fatalf("GET /api/v1/handovers?%s: %d %s", query, code, body)
	}
	var out struct{ Handovers []store.Handover }
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	return out.Handovers
}

// customersTransferred counts, per customer, the transfers WeCom accepted.
func customersTransferred(fake *wecomfake.Server) map[string]int {
	n := map[string]int{}
	for _, tr := range fake.Transfers() {
		for id, code := range tr.Results {
			if code == 0 {
				n[id]++
			}
		}
	}
	return n
}

// TestWeComGuideLeftHandoverWithRedis: li leaves the corp (change_contact
// delete_user); their three customers are handed to the colleagues of
// the store, least loaded first, through resigned/transfer_customer (not
// the transfer of serving employees); once WeCom reports the takeovers
// done (transfer_result status 1) the handovers are transferred and the
// members stay bound to their new guides.
func TestWeComGuideLeftHandoverWithRedis(t *testing.T) {
	s, fake, tok := startHandover(t)
	ctx := context.Background()
	resign := fake.Resign("li")
	for i := 0; i < 2; i++ { // a retried delivery starts nothing twice
		if status, _ := deliver(t, s.base+wecom.CallbackPath, resign.XML(), wecomfake.Callback{}); status != 200 {
			t.Fatalf("delete_user: %d", status)
		}
	}
	waitFor(t, "three handovers requested", func() bool { return len(handovers(t, s, tok, "state=requested")) == 3 })
	// Least loaded first, ties by id: two to one of the colleagues, one
	// to the other. Which customer goes where depends on the order
	// concurrent workers claim the handovers, so the test asks that
	// WeCom was asked exactly what scrmgw bound, each customer once.
	takeover := map[string]string{} // customer → takeover user at WeCom
	for _, tr := range fake.Transfers() {
		if !tr.Resigned || tr.HandoverUserID != "li" {
			t.Errorf("transfer %+v, want a resigned transfer from li", tr)
		}
		for _, id := range tr.ExternalUserIDs {
			if _, dup := takeover[id]; dup {
				t.Errorf("%s asked twice", id)
			}
			takeover[id] = tr.TakeoverUserID
			if tr.Results[id] != 0 {
				t.Errorf("%s: errcode %d", id, tr.Results[id])
			}
		}
	}
	perGuide := map[string]int{}
	for _, id := range []string{"wmA", "wmB", "wmC"} {
		to := takeover[id]
		if to != "wang" && to != "zhao" {
			t.Fatalf("%s handed to %q at WeCom, want wang or zhao (transfers %+v)", id, to, fake.Transfers())
		}
		perGuide[to]++
		if got := boundGuide(t, s, id); got != "g-"+to {
			t.Errorf("%s bound to %q, but WeCom was asked to hand them to %s", id, got, to)
		}
	}
	if len(takeover) != 3 || perGuide["wang"] == 3 || perGuide["zhao"] == 3 {
		t.Errorf("handed over %v, want wmA, wmB, wmC spread over wang and zhao", takeover)
	}
	if n := fake.CallCount(wecomfake.PathTransferCustomer); n != 0 {
		t.Errorf("%d transfer_customer calls (serving employees' transfer), want 0", n)
	}
	if g, _ := s.app.Store.Guide(ctx, "g-li", ""); g.Active || g.LeftAt == nil {
		t.Errorf("guide li = %+v, want left", g)
	}

	fake.CompleteTransfers()
	waitFor(t, "the handovers transferred", func() bool { return len(handovers(t, s, tok, "state=transferred")) == 3 })
	if calls := fake.CallCount(wecomfake.PathResignedTransferResult); calls == 0 {
		t.Error("transfer_result was never asked")
	}
	if diff := cmp.Diff(map[string]int{"wmA": 1, "wmB": 1, "wmC": 1}, customersTransferred(fake)); diff != "" {
		t.Errorf("customers transferred (-want +got):\n%s", diff)
	}
	for id, g := range takeover {
		if to, status := fake.TransferStatus(id); to != g || status != wecomfake.TransferStatusDone {
			t.Errorf("%s at WeCom: %s status %d, want taken over by %s", id, to, status, g)
		}
	}

	// WeCom reports the takeover as the new guide adding the customer:
	// not a join.
	v, _ := s.app.Store.MemberByIdentity(ctx, "wecom", "wmA")
	a := takeover["wmA"] // wmA's new guide
	add := wecomfake.AddExternalContact(a, "wmA", "", "")
	add.CreateTime = time.Now().Add(time.Second).Truncate(time.Second)
	if status, _ := deliver(t, s.base+wecom.CallbackPath, add.XML(), wecomfake.Callback{}); status != 200 {
		t.Fatal(status)
	}
	waitFor(t, "the takeover callback handled", func() bool {
		rows, _ := s.app.Store.PendingInbox(ctx, time.Now().Add(time.Hour), 10)
		return len(rows) == 0
	})
	if evs, _ := s.app.Store.Events(ctx, store.EventFilter{MemberID: v.ID, Type: "member.joined"}); len(evs) != 1 {
		t.Errorf("%d member.joined events of wmA after the takeover, want 1 (their first)", len(evs))
	}
	if g := boundGuide(t, s, "wmA"); g != "g-"+a {
		t.Errorf("wmA bound to %q after the takeover callback, want g-%s", g, a)
	}

	// Later the customer deletes their new guide and adds them again: that add is a
	// join (bound, member.joined), not the takeover's.
	del := wecomfake.DelFollowUser(a, "wmA")
	del.CreateTime = time.Now().Add(2 * time.Second).Truncate(time.Second)
	if status, _ := deliver(t, s.base+wecom.CallbackPath, del.XML(), wecomfake.Callback{}); status != 200 {
		t.Fatal(status)
	}
	waitFor(t, "wmA unbound", func() bool { return boundGuide(t, s, "wmA") == "" })
	again := wecomfake.AddExternalContact(a, "wmA", "", "")
	again.CreateTime = time.Now().Add(3 * time.Second).Truncate(time.Second)
	if status, _ := deliver(t, s.base+wecom.CallbackPath, again.XML(), wecomfake.Callback{}); status != 200 {
		t.Fatal(status)
	}
	waitFor(t, "wmA joined their guide again", func() bool {
		evs, _ := s.app.Store.Events(ctx, store.EventFilter{MemberID: v.ID, Type: "member.joined"})
		return len(evs) == 2 && boundGuide(t, s, "wmA") == "g-"+a
	})
}

// TestWeComHandoverGivesUpWithRedis: WeCom never reports the takeover of
// a customer (the request stays waiting): after handover give-up time the
// handover fails for an operator, saying why, instead of being checked
// for ever; the member stays bound to their new guide.
func TestWeComHandoverGivesUpWithRedis(t *testing.T) {
	old := handoverGiveUp
	handoverGiveUp = 3 * time.Second
	t.Cleanup(func() { handoverGiveUp = old })
	s, fake, tok := startHandover(t)
	resign := fake.Resign("li")
	if status, _ := deliver(t, s.base+wecom.CallbackPath, resign.XML(), wecomfake.Callback{}); status != 200 {
		t.Fatalf("delete_user: %d", status)
	}
	waitFor(t, "three handovers requested", func() bool { return len(handovers(t, s, tok, "state=requested")) == 3 })
	var failed []store.Handover
	waitFor(t, "the handovers given up", func() bool {
		failed = handovers(t, s, tok, "state=failed")
		return len(failed) == 3
	})
	for _, h := range failed {
		if !strings.Contains(h.Reason, "did not report the takeover within 3s") {
			t.Errorf("handover of %s failed with %q", h.ExternalUserID, h.Reason)
		}
	}
	if g := boundGuide(t, s, "wmB"); g != "g-zhao" {
		t.Errorf("wmB bound to %q, want still g-zhao", g)
	}
	// A bad filter is the API's usual 400.
	if code, body := request(t, "GET", s.base+"/api/v1/handovers?state=lost", tok, ""); code != 400 ||
		!strings.Contains(body, `"code":"invalid_argument"`) || !strings.Contains(body, "state must be") {
		t.Errorf("GET /api/v1/handovers?state=lost: %d %s, want 400 invalid_argument", code, body)
	}
}

// TestWeComHandoverRefusedWithRedis: one customer refuses their new guide
// (the transfer_fail callback): they are bound to the next guide of the
// store and handed to them, and the record says why. A customer WeCom
// moved within 90 days cannot be handed over: the handover fails for an
// operator, the member stays bound to the new guide in scrmgw.
func TestWeComHandoverRefusedWithRedis(t *testing.T) {
	s, fake, tok := startHandover(t)
	fake.MarkTransferred("wmC", time.Now().Add(-10*24*time.Hour))
	if status, _ := deliver(t, s.base+wecom.CallbackPath, fake.Resign("li").XML(), wecomfake.Callback{}); status != 200 {
		t.Fatal(status)
	}
	waitFor(t, "two requested, one failed", func() bool {
		return len(handovers(t, s, tok, "state=requested")) == 2 && len(handovers(t, s, tok, "state=failed")) == 1
	})
	failed := handovers(t, s, tok, "state=failed")[0]
	if failed.ExternalUserID != "wmC" || failed.ErrCode != 40128 || !strings.Contains(failed.Reason, "90 days") {
		t.Errorf("failed handover = %+v, want wmC refused by the 90-day rule", failed)
	}
	if g := boundGuide(t, s, "wmC"); g != "g-wang" {
		t.Errorf("wmC bound to %q, want g-wang (kept in scrmgw)", g)
	}

	ev, ok := fake.RefuseTransfer("wmB", "customer_refused")
	if !ok {
		t.Fatal("wmB was not waiting for a takeover")
	}
	ev.CreateTime = time.Now().Truncate(time.Second)
	if status, _ := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 {
		t.Fatal(status)
	}
	waitFor(t, "wmB handed to wang", func() bool {
		to, st := fake.TransferStatus("wmB")
		return to == "wang" && st == wecomfake.TransferStatusWaiting
	})
	if g := boundGuide(t, s, "wmB"); g != "g-wang" {
		t.Errorf("wmB bound to %q, want g-wang after zhao was refused", g)
	}
	fake.CompleteTransfers()
	waitFor(t, "two transferred", func() bool { return len(handovers(t, s, tok, "state=transferred")) == 2 })
	var b store.Handover
	for _, h := range handovers(t, s, tok, "state=transferred") {
		if h.ExternalUserID == "wmB" {
			b = h
		}
	}
	if b.ToGuideID != "g-wang" || b.Tried != "g-zhao" || !strings.Contains(b.Reason, "refused") || !strings.Contains(b.Reason, "赵敏") {
		t.Errorf("wmB's handover = %+v, want taken over by g-wang after zhao was refused", b)
	}
	if diff := cmp.Diff(map[string]int{"wmA": 1, "wmB": 2}, customersTransferred(fake)); diff != "" {
		t.Errorf("customers transferred (-want +got):\n%s", diff)
	}
}

// TestWeComHandoverResumesWithRedis: WeCom fails the first request (system
// busy) and loses the answer of the second after carrying it out; the
// handover is resumed until every customer is settled, and no customer
// is asked of WeCom twice once it took them.
func TestWeComHandoverResumesWithRedis(t *testing.T) {
	s, fake, tok := startHandover(t)
	fake.FailNext(wecomfake.PathResignedTransferCustomer, 1, wecomfake.CodeSystemBusy, "system busy")
	fake.FailHTTPAfterNext(wecomfake.PathResignedTransferCustomer, 1, 502)
	if status, _ := deliver(t, s.base+wecom.CallbackPath, fake.Resign("li").XML(), wecomfake.Callback{}); status != 200 {
		t.Fatal(status)
	}
	waitFor(t, "three handovers requested", func() bool { return len(handovers(t, s, tok, "state=requested")) == 3 })
	// Calls: busy (nothing done), wang's (done, answer lost), zhao's.
	if n := fake.CallCount(wecomfake.PathResignedTransferCustomer); n != 3 {
		t.Errorf("%d resigned/transfer_customer calls, want 3", n)
	}
	if diff := cmp.Diff(map[string]int{"wmA": 1, "wmB": 1, "wmC": 1}, customersTransferred(fake)); diff != "" {
		t.Errorf("customers transferred (-want +got):\n%s", diff)
	}
	fake.CompleteTransfers()
	waitFor(t, "the handovers transferred", func() bool { return len(handovers(t, s, tok, "state=transferred")) == 3 })
	time.Sleep(time.Second) // further polls ask nothing again
	if n := fake.CallCount(wecomfake.PathResignedTransferCustomer); n != 3 {
		t.Errorf("%d resigned/transfer_customer calls after the takeover, want 3", n)
	}
}

// TestWeComHandoverTakeoverFullWithRedis: WeCom refuses a new guide who
// holds as many customers as allowed (40099): the member goes to the next
// guide of the store, and the record keeps who was refused and why.
func TestWeComHandoverTakeoverFullWithRedis(t *testing.T) {
	s, fake, tok := startHandover(t)
	fake.SetContactLimit("zhao", 0)
	if status, _ := deliver(t, s.base+wecom.CallbackPath, fake.Resign("li").XML(), wecomfake.Callback{}); status != 200 {
		t.Fatal(status)
	}
	waitFor(t, "three handovers requested", func() bool { return len(handovers(t, s, tok, "state=requested")) == 3 })
	want := []wecomfake.TransferRequest{
		{Resigned: true, HandoverUserID: "li", TakeoverUserID: "wang", ExternalUserIDs: []string{"wmA", "wmC"}, Results: map[string]int{"wmA": 0, "wmC": 0}},
		{Resigned: true, HandoverUserID: "li", TakeoverUserID: "zhao", ExternalUserIDs: []string{"wmB"}, Results: map[string]int{"wmB": wecomfake.CodeContactLimit}},
		{Resigned: true, HandoverUserID: "li", TakeoverUserID: "wang", ExternalUserIDs: []string{"wmB"}, Results: map[string]int{"wmB": 0}},
	}
	if diff := cmp.Diff(want, fake.Transfers()); diff != "" {
		t.Errorf("transfers at WeCom (-want +got):\n%s", diff)
	}
	if g := boundGuide(t, s, "wmB"); g != "g-wang" {
		t.Errorf("wmB bound to %q, want g-wang", g)
	}
	for _, h := range handovers(t, s, tok, "guide_id=g-li") {
		if h.ExternalUserID == "wmB" && (h.Tried != "g-zhao" || h.ErrCode != wecomfake.CodeContactLimit || !strings.Contains(h.Reason, "as many customers")) {
			t.Errorf("wmB's handover = %+v, want zhao tried and refused for the limit", h)
		}
	}
}
