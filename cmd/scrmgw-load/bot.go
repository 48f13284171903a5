package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// The bot answers of docs/performance-surge.md: members of brand acme ask
// the member bot "我的积分" (my points), some on WeCom customer service
// (微信客服: the fake WeCom queues the message and sends the gateway a
// signed kf_msg_or_event callback; the gateway pulls it with kf/sync_msg)
// and the rest to the DingTalk robot (a CALLBACK frame on the fake
// DingTalk stream gateway). The real gateway (`scrmgw serve
// --workers=false` holding the stream and answering callbacks, `scrmgw
// worker` doing the work, on PostgreSQL and Redis) records each, the bot
// answers, and the reply goes out through the outbox: kf/send_msg on
// WeCom, the message's session webhook on DingTalk. Measured: from the
// message reaching the gateway's door (the callback sent, the frame
// queued at the stream gateway) to the reply request at the fake. Every
// message must get exactly one reply.

// botConfig configures runBot.
type botConfig struct {
	PerSecond int
	For       time.Duration
	// KFShare of the messages come on WeCom customer service, the rest
	// on DingTalk.
	KFShare float64
	// KFEvery: the fake WeCom announces the kf messages queued since its
	// last callback this often (WeCom sends a kf_msg_or_event for new
	// messages, not one per message under load).
	KFEvery time.Duration
	// InFlight is how many stream frames the fake DingTalk gateway keeps
	// unacknowledged on the connection.
	InFlight int
	// RateWeCom and RateDingTalk are the gateway's send.rate.wecom and
	// send.rate.dingtalk ("" the product's default).
	RateWeCom, RateDingTalk string
	Concurrency             int
	// DelayMin..DelayMax is how long the fake WeCom takes over kf/send_msg
	// and kf/sync_msg.
	DelayMin, DelayMax time.Duration
	Settle             time.Duration
	gatewayRun
}

// botResult is what runBot measured.
type botResult struct {
	Messages, KF, DingTalk int
	SentFor                time.Duration
	Replies                int // replies at the fakes for the run's members
	Missing, Twice         int
	P50, P95, P99, Max     time.Duration // message to reply request, all
	KFP99, DingTalkP99     time.Duration
	Under300               int
	KFCallbacks            int
	CallbackFailures       int
	Refused45009           int
	LoadStart, LoadEnd     string
	// CPU seconds the gateway, PostgreSQL and Redis used from the
	// first message until the last was settled (Busy).
	CPU  map[string]float64
	Busy time.Duration
	checks
}

const botOpenKfID = "wkLoadBot"

// runBot runs the scenario; problems found are in the result, errors are
// failures to run it at all.
func runBot(ctx context.Context, c botConfig) (*botResult, error) {
	logf := c.logger()
	res := &botResult{}
	fake := wecomfake.New(nil)
	defer fake.Close()
	fake.AddEmployees("li")
	for _, p := range []string{wecomfake.PathKFSendMsg, wecomfake.PathKFSyncMsg} {
		fake.DelayBetween(p, c.DelayMin, c.DelayMax)
	}
	api := dingtalkfake.NewOpenAPI(nil)
	defer api.Close()
	stream := dingtalkfake.New(nil, dingtalkfake.WithOpenAPI(api), dingtalkfake.WithMaxInFlight(c.InFlight))
	defer stream.Close()

	base, admin, gp, err := c.serveGateway(ctx, fake, c.Concurrency, append([]string{
		"SCRMGW_DINGTALK_CLIENT_ID=" + stream.ClientID(),
		"SCRMGW_DINGTALK_CLIENT_SECRET=" + stream.ClientSecret(),
		"SCRMGW_DINGTALK_BRAND=acme",
		"SCRMGW_DINGTALK_STREAM_HOST=" + stream.URL(),
		"SCRMGW_DINGTALK_API_BASE=" + api.URL(),
	}, envSet("SCRMGW_SEND_RATE_WECOM", c.RateWeCom, "SCRMGW_SEND_RATE_DINGTALK", c.RateDingTalk)...)...)
	if err != nil {
		return nil, err
	}
	defer func() { gp.stop(res.Problems, logf) }()
	for _, r := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜","wecom_userid":"li","dingtalk_userid":"staff-li"}`},
	} {
		if code, body := apiCall(http.MethodPost, base+r.path, admin, "application/json", r.body); code != http.StatusCreated {
			return nil, fmt.Errorf("seeding %s: %d %s", r.path, code, body)
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = stream.WaitConnected(waitCtx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("the gateway never connected to the DingTalk stream: %w", err)
	}

	// One member per message, known to the gateway on the message's
	// channel: message i comes from member i, so each reply names its
	// message (kf: the customer; DingTalk: the conversation).
	n := int(float64(c.PerSecond) * c.For.Seconds())
	res.Messages = n
	run := randomHex(3)
	isKF := make([]bool, n)
	ids := make([]string, n)
	index := make(map[string]int, n)
	acc := 0.0
	for i := range n {
		acc += c.KFShare
		if acc >= 1 {
			acc--
			isKF[i] = true
			ids[i] = fmt.Sprintf("wmBot%s_%06d", run, i)
			res.KF++
		} else {
			ids[i] = fmt.Sprintf("dtBot%s_%06d", run, i)
			res.DingTalk++
		}
		index[ids[i]] = i
	}
	conn, err := pgx.Connect(ctx, c.DBURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	seedStart := time.Now()
	if err := seedBotMembers(ctx, conn, ids, isKF); err != nil {
		return nil, fmt.Errorf("seeding members: %w", err)
	}
	logf("seeded %d members in %s", n, time.Since(seedStart).Round(time.Millisecond))
	if _, err := gp.start("worker", "worker"); err != nil {
		return nil, err
	}
	time.Sleep(3 * time.Second) // the worker's queues up

	// The messages, each at its time; kf ones announced every KFEvery.
	sentAt := make([]time.Time, n)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var (
		mu       sync.Mutex
		kfQueued []wecomfake.KFMessage
		wg       sync.WaitGroup
	)
	announce := func() {
		mu.Lock()
		batch := kfQueued
		kfQueued = nil
		mu.Unlock()
		if len(batch) == 0 {
			return
		}
		token := fake.QueueKFMessages(botOpenKfID, batch...)
		notify := wecomfake.KfMsgOrEvent{Token: token, OpenKfID: botOpenKfID, CreateTime: time.Now()}
		body, query, err := wecomfake.Callback{}.Seal(notify.XML())
		if err != nil {
			return
		}
		res.KFCallbacks++
		wg.Add(1)
		go func() {
			defer wg.Done()
			for try := 0; try < 5; try++ {
				resp, err := client.Post(base+wecom.CallbackPath+"?"+query.Encode(), "text/xml", strings.NewReader(string(body)))
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK && string(b) == "success" {
						return
					}
				}
				mu.Lock()
				res.CallbackFailures++
				mu.Unlock()
				time.Sleep(time.Second)
			}
		}()
	}
	stopKF := make(chan struct{})
	kfDone := make(chan struct{})
	go func() {
		defer close(kfDone)
		t := time.NewTicker(c.KFEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				announce()
			case <-stopKF:
				announce()
				return
			}
		}
	}()
	res.LoadStart = loadAvg()
	logf("bot: %d member messages a second for %s (%d: %d WeCom kf, %d DingTalk), load average %s",
		c.PerSecond, c.For, n, res.KF, res.DingTalk, res.LoadStart)
	texts := []string{"我的积分", "积分", "my points"}
	spent := c.measure(ctx, gp, c.For)
	start := time.Now()
	for i := range paced(ctx, start, n, c.PerSecond) {
		text := texts[i%len(texts)]
		sentAt[i] = time.Now()
		if isKF[i] {
			m := wecomfake.KFText(ids[i], text)
			m.MsgID = fmt.Sprintf("kfb%s_%06d", run, i)
			mu.Lock()
			kfQueued = append(kfQueued, m)
			mu.Unlock()
		} else {
			stream.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cid" + ids[i], SenderStaffID: ids[i],
				SenderNick: "会员" + strconv.Itoa(i), Text: &dingtalkfake.Text{Content: text}})
		}
		if i > 0 && i%(c.PerSecond*10) == 0 {
			logf("%d messages sent, %d kf and %d DingTalk replies", i, len(fake.KFSent()), len(api.Replies()))
		}
	}
	close(stopKF)
	<-kfDone
	wg.Wait()
	end := time.Now()
	res.SentFor = end.Sub(start)

	replied := func() int { return len(fake.KFSent()) + len(api.Replies()) }
	deadline := end.Add(c.Settle)
	for replied() < n && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
	}
	res.LoadEnd = loadAvg()
	res.CPU = spent()
	res.Busy = time.Since(start)
	time.Sleep(2 * time.Second) // let a duplicate surface

	got := make([]int, n)
	var all, kfLat, dtLat []time.Duration
	seen := func(i int, at time.Time, kf bool) {
		got[i]++
		if got[i] > 1 {
			return
		}
		d := at.Sub(sentAt[i])
		all = append(all, d)
		if kf {
			kfLat = append(kfLat, d)
		} else {
			dtLat = append(dtLat, d)
		}
		if d < 300*time.Millisecond {
			res.Under300++
		}
	}
	for _, s := range fake.KFSent() {
		if i, ok := index[s.ToUser]; ok && isKF[i] {
			res.Replies++
			seen(i, s.At, true)
		}
	}
	for _, r := range api.Replies() {
		if i, ok := index[strings.TrimPrefix(r.ConversationID, "cid")]; ok && !isKF[i] {
			res.Replies++
			seen(i, r.At, false)
		}
	}
	for i, k := range got {
		switch {
		case k == 0:
			res.Missing++
			if res.Missing <= 3 {
				res.problem("message %d (%s) got no reply", i, ids[i])
			}
		case k > 1:
			res.Twice++
			if res.Twice <= 3 {
				res.problem("message %d (%s) got %d replies", i, ids[i], k)
			}
		}
	}
	if res.Missing > 3 {
		res.problem("%d messages got no reply in all", res.Missing)
	}
	if res.Twice > 3 {
		res.problem("%d messages got more than one reply in all", res.Twice)
	}
	for _, call := range fake.Calls() {
		if call.Errcode == wecomfake.CodeFreqLimit {
			res.Refused45009++
		}
	}
	res.P50, res.P95, res.P99 = percentile(all, 0.5), percentile(all, 0.95), percentile(all, 0.99)
	if len(all) > 0 {
		res.Max = slices.Max(all)
	}
	res.KFP99, res.DingTalkP99 = percentile(kfLat, 0.99), percentile(dtLat, 0.99)
	var inbox int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM inbox_messages WHERE dedup_key LIKE 'kfmsg:kfb' || $1 || '%' OR channel = 'dingtalk'`,
		run).Scan(&inbox); err != nil {
		res.problem("counting the inbox: %v", err)
	} else if inbox != n {
		res.problem("%d of %d messages in the inbox", inbox, n)
	}
	return res, nil
}

// seedBotMembers writes one member of brand acme per id, with a WeCom
// identity (kf customers) or a DingTalk one.
func seedBotMembers(ctx context.Context, conn *pgx.Conn, ids []string, isKF []bool) error {
	channels := make([]string, len(ids))
	for i := range ids {
		channels[i] = "dingtalk"
		if isKF[i] {
			channels[i] = "wecom"
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE bot_seed (ord int, ext text, channel text) ON COMMIT DROP`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO bot_seed SELECT * FROM unnest($1::int[], $2::text[], $3::text[])`,
		seq(len(ids)), ids, channels); err != nil {
		return err
	}
	for _, q := range []string{
		`INSERT INTO members (name, created_at, updated_at) SELECT '会员' || ext, now(), now() FROM bot_seed ORDER BY ord`,
		`INSERT INTO memberships (member_id, brand_id, level, points, created_at)
			SELECT m.id, 'acme', 'gold', 120, now() FROM members m JOIN bot_seed s ON m.name = '会员' || s.ext`,
		`INSERT INTO member_identities (member_id, channel, external_id, created_at)
			SELECT m.id, s.channel, s.ext, now() FROM members m JOIN bot_seed s ON m.name = '会员' || s.ext`,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(strings.Fields(q)[:3], " "), err)
		}
	}
	return tx.Commit(ctx)
}

func seq(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}
