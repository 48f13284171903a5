package engine

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/adapters"
)

// TestDryRunShowsRequests: each send shows the request its channel's
// spec previews for the message the engine would hand over (recipient,
// guide, idempotency key, kind, text and fields), and a channel that
// refuses the message says why.
func TestDryRunShowsRequests(t *testing.T) {
	wf := loadWorkflow(t, exampleWorkflowText(t, "new-member-welcome"))
	lily := MemberFixture{ID: 7, Name: "Lily", PhoneTail: "8000", GuideID: "g1", GuideName: "小王", Channel: "wecom",
		ChannelID: "wmLily", StoreName: "静安店", StoreTimeZone: "Asia/Shanghai"}
	var got []*adapters.Outbound
	opts := dryRunOptions(t)
	opts.Specs = []adapters.Spec{{Name: "wecom", ThroughGuide: true, Preview: func(m *adapters.Outbound) (*adapters.Request, error) {
		got = append(got, m)
		if m.Kind == "text" {
			return nil, errors.New("no texts today")
		}
		b, _ := json.Marshal(map[string]string{"to": m.To, "via": m.Via, "key": m.IdempotencyKey, "title": m.Fields["title"]})
		return &adapters.Request{API: "externalcontact/add_msg_template", Body: b}, nil
	}}}
	tl, err := DryRun(opts, wf, lily, nil, at(3, 22, 30))
	if err != nil {
		t.Fatal(err)
	}
	text := timelineText(t, tl)
	for _, want := range []string{
		`    request externalcontact/add_msg_template: {"key":"wf:7:coupon:1","title":"camellia新人专享：¥0优惠券","to":"wmLily","via":"g1"}`,
		"    request: none, wecom cannot send it: no texts today",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("timeline lacks %q:\n%s", want, text)
		}
	}
	if len(got) != 2 || got[0].Kind != "news" || got[0].ToParty != adapters.PartyMember || got[1].Kind != "text" {
		t.Errorf("previewed %+v", got)
	}
}

// TestDryRunSendGroups: a send_groups step shows, after the send rules'
// hours, the message for the store's groups as the first channel with
// groups renders it, and what it would do; a member without a guide has
// no groups to send to.
func TestDryRunSendGroups(t *testing.T) {
	wf := loadWorkflow(t, `name: member-day
trigger:
  event: x.member_day
entry:
  brand: acme
goal: none
steps:
  - id: announce
    send_groups: group_member_day
    to: store
`)
	opts := dryRunOptions(t)
	opts.Specs = []adapters.Spec{{Name: "dingtalk"}, {Name: "wecom", GroupKinds: []string{"text"}}}
	lily := MemberFixture{ID: 7, Name: "Lily", GuideID: "g1", GuideName: "小王", StoreID: "sh-1", StoreName: "静安店",
		BrandName: "ACME", StoreTimeZone: "Asia/Shanghai"}
	tl, err := DryRun(opts, wf, lily, nil, at(3, 22, 30))
	if err != nil {
		t.Fatal(err)
	}
	text := timelineText(t, tl)
	for _, want := range []string{
		"announce (send_groups)       held by the send rules until 2025-03-04 09:0",
		"announce (send_groups)       sends group_member_day to the customer groups of store 静安店 through their owners",
		"    [wecom text, zh/default]\n    | 静安店会员日：本周六到店出示ACME会员码，全场95折。",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("timeline lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "Lily") {
		t.Errorf("the group message shows the member:\n%s", text)
	}
	lily.GuideID = ""
	tl, err = DryRun(opts, wf, lily, nil, at(3, 12, 0))
	if err != nil {
		t.Fatal(err)
	}
	if text := timelineText(t, tl); !strings.Contains(text, "member has no guide, so no store groups: nothing sent") {
		t.Errorf("without a guide:\n%s", text)
	}
}
