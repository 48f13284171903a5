package inbox

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/bots"
	"github.com/scrmgw/scrmgw/gateway/outbox"
	"github.com/scrmgw/scrmgw/gateway/queue/queuetest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestMessagesAttributeTheirBrand: a member's message on a channel
// account serving no single brand (a DingTalk app without a brand) is
// recorded, handed to the bot and answered with the brand the sender's
// identity was collected under, else the person's only brand; a person
// of two brands writing through an identity collected with no brand
// stays unattributed. A channel's own brand always wins. The answer
// names the member, so their export and erasure find it.
func TestMessagesAttributeTheirBrand(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, b := range []string{"acme", "zeta"} {
			if err := s.CreateBrand(ctx, &store.Brand{ID: b, Name: b}); err != nil {
				t.Fatal(err)
			}
		}
		// Chen: a member of acme (identity dt-chen collected under acme)
		// and of zeta; dt-chen-2 is hers too, collected with no brand.
		// Wu: zeta's only, through an identity with no brand.
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		chen, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", Identities: []store.Identity{{Channel: "dingtalk", ExternalID: "dt-chen-2"}}})
		must(err)
		_, _, err = s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", BrandID: "acme", Identities: []store.Identity{{Channel: "dingtalk", ExternalID: "dt-chen"}}})
		must(err)
		must(s.SetMembership(ctx, chen.ID, "zeta", "", nil))
		wu, _, err := s.EnsureMember(ctx, store.NewMember{Identities: []store.Identity{{Channel: "dingtalk", ExternalID: "dt-wu"}}})
		must(err)
		must(s.SetMembership(ctx, wu.ID, "zeta", "", nil))
		for _, id := range []string{"dt-chen", "dt-chen-2", "dt-wu"} {
			v, err := s.MemberByIdentity(ctx, "dingtalk", id)
			must(err)
			for _, mi := range v.Identities {
				if mi.ExternalID == id && (mi.BrandID == "") != (id != "dt-chen") {
					t.Fatalf("identity %s collected under %q", id, mi.BrandID)
				}
			}
		}
		var botSaw []string
		bot := bots.BotFunc(func(_ context.Context, m *bots.Message) ([]bots.Reply, error) {
			botSaw = append(botSaw, m.Brand)
			return []bots.Reply{{Kind: "text", Text: "ok"}}, nil
		})
		var logged []*store.Event
		m := NewMessages(s, bot, outbox.NewSender(s, adapters.NewRegistry(), queuetest.New(), discard), discard)
		m.OnLogged = func(_ context.Context, e *store.Event) error { logged = append(logged, e); return nil }
		for i, tc := range []struct {
			name, channel, channelBrand, sender string
			member                              int64
			party                               adapters.Party
			want                                string
		}{
			{"identity's brand", "dingtalk", "", "dt-chen", chen.ID, adapters.PartyMember, "acme"},
			{"two brands, identity of none", "dingtalk", "", "dt-chen-2", chen.ID, adapters.PartyMember, ""},
			{"the only brand", "dingtalk", "", "dt-wu", wu.ID, adapters.PartyMember, "zeta"},
			{"the channel's brand wins", "dingtalk", "zeta", "dt-chen", chen.ID, adapters.PartyMember, "zeta"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				botSaw, logged = nil, nil
				key := fmt.Sprintf("msg-%d", i)
				in := &adapters.Inbound{Channel: tc.channel, DedupKey: key, Brand: tc.channelBrand, From: tc.party, SenderID: tc.sender,
					Kind: "text", Text: "hello", At: time.Now().UTC()}
				if err := m.handle(ctx, in); err != nil {
					t.Fatal(err)
				}
				if in.Brand != tc.channelBrand {
					t.Errorf("the inbound message was changed: brand %q", in.Brand)
				}
				if len(logged) != 1 || logged[0].BrandID != tc.want || *logged[0].MemberID != tc.member {
					t.Errorf("logged %+v, want one message.received of brand %q", logged, tc.want)
				}
				if len(botSaw) != 1 || botSaw[0] != tc.want {
					t.Errorf("the bot saw brands %q, want %q", botSaw, tc.want)
				}
				row, err := s.OutboxByKey(ctx, "reply:"+tc.channel+":"+key+":0")
				if err != nil {
					t.Fatal(err)
				}
				if row.BrandID != tc.want || row.MemberID == nil || *row.MemberID != tc.member || row.Recipient != tc.sender {
					t.Errorf("reply row: brand %q member %v to %s; want brand %q member %d to %s", row.BrandID, row.MemberID, row.Recipient,
						tc.want, tc.member, tc.sender)
				}
			})
		}
		// A guide's message is neither logged nor the answer a member's.
		logged = nil
		if err := m.handle(ctx, &adapters.Inbound{Channel: "dingtalk", DedupKey: "g-1", From: adapters.PartyGuide, SenderID: "dt-chen",
			Kind: "text", Text: "hi", At: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
		if row, err := s.OutboxByKey(ctx, "reply:dingtalk:g-1:0"); err != nil || row.MemberID != nil || len(logged) != 0 {
			t.Errorf("guide's reply row %+v, %v; %d logged", row, err, len(logged))
		}
	})
}
