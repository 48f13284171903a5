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

// joinWeComMember has wmID add guide li (a signed add_external_contact)
// and waits until they are a member of acme.
func joinWeComMember(t *testing.T, s *started, fake *wecomfake.Server, id, name string, tagIDs ...string) *store.MemberView {
	t.Helper()
	fake.AddContact(wecomfake.Contact{ExternalUserID: id, Name: name,
		FollowUsers: []wecom.FollowUser{{UserID: "li", State: "s:sh-1", TagIDs: tagIDs}}})
	ev := wecomfake.AddExternalContact("li", id, "s:sh-1", "")
	if status, body := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 || body != "success" {
		t.Fatalf("add_external_contact: %d %q", status, body)
	}
	var v *store.MemberView
	waitFor(t, "member "+id, func() bool {
		var err error
		v, err = s.app.Store.MemberByIdentity(context.Background(), "wecom", id)
		return err == nil && len(v.Bindings) > 0
	})
	return v
}

func memberTags(t *testing.T, s *started, id int64) []string {
	t.Helper()
	tags, err := s.app.Store.MemberTags(context.Background(), id, "acme")
	if err != nil {
		t.Fatal(err)
	}
	return tags
}

func eventTags(t *testing.T, s *started, id int64, typ string) []string {
	t.Helper()
	evs, err := s.app.Store.Events(context.Background(), store.EventFilter{MemberID: id, Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		var p struct{ Tag string }
		json.Unmarshal([]byte(e.Payload), &p)
		out = append(out, p.Tag)
	}
	slices.Sort(out)
	return out
}

func edited(t *testing.T, s *started, id string) {
	t.Helper()
	ev := wecomfake.EditExternalContact("li", id)
	for range 2 { // WeCom retries: one delivery
		if status, body := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 || body != "success" {
			t.Fatalf("edit_external_contact: %d %q", status, body)
		}
	}
}

// TestWeComTagsBothWaysWithRedis is the journey: a guide puts
// the corp tag VIP on a customer in WeCom; the member gets the tag, and
// member.tagged starts a workflow whose tag step marks "VIP跟进" on the
// customer in WeCom (created in the scrmgw group, marked by the member's
// guide). The guide then takes VIP off: the member loses it, with
// member.untagged. The workflow's tag is not taken off by it.
func TestWeComTagsBothWaysWithRedis(t *testing.T) {
	s, fake, tok := startWithWeCom(t)
	vip := fake.AddCorpTag("客户等级", "VIP")
	v := joinWeComMember(t, s, fake, "wmChen", "陈女士")
	wf := `name: vip-follow-up
trigger:
  event: member.tagged
  filter: event.tag == "VIP"
entry:
  brand: acme
  re_entry: never
steps:
  - id: mark
    tag: VIP跟进
`
	if code, body := putWorkflow(t, s, tok, "acme", "vip-follow-up", wf); code != 201 {
		t.Fatalf("PUT workflow: %d %s", code, body)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/workflows/vip-follow-up/enable?brand=acme", tok, ""); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}

	fake.SetCustomerTags("wmChen", "li", vip)
	edited(t, s, "wmChen")
	waitFor(t, "the workflow's tag marked in WeCom", func() bool { return len(fake.MarkTags()) > 0 })
	waitFor(t, "the member's tags", func() bool { return len(memberTags(t, s, v.ID)) == 2 })
	if got := memberTags(t, s, v.ID); !slices.Equal(got, []string{"VIP", "VIP跟进"}) {
		t.Errorf("member tags = %v", got)
	}
	var followUp wecomfake.CorpTag
	for _, tg := range fake.CorpTags() {
		if tg.Name == "VIP跟进" {
			followUp = tg
		}
	}
	if followUp.ID == "" || followUp.GroupName != "scrmgw" {
		t.Fatalf("VIP跟进 in WeCom's library: %+v", fake.CorpTags())
	}
	marks := fake.MarkTags()
	if len(marks) != 1 {
		t.Fatalf("%d mark_tag calls, want 1", len(marks))
	}
	var body map[string]any
	json.Unmarshal(marks[0].Body, &body)
	if d := cmp.Diff(map[string]any{"userid": "li", "external_userid": "wmChen", "add_tag": []any{followUp.ID}}, body); d != "" {
		t.Errorf("mark_tag (-want +got):\n%s", d)
	}
	if got := fake.CustomerTags("wmChen", "li"); !slices.Equal(got, []string{"VIP", "VIP跟进"}) {
		t.Errorf("li's tags on the customer in WeCom = %v", got)
	}
	if got := eventTags(t, s, v.ID, "member.tagged"); !slices.Equal(got, []string{"VIP", "VIP跟进"}) {
		t.Errorf("member.tagged for %v", got)
	}

	// The guide takes VIP off in WeCom.
	fake.SetCustomerTags("wmChen", "li", followUp.ID)
	time.Sleep(1100 * time.Millisecond) // another CreateTime: another delivery
	edited(t, s, "wmChen")
	waitFor(t, "VIP removed", func() bool { return !slices.Contains(memberTags(t, s, v.ID), "VIP") })
	if got := memberTags(t, s, v.ID); !slices.Equal(got, []string{"VIP跟进"}) {
		t.Errorf("member tags after the guide took VIP off = %v", got)
	}
	if got := eventTags(t, s, v.ID, "member.untagged"); !slices.Equal(got, []string{"VIP"}) {
		t.Errorf("member.untagged for %v, want [VIP]", got)
	}
}

// TestWeComTagLibraryChangesWithRedis: an administrator renames a corp
// tag and deletes another in WeCom; the change_external_tag callbacks
// (delivered twice, as WeCom retries) rename and remove them on the
// members who have them, once, and an event about a tag scrmgw never
// saw reads the library rather than failing.
func TestWeComTagLibraryChangesWithRedis(t *testing.T) {
	s, fake, _ := startWithWeCom(t)
	gold := fake.AddCorpTag("会员", "金卡")
	silver := fake.AddCorpTag("会员", "银卡")
	v := joinWeComMember(t, s, fake, "wmChen", "陈女士", gold, silver)
	fake.SetCustomerTags("wmChen", "li", gold, silver)
	edited(t, s, "wmChen")
	waitFor(t, "the guide's tags", func() bool { return len(memberTags(t, s, v.ID)) == 2 })

	fake.RenameCorpTagByAdmin(gold, "金卡会员")
	fake.DeleteCorpTagByAdmin(silver)
	for _, ev := range []wecomfake.TagChange{
		{ID: gold, TagType: "tag", ChangeType: "update"},
		{ID: silver, TagType: "tag", ChangeType: "delete"},
		{ID: "etNeverSeen", TagType: "tag", ChangeType: "create"},
	} {
		for range 2 {
			if status, body := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 || body != "success" {
				t.Fatalf("change_external_tag: %d %q", status, body)
			}
		}
	}
	waitFor(t, "the rename", func() bool { return slices.Equal(memberTags(t, s, v.ID), []string{"金卡会员"}) })
	time.Sleep(500 * time.Millisecond) // let any repeat surface
	if got := eventTags(t, s, v.ID, "member.untagged"); !slices.Equal(got, []string{"金卡", "银卡"}) {
		t.Errorf("member.untagged for %v", got)
	}
	if got := eventTags(t, s, v.ID, "member.tagged"); !slices.Equal(got, []string{"金卡", "金卡会员", "银卡"}) {
		t.Errorf("member.tagged for %v", got)
	}
	rows, err := s.app.Store.ChannelTags(context.Background(), "wecom")
	if err != nil || len(rows) != 1 || rows[0].Name != "金卡会员" {
		t.Errorf("stored library = %+v, %v", rows, err)
	}
}

// TestWeComTagsAPIWithRedis: POST /members/:id/tags marks the tags on
// the member's WeCom contact through their guide, then writes them; a
// tag longer than WeCom allows is refused with nothing written anywhere.
func TestWeComTagsAPIWithRedis(t *testing.T) {
	s, fake, tok := startWithWeCom(t)
	old := fake.AddCorpTag("会员", "老客")
	v := joinWeComMember(t, s, fake, "wmChen", "陈女士")
	fake.SetCustomerTags("wmChen", "li", old)
	edited(t, s, "wmChen")
	waitFor(t, "the guide's tag", func() bool { return len(memberTags(t, s, v.ID)) == 1 })

	url := fmt.Sprintf("%s/api/v1/members/%d/tags", s.base, v.ID)
	code, body := request(t, "POST", url, tok, `{"brand":"acme","add":["生日月"],"remove":["老客"],"key":"crm-1"}`)
	if code != 200 {
		t.Fatalf("POST tags: %d %s", code, body)
	}
	if d := cmp.Diff(`{"added":["生日月"],"removed":["老客"]}`, body); d != "" {
		t.Errorf("answer (-want +got):\n%s", d)
	}
	if got := fake.CustomerTags("wmChen", "li"); !slices.Equal(got, []string{"生日月"}) {
		t.Errorf("tags in WeCom = %v", got)
	}
	m := fake.MarkTags()
	if len(m) != 1 || m[0].UserID != "li" || len(m[0].AddTag) != 1 || !slices.Equal(m[0].RemoveTag, []string{old}) {
		t.Errorf("mark_tag calls = %+v", m)
	}
	if got := memberTags(t, s, v.ID); !slices.Equal(got, []string{"生日月"}) {
		t.Errorf("member tags = %v", got)
	}

	calls := len(fake.Calls())
	long := strings.Repeat("长", 31)
	code, body = request(t, "POST", url, tok, `{"brand":"acme","add":["`+long+`"]}`)
	if code != 400 || !strings.Contains(body, "WeCom allows 30") {
		t.Errorf("a 31-character tag: %d %s", code, body)
	}
	if got := memberTags(t, s, v.ID); !slices.Equal(got, []string{"生日月"}) {
		t.Errorf("member tags after a refused tag = %v", got)
	}
	if n := len(fake.Calls()); n != calls {
		t.Errorf("a refused tag made %d WeCom calls", n-calls)
	}
}

// TestWeComTagResyncWithRedis: tags that drifted apart while callbacks
// were lost are reconciled page by page: WeCom's tags become the
// member's, a corp tag the guide no longer has comes off, and a tag of
// scrmgw WeCom never had is marked there; the report says which, and a
// second page resumes after the first.
func TestWeComTagResyncWithRedis(t *testing.T) {
	s, fake, tok := startWithWeCom(t)
	ctx := context.Background()
	vip := fake.AddCorpTag("客户等级", "VIP")
	old := fake.AddCorpTag("客户等级", "老客")
	chen := joinWeComMember(t, s, fake, "wmChen", "陈女士")
	wang := joinWeComMember(t, s, fake, "wmWang", "王先生")
	// Drift, with no callback: VIP set in WeCom; 老客 taken off in WeCom
	// after scrmgw had it; "imported" set in scrmgw only.
	fake.SetCustomerTags("wmChen", "li", vip)
	if _, err := s.app.Store.AddMemberTags(ctx, chen.ID, "acme", []string{"老客"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.Store.AddMemberTags(ctx, wang.ID, "acme", []string{"imported"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	_ = old

	url := s.base + "/api/v1/channels/wecom/tags/resync"
	code, body := request(t, "POST", url, tok, `{"brand":"acme","limit":1,"restart":true}`)
	if code != 200 {
		t.Fatalf("resync page 1: %d %s", code, body)
	}
	var r1, r2 struct {
		Members, Tagged, Untagged, Marked int
		Diffs                             []struct {
			MemberID int64  `json:"member_id"`
			Tag      string `json:"tag"`
			Action   string `json:"action"`
		}
		After int64
		Done  bool
	}
	json.Unmarshal([]byte(body), &r1)
	if r1.Members != 1 || r1.Tagged != 1 || r1.Untagged != 1 || r1.Marked != 0 || r1.Done || r1.After != chen.ID {
		t.Errorf("page 1 = %s", body)
	}
	code, body = request(t, "POST", url, tok, `{"brand":"acme","limit":1}`)
	if code != 200 {
		t.Fatalf("resync page 2: %d %s", code, body)
	}
	json.Unmarshal([]byte(body), &r2)
	if r2.Members != 1 || r2.Marked != 1 || r2.After != wang.ID || len(r2.Diffs) != 1 || r2.Diffs[0].Tag != "imported" || r2.Diffs[0].Action != "marked" {
		t.Errorf("page 2 = %s", body)
	}
	if got := memberTags(t, s, chen.ID); !slices.Equal(got, []string{"VIP"}) {
		t.Errorf("chen's tags = %v", got)
	}
	if got := fake.CustomerTags("wmWang", "li"); !slices.Equal(got, []string{"imported"}) {
		t.Errorf("wang's tags in WeCom = %v", got)
	}
	code, body = request(t, "POST", url, tok, `{"brand":"acme","limit":1}`)
	if code != 200 || !strings.Contains(body, `"done":true`) || !strings.Contains(body, `"members":0`) {
		t.Errorf("page 3: %d %s", code, body)
	}
}
