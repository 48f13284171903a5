package dingtalk_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
)

// inbox stands in for the gateway's inbox: it hands each new delivery on.
type inbox struct {
	mu   sync.Mutex
	seen map[string]bool
	got  chan *adapters.Inbound
}

func (i *inbox) Record(_ context.Context, in *adapters.Inbound) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if !i.seen[in.DedupKey] {
		i.seen[in.DedupKey] = true
		i.got <- in
	}
	return nil
}

// tokens is a token cache in memory; the gateway shares one in Redis.
type tokens struct {
	mu sync.Mutex
	m  map[string]string
}

func (t *tokens) Get(_ context.Context, key string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[key], nil
}

func (t *tokens) Set(_ context.Context, key, token string, _ time.Duration) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[key] = token
	return nil
}

func (t *tokens) Delete(_ context.Context, key string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, key)
	return nil
}

// A guide asks the brand's robot for their tasks; the message is recorded,
// and the answer goes back through the message's session webhook. Later a
// nudge reaches a member proactively.
func Example() {
	api := dingtalkfake.NewOpenAPI(nil)
	defer api.Close()
	gw := dingtalkfake.New(nil, dingtalkfake.WithOpenAPI(api))
	defer gw.Close()

	box := &inbox{seen: map[string]bool{}, got: make(chan *adapters.Inbound, 1)}
	ch, err := dingtalk.New(dingtalk.Config{
		ClientID:     gw.ClientID(),
		ClientSecret: gw.ClientSecret(),
		StreamHost:   gw.URL(), // https://api.dingtalk.com in production
		APIBase:      api.URL(),
	}, dingtalk.Deps{
		Recorder: box,
		Tokens:   &tokens{m: map[string]string{}},
		Guides: dingtalk.GuideFunc(func(_ context.Context, staffID string) (bool, error) {
			return staffID == "guide01", nil
		}),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ch.Run(ctx) }()

	gw.PushBotMessage(dingtalkfake.BotMessage{
		ConversationID: "cidGuide01==",
		SenderStaffID:  "guide01",
		Text:           &dingtalkfake.Text{Content: "my tasks"},
	})
	in := <-box.got
	fmt.Println(in.From, in.SenderID, in.Kind, in.Text)

	_, err = ch.Send(ctx, &adapters.Outbound{
		To: in.SenderID, ToParty: in.From, Kind: "text", Text: "3 members to call back today", ReplyTo: in.ReplyTo,
	})
	fmt.Println(err, string(api.Replies()[0].Body))

	r, err := ch.Send(ctx, &adapters.Outbound{
		To: "member42", ToParty: adapters.PartyMember, Kind: "markdown", Text: "## Spring sale\nYour store has new arrivals.",
	})
	sent := api.Sent()[0]
	fmt.Println(err, r.ExternalID == sent.ProcessQueryKey, sent.UserIDs, sent.MsgKey, sent.MsgParam)

	cancel()
	fmt.Println(<-done, ch.Connected())
	// Output:
	// guide guide01 text my tasks
	// <nil> {"msgtype":"text","text":{"content":"3 members to call back today"}}
	// <nil> true [member42] sampleMarkdown {"text":"## Spring sale\nYour store has new arrivals.","title":"Spring sale"}
	// <nil> false
}
