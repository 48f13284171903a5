package bots

import (
	"context"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// countingDirectory is the store as the bots' Directory, counting the
// member reads by identity.
type countingDirectory struct {
	*store.Store
	reads int
}

func (d *countingDirectory) MemberByIdentity(ctx context.Context, channel, externalID string) (*store.MemberView, error) {
	d.reads++
	return d.Store.MemberByIdentity(ctx, channel, externalID)
}

// A message that carries its sender's member (the gateway read it to
// attribute the message) is answered from it: the same answers as
// without, and the member is not read again, with handing over and
// joining on (the bot's first read) and for each answer that needs the
// member.
func TestMemberBotAnswersFromTheMemberItCarries(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		d := setupDeps(t, s)
		dir := &countingDirectory{Store: s}
		d.Directory, d.Handoffs = dir, s
		bot := MemberBot(d)
		chen, err := s.MemberByIdentity(ctx, "wecom", "wmChen")
		if err != nil {
			t.Fatal(err)
		}
		points := int64(1280)
		if err := s.SetMembership(ctx, chen.ID, "camellia", "gold", &points); err != nil {
			t.Fatal(err)
		}
		if chen, err = s.MemberByIdentity(ctx, "wecom", "wmChen"); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ text, want string }{
			{"我的积分", "积分：1280，会员等级：gold"},
			{"我的导购是谁？", "李娜"},
			{"退订", "已为您退订"},
			{"重新订阅", "已为您恢复订阅"},
		} {
			var answers [2]string
			for i, carried := range []*store.MemberView{nil, chen} {
				dir.reads = 0
				r, err := bot.Handle(ctx, &Message{Channel: "wecom", From: adapters.PartyMember, SenderID: "wmChen", Brand: "camellia",
					Text: tc.text, DedupKey: "m-" + tc.text, Member: carried})
				if err != nil || len(r) != 1 {
					t.Fatalf("%q (member carried: %v): %v, %d replies", tc.text, carried != nil, err, len(r))
				}
				answers[i] = r[0].Text
				if carried != nil && dir.reads != 0 {
					t.Errorf("%q: the member was read %d times though the message carried it", tc.text, dir.reads)
				}
				if carried == nil && dir.reads == 0 {
					t.Errorf("%q: answered without reading the member", tc.text)
				}
			}
			if !strings.Contains(answers[1], tc.want) || answers[0] != answers[1] {
				t.Errorf("%q: answered %q from the carried member, %q after reading it; want both %q", tc.text, answers[1], answers[0], tc.want)
			}
		}
	})
}
