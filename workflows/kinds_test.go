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
