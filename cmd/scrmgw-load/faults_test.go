package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestFaultsWeComErrors is the "vendor answers 20% errors" scenario of
// docs/proof.md: members write to the brand's WeCom customer-service
// account while the fake WeCom API fails one call in five (gettoken,
// kf/sync_msg and kf/send_msg alike) with a frequency limit (45009),
// system busy (-1), HTTP 502 or HTTP 504, before doing anything. Every
// kf_msg_or_event callback makes the gateway pull the new messages with
// kf/sync_msg; the member bot answers each message with kf/send_msg
// through the outbox. In the end every message is in the inbox once,
// processed, and got exactly one reply (one outbox row, sent, and one
// kf/send_msg accepted by WeCom), the right one for what was asked.
func TestFaultsWeComErrors(t *testing.T) {
	t.Parallel() // mostly waits for retry back-offs
	dbURL := storetest.URL(t, "postgres")
	redisURL := storetest.RedisURL(t)
	bin := buildScrmgw(t)

	const (
		customers = 20
		openKfID  = "wkFaults"
		failRate  = 0.2
	)
	fake := wecomfake.New(t)
	fake.AddEmployees("li")
	g := newTestGateway(t, bin, dbURL, redisURL, wecomEnv(fake)...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	g.serve(ctx)
	g.seedAcme()
	db := newDBCounter(ctx, t, dbURL)

	fake.FailRandomly(failRate, time.Now().UnixNano())
	start := time.Now()
	// Each customer asks two things, in two rounds; each round is
	// announced by callbacks of 4 messages each, as WeCom batches them.
	type question struct{ text, reply string }
	questions := []question{{"附近的门店", "请发送您的位置"}, {"我的积分", "积分："}}
	runID := randomHex(3)
	want := map[string]string{} // kf msgid → expected reply text
	var (
		messages, callbacks, callbackFailures int
	)
	for qi, q := range questions {
		for c := 0; c < customers; c += 4 {
			var batch []wecomfake.KFMessage
			for i := c; i < c+4 && i < customers; i++ {
				m := wecomfake.KFText(fmt.Sprintf("wmF%s%02d", runID, i), q.text)
				m.MsgID = fmt.Sprintf("kf%s_%02d_%d", runID, i, qi)
				want[m.MsgID] = q.reply
				batch = append(batch, m)
			}
			token := fake.QueueKFMessages(openKfID, batch...)
			messages += len(batch)
			notify := wecomfake.KfMsgOrEvent{Token: token, OpenKfID: openKfID, CreateTime: time.Now()}
			body, query, err := wecomfake.Callback{}.Seal(notify.XML())
			if err != nil {
				t.Fatal(err)
			}
			n, err := g.deliverUntil200(ctx, wecom.CallbackPath+"?"+query.Encode(), string(body))
			if err != nil {
				t.Fatalf("kf callback: %v", err)
			}
			callbacks++
			callbackFailures += n
		}
	}

	// Every message ends in the inbox once, processed, with one reply
	// sent. A frequency limit (45009) is retried after 10 s × 2ⁿ: four in
	// a row on one task, 150 s, are unlikely (about 3 in 10,000 runs), five
	// (310 s) all but impossible.
	keys := make([]string, 0, len(want))
	for id := range want {
		keys = append(keys, "kfmsg:"+id)
	}
	deadline := time.Now().Add(200 * time.Second)
	for {
		recorded := db.count(ctx, `SELECT count(*) FROM inbox_messages WHERE dedup_key = ANY($1) AND state = 'done'`, keys)
		sent := db.count(ctx, `SELECT count(*) FROM outbox_messages WHERE state = 'sent' AND idempotency_key NOT LIKE 'digest:%'`)
		pending := db.count(ctx, `SELECT count(*) FROM inbox_messages WHERE state <> 'done'`) +
			db.count(ctx, `SELECT count(*) FROM outbox_messages WHERE state <> 'sent'`)
		if recorded == messages && sent >= messages && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			db.logUnfinished(ctx)
			t.Fatalf("after %s: %d of %d messages processed, %d replies sent, %d rows unfinished",
				time.Since(start).Round(time.Second), recorded, messages, sent, pending)
		}
		time.Sleep(250 * time.Millisecond)
	}
	took := time.Since(start)
	time.Sleep(time.Second) // let a duplicate surface
	injected := fake.RandomFailures()
	fake.FailRandomly(0, 0)

	if n := db.count(ctx, `SELECT count(*) FROM inbox_messages WHERE dedup_key LIKE 'kfmsg:%'`); n != messages {
		t.Errorf("kf messages in the inbox = %d, want %d", n, messages)
	}
	if n := db.count(ctx, `SELECT count(DISTINCT dedup_key) FROM inbox_messages WHERE dedup_key = ANY($1)`, keys); n != messages {
		t.Errorf("distinct kf messages recorded = %d, want %d", n, messages)
	}
	// The guide's daily digest (after bots.digest_time) is no reply.
	if n := db.count(ctx, `SELECT count(*) FROM outbox_messages WHERE idempotency_key NOT LIKE 'digest:%'`); n != messages {
		t.Errorf("outbox rows = %d, want %d (one reply per message)", n, messages)
	}
	// Each message's reply went out once, to its sender, with the
	// answer to its question: the outbox row keyed by the message holds
	// the msgid WeCom accepted, and WeCom accepted each msgid once.
	sent := fake.KFSent()
	byMsgID := map[string][]wecomfake.KFSendRequest{}
	for _, s := range sent {
		byMsgID[s.MsgID] = append(byMsgID[s.MsgID], s)
	}
	if len(sent) != messages {
		t.Errorf("kf/send_msg accepted %d messages, want %d", len(sent), messages)
	}
	for id, reply := range want {
		var ext, recipient string
		err := db.conn.QueryRow(ctx, `SELECT external_id, recipient FROM outbox_messages WHERE idempotency_key = $1 AND state = 'sent'`,
			"reply:wecom:kfmsg:"+id+":0").Scan(&ext, &recipient)
		if err != nil {
			t.Errorf("reply to %s: %v", id, err)
			continue
		}
		got := byMsgID[ext]
		if len(got) != 1 {
			t.Errorf("reply to %s (msgid %s) accepted by WeCom %d times, want once", id, ext, len(got))
			continue
		}
		if got[0].ToUser != recipient || got[0].OpenKfID != openKfID || !strings.Contains(got[0].Text, reply) {
			t.Errorf("reply to %s = to %s on %s %q, want to %s on %s containing %q", id, got[0].ToUser, got[0].OpenKfID, got[0].Text,
				recipient, openKfID, reply)
		}
	}
	if injected == 0 {
		t.Fatal("no failure was injected")
	}
	retried := db.count(ctx, `SELECT count(*) FROM send_attempts WHERE outcome = 'retry'`)
	inboxRetried := db.count(ctx, `SELECT count(*) FROM inbox_messages WHERE attempts > 0`)
	t.Logf("%d kf messages in %d callbacks (%d callback attempts refused); %d WeCom calls, %d failed by the fake; "+
		"%d deliveries and %d sends retried; all processed and answered once in %s",
		messages, callbacks, callbackFailures, len(fake.Calls()), injected, inboxRetried, retried, took.Round(100*time.Millisecond))
}

// TestFaultsDingTalkStreamDrops is the "DingTalk stream dropped
// repeatedly" scenario of docs/proof.md: the fake stream gateway pushes
// guide messages to the real gateway and closes the WebSocket abruptly
// (no close handshake, as a network failure does) several times while it
// does, each time once a few more frames were acked on the new
// connection. Frames not acked when their connection went away are
// delivered again on the next one. Meanwhile the fake OpenAPI fails one
// call in five of the session webhooks the replies go to (QPS limit, 502,
// 504, before doing anything). In the end every frame is acked, each
// message is in the inbox exactly once and processed, and each got
// exactly one reply at its session webhook (none went out proactively).
func TestFaultsDingTalkStreamDrops(t *testing.T) {
	dbURL := storetest.URL(t, "postgres")
	redisURL := storetest.RedisURL(t)
	bin := buildScrmgw(t)

	const (
		messages = 80
		drops    = 4 // the adapter backs off 1, 2, 4, 8 s between quick failures
	)
	openapi := dingtalkfake.NewOpenAPI(t)
	gw := dingtalkfake.New(t, dingtalkfake.WithOpenAPI(openapi))
	g := newTestGateway(t, bin, dbURL, redisURL,
		"SCRMGW_DINGTALK_CLIENT_ID="+gw.ClientID(),
		"SCRMGW_DINGTALK_CLIENT_SECRET="+gw.ClientSecret(),
		"SCRMGW_DINGTALK_BRAND=acme",
		"SCRMGW_DINGTALK_STREAM_HOST="+gw.URL(),
		"SCRMGW_DINGTALK_API_BASE="+openapi.URL(),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	g.serve(ctx)
	g.seedAcme()
	if err := gw.WaitConnected(ctx); err != nil {
		t.Fatalf("the stream never connected: %v", err)
	}
	db := newDBCounter(ctx, t, dbURL)

	openapi.FailRandomly(0.2, time.Now().UnixNano())
	start := time.Now()
	runID := randomHex(3)
	ids := make([]string, messages)    // frame messageIds
	msgIDs := make([]string, messages) // robot msgIds, the inbox keys
	for i := range messages {
		msgIDs[i] = fmt.Sprintf("msgF%s%03d", runID, i)
		ids[i] = gw.PushBotMessage(dingtalkfake.BotMessage{MsgID: msgIDs[i], ConversationID: fmt.Sprintf("cidF%s%03d", runID, i),
			SenderStaffID: "staff-li", SenderNick: "李娜", Text: &dingtalkfake.Text{Content: "我的会员"}})
	}
	acked := func() int {
		n := 0
		for _, id := range ids {
			if len(gw.Acks(id)) > 0 {
				n++
			}
		}
		return n
	}
	// Drop the connection each time a few more frames were acked on it,
	// while the rest wait to be sent.
	for d := range drops {
		target := (d + 1) * messages / (drops + 2)
		for acked() < target {
			if ctx.Err() != nil {
				t.Fatalf("only %d frames acked before drop %d", acked(), d+1)
			}
			time.Sleep(2 * time.Millisecond)
		}
		gw.Drop()
		if err := gw.WaitConnected(ctx); err != nil {
			t.Fatalf("no reconnection after drop %d: %v", d+1, err)
		}
	}
	for _, id := range ids {
		if _, err := gw.WaitAck(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	allAcked := time.Since(start)
	db.waitProcessed(ctx, messages, 60*time.Second)
	// A QPS limit is retried after 10 s × 2ⁿ: four in a row on one reply
	// (150 s) are unlikely, five all but impossible.
	deadline := time.Now().Add(180 * time.Second)
	for len(openapi.Replies()) < messages && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(start)
	time.Sleep(time.Second) // let a duplicate surface

	redelivered := 0
	for i, id := range ids {
		acks := gw.Acks(id)
		if acks[len(acks)-1].Code != 200 {
			t.Errorf("frame %d acked %+v, want 200", i, acks[len(acks)-1])
		}
		if gw.Deliveries(id) > 1 {
			redelivered++
		}
	}
	if n := db.count(ctx, `SELECT count(*) FROM inbox_messages`); n != messages {
		t.Errorf("inbox rows = %d, want %d", n, messages)
	}
	if n := db.count(ctx, `SELECT count(DISTINCT dedup_key) FROM inbox_messages WHERE channel = 'dingtalk' AND dedup_key = ANY($1) AND state = 'done'`, msgIDs); n != messages {
		t.Errorf("messages recorded and processed = %d, want %d", n, messages)
	}
	replies := map[string]int{}
	for _, r := range openapi.Replies() {
		replies[r.ConversationID]++
	}
	for i := range messages {
		if n := replies[fmt.Sprintf("cidF%s%03d", runID, i)]; n != 1 {
			t.Errorf("message %d got %d replies, want 1", i, n)
		}
	}
	if n := len(openapi.Replies()); n != messages {
		t.Errorf("session webhook replies = %d, want %d", n, messages)
	}
	// The guide may also get the daily digest, sent proactively (it
	// answers no message), when the test runs after bots.digest_time in
	// the store's time zone: it is no reply.
	if n := db.count(ctx, `SELECT count(*) FROM outbox_messages WHERE state = 'sent' AND idempotency_key NOT LIKE 'digest:%'`); n != messages {
		t.Errorf("replies sent according to the outbox = %d, want %d", n, messages)
	}
	digests := db.count(ctx, `SELECT count(*) FROM outbox_messages WHERE state = 'sent' AND idempotency_key LIKE 'digest:%'`)
	if sent := openapi.Sent(); len(sent) != digests {
		t.Errorf("%d messages went out proactively, want only the %d digests: replies must go through the session webhook", len(sent), digests)
	}
	webhookFailures := openapi.RandomFailures()
	if webhookFailures == 0 {
		t.Error("no session webhook call failed")
	}
	if errs := gw.ProtocolErrors(); len(errs) > 0 {
		t.Errorf("protocol errors: %v", errs)
	}
	if n := gw.Accepted(); n < drops+1 {
		t.Errorf("connections accepted = %d, want at least %d", n, drops+1)
	}
	t.Logf("%d messages, %d drops, %d connections, %d frames delivered more than once; all acked after %s; "+
		"%d session webhook calls, %d failed by the fake; all recorded once, processed and answered once after %s",
		messages, drops, gw.Accepted(), redelivered, allAcked.Round(100*time.Millisecond),
		openapi.Calls(dingtalkfake.PathSessionWebhook), webhookFailures, took.Round(100*time.Millisecond))
}
