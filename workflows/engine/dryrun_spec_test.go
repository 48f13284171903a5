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
