package workflows

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/templates"
)

// TestSendKinds: a send step's template must render, on each channel the
// step may use, a kind the channel sends to members. Here WeCom sends
// textcards to guides (its app messages) but not to members, so a
// template with a WeCom textcard loads, and a workflow sending it to a
// member is refused at the template id, for channel: wecom and for
// channel: member (which may be WeCom); on DingTalk alone it goes.
func TestSendKinds(t *testing.T) {
	reg := templates.NewRegistry(templates.WithChannels(templates.Channels{
		"wecom":    {"text", "news", "miniprogram", "textcard"},
		"dingtalk": {"text", "markdown", "news", "action_card", "image"},
	}))
	card := "locales:\n  zh:\n    default: 您的积分快到期了\n    wecom:\n      kind: textcard\n      title: 积分到期提醒\n" +
		"      text: 您有积分即将到期\n      url: https://shop.example.com/points\n"
	if err := reg.Add("points_card.yaml", []byte(card)); err != nil {
		t.Fatal(err)
	}
	opts := Options{Templates: reg, Channels: []string{"wecom", "dingtalk"}, MemberKinds: map[string][]string{
		"wecom":    {"text", "news", "miniprogram"},
		"dingtalk": {"text", "markdown", "news", "action_card", "image"},
	}}
	tests := []struct {
		name    string
		channel string
		want    []string
	}{
		{"on wecom", "wecom", []string{`recall.yaml:9:11: steps[0].send: template "points_card" renders a textcard message on wecom, which wecom cannot send to a member; it sends text, news, miniprogram`}},
		{"on the member's channel", "member", []string{`recall.yaml:9:11: steps[0].send: template "points_card" renders a textcard message on wecom, which wecom cannot send to a member; it sends text, news, miniprogram`}},
		{"on dingtalk", "dingtalk", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("recall.yaml", []byte(head+"  - id: remind\n    send: points_card\n    channel: "+tc.channel+"\n"), opts)
			var got []string
			var l ErrorList
			if errors.As(err, &l) {
				for _, e := range l {
					got = append(got, e.Error())
				}
			} else if err != nil {
				t.Fatalf("error %T: %v", err, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	// Without MemberKinds, kinds are not checked.
	if _, err := Load("recall.yaml", []byte(head+"  - id: remind\n    send: points_card\n"), Options{Templates: reg}); err != nil {
		t.Errorf("without member kinds: %v", err)
	}
}

// TestSendGroupsChecks: a send_groups step's template must render, on
// each channel with customer groups, a kind it sends them, show nothing
// of one member, and some channel must have groups; to: is guide or
// store. Each problem at its place.
func TestSendGroupsChecks(t *testing.T) {
	reg := testTemplates(t)
	opts := Options{Templates: reg, Channels: []string{"wecom", "dingtalk"},
		GroupKinds: map[string][]string{"wecom": {"text", "news", "miniprogram", "image", "file"}}}
	noGroups := Options{Templates: reg, Channels: []string{"dingtalk"}, GroupKinds: map[string][]string{}}
	tests := []struct {
		name string
		opts Options
		step string
		want []string
	}{
		{"store's groups", opts, "  - send_groups: group_member_day\n    to: store\n", nil},
		{"guide's groups by default", opts, "  - send_groups: group_member_day\n", nil},
		{"misspelt to", opts, "  - send_groups: group_member_day\n    to: shop\n",
			[]string{`recall.yaml:9:9: steps[0].to: unknown send_groups target "shop": use "guide" or "store"`}},
		{"unknown template", opts, "  - send_groups: group_member_dya\n",
			[]string{`recall.yaml:8:18: steps[0].send_groups: unknown template "group_member_dya" (did you mean "group_member_day"?)`}},
		{"a member's template", opts, "  - send_groups: recall\n",
			[]string{`recall.yaml:8:18: steps[0].send_groups: template "recall" shows .Member, but a message to customer groups is read by everyone in them: it may show the store, the guide, the brand and a live session, nothing of one member`}},
		{"no channel with groups", noGroups, "  - send_groups: group_member_day\n",
			[]string{`recall.yaml:8:18: steps[0].send_groups: none of the gateway's channels (dingtalk) has customer groups to send to (WeCom does)`}},
		{"a send's field", opts, "  - send_groups: group_member_day\n    coupon: X\n",
			[]string{`recall.yaml:9:5: steps[0].coupon: a send_groups step has no coupon (send steps do)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Load("recall.yaml", []byte(head+tc.step), tc.opts)
			var got []string
			var l ErrorList
			if errors.As(err, &l) {
				for _, e := range l {
					got = append(got, e.Error())
				}
			} else if err != nil {
				t.Fatalf("error %T: %v", err, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if err == nil && (w.Steps[0].Kind != KindSendGroups || w.Steps[0].SendGroups.Template != "group_member_day") {
				t.Errorf("step = %+v", w.Steps[0])
			}
		})
	}
}
