package inbox

import (
	"context"
	"encoding/json"
	"sort"
	"testing"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/bots"
	"github.com/scrmgw/scrmgw/gateway/outbox"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/gateway/queue/queuetest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestMessagesQueueRepliesOnce: a bot's replies, to the sender or to
// someone else (a handoff), are saved once per key however often the
// message is handled, on the recipient's channel with their ids.
func TestMessagesQueueRepliesOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		bot := bots.BotFunc(func(context.Context, *bots.Message) ([]bots.Reply, error) {
			return []bots.Reply{
				{Kind: "text", Text: "已为您转接"},
				{Kind: "text", Text: "【转人工 #1】", To: &bots.Recipient{Channel: "dingtalk", ID: "staff-wu", Party: adapters.PartyGuide,
					GuideID: "wu", MemberID: 7, Brand: "acme"}, Key: "handoff:1:request"},
				{Kind: "text", Text: "second"},
			}, nil
		})
		q := queuetest.New()
		m := NewMessages(s, bot, outbox.NewSender(s, adapters.NewRegistry(), q, discard), discard)
		in := &adapters.Inbound{Channel: "wecom", DedupKey: "kfmsg:1", Brand: "acme", From: adapters.PartyMember, SenderID: "wmChen",
			Kind: "text", Text: "转人工", ReplyTo: map[string]string{"open_kfid": "wkKF1"}}
		for range 2 {
			if err := m.handle(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		tasks := q.Drain()
		if len(tasks) != 3 {
			t.Fatalf("queued %d sends, want 3", len(tasks))
		}
		var got []string
		for _, task := range tasks {
			var pl queue.IDPayload
			json.Unmarshal(task.Payload(), &pl)
			row, err := s.Outbox(ctx, pl.ID)
			if err != nil {
				t.Fatal(err)
			}
			var out adapters.Outbound
			json.Unmarshal(row.Payload, &out)
			member := int64(0)
			if row.MemberID != nil {
				member = *row.MemberID
			}
			got = append(got, row.IdempotencyKey+" "+row.Channel+" "+row.Recipient+" "+string(out.ToParty)+" "+out.ReplyTo["open_kfid"]+
				" "+row.GuideID+" "+row.BrandID+" "+out.Text+" "+string(rune('0'+member)))
		}
		sort.Strings(got)
		want := []string{
			"handoff:1:request dingtalk staff-wu guide  wu acme 【转人工 #1】 7",
			"reply:wecom:kfmsg:1:0 wecom wmChen member wkKF1  acme 已为您转接 0",
			"reply:wecom:kfmsg:1:1 wecom wmChen member wkKF1  acme second 0",
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("outbox row %d = %q, want %q", i, got[i], want[i])
			}
		}
		if err := m.Queue(ctx, bots.Reply{Text: "x", Key: "k"}); err == nil {
			t.Error("a reply without a recipient was queued")
		}
	})
}
