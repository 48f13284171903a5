package wechatoa_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/wechatoa"
	"github.com/scrmgw/scrmgw/adapters/wechatoa/oafake"
)

// recorder keeps what the channel records, refusing redeliveries as the
// durable inbox does.
type recorder struct {
	mu   sync.Mutex
	seen map[string]bool
	ins  []*adapters.Inbound
	fail error
}

func (r *recorder) Record(_ context.Context, in *adapters.Inbound) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	if r.seen[in.DedupKey] {
		return nil
	}
	r.seen[in.DedupKey] = true
	r.ins = append(r.ins, in)
	return nil
}

func (r *recorder) RecordBatch(ctx context.Context, ins []*adapters.Inbound) ([]bool, error) {
	out := make([]bool, len(ins))
	for i, in := range ins {
		if err := r.Record(ctx, in); err != nil {
			return nil, err
		}
		out[i] = true
	}
	return out, nil
}

// memTokens is a token cache in memory.
type memTokens struct {
	mu sync.Mutex
	m  map[string]string
}

func (t *memTokens) Get(_ context.Context, k string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[k], nil
}
func (t *memTokens) Set(_ context.Context, k, v string, _ time.Duration) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[k] = v
	return nil
}
func (t *memTokens) Delete(_ context.Context, k string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, k)
	return nil
}

const aesKey = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"

func account(mode string) oafake.Account {
	return oafake.Account{AppID: "wx5823bf96d3bd56c7", AppSecret: "oa-secret", Token: "QDG6eK", EncodingAESKey: aesKey, Mode: mode}
}

// rig is a channel wired to a fake account, served on a test mux.
type rig struct {
	fake   *oafake.Fake
	ch     *wechatoa.Client
	rec    *recorder
	tokens *memTokens
	cfg    wechatoa.Config
	url    string
}

func newRig(t *testing.T, mode string, templates map[string]wechatoa.Template) *rig {
	return newRigWith(t, mode, func(c *wechatoa.Config) { c.Templates = templates })
}

// newRigWith is newRig with the configuration edited.
func newRigWith(t *testing.T, mode string, edit func(c *wechatoa.Config)) *rig {
	fake := oafake.New(t, account(mode))
	rec := &recorder{seen: map[string]bool{}}
	cfg := wechatoa.Config{AppID: fake.Account.AppID, AppSecret: fake.Account.AppSecret, Token: fake.Account.Token,
		EncodingAESKey: aesKey, Mode: mode, Brand: "acme", APIBase: fake.URL}
	edit(&cfg)
	r := &rig{fake: fake, rec: rec, tokens: &memTokens{m: map[string]string{}}, cfg: cfg}
	r.ch = r.replica(t)
	r.url = serve(t, r.ch) + wechatoa.CallbackPath
	return r
}

// replica is another channel of the same account: it shares the token
// (and media) cache.
func (r *rig) replica(t *testing.T) *wechatoa.Client {
	t.Helper()
	ch, err := wechatoa.New(r.cfg, "", adapters.Deps{Recorder: r.rec, Tokens: r.tokens})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestCallbacks(t *testing.T) {
	for _, mode := range []string{wechatoa.ModePlaintext, wechatoa.ModeCompatible, wechatoa.ModeSafe} {
		t.Run(mode, func(t *testing.T) {
			r := newRig(t, mode, nil)
			if code, body := r.fake.Verify(t, r.url, "echo-4711"); code != 200 || body != "echo-4711" {
				t.Errorf("server verification: %d %q", code, body)
			}
			q, _ := r.fake.CreateTicket(t, r.ch, "s:sh-1")
			for _, step := range []func() (int, string){
				func() (int, string) { return r.fake.ScanAndFollow(t, r.url, "oChen", q) },
				func() (int, string) { return r.fake.Say(t, r.url, "oChen", 6054768590064713728, "附近门店") },
				func() (int, string) { return r.fake.Say(t, r.url, "oChen", 6054768590064713728, "附近门店") }, // WeChat's retry
				func() (int, string) { return r.fake.Click(t, r.url, "oChen", "我的导购") },
				func() (int, string) { return r.fake.ScanAndFollow(t, r.url, "oChen", q) },
				func() (int, string) { return r.fake.Unfollow(t, r.url, "oChen") },
			} {
				if code, body := step(); code != 200 || body != "success" {
					t.Fatalf("callback answered %d %q", code, body)
				}
			}
			var got []string
			for _, in := range r.rec.ins {
				got = append(got, fmt.Sprintf("%s %s from=%s:%s kind=%s event=%s text=%s attrs=%v", in.Channel, in.Brand, in.From, in.SenderID, in.Kind, in.Event, in.Text, in.Attrs))
			}
			want := []string{
				"wechat_oa acme from=member:oChen kind=event event=contact.added text= attrs=map[state:s:sh-1 via:subscribe]",
				"wechat_oa acme from=member:oChen kind=text event= text=附近门店 attrs=map[]",
				"wechat_oa acme from=member:oChen kind=text event= text=我的导购 attrs=map[menu_key:我的导购]",
				"wechat_oa acme from=member:oChen kind=event event=contact.added text= attrs=map[state:s:sh-1 via:scan]",
				"wechat_oa acme from=member:oChen kind=event event=contact.removed text= attrs=map[by:member]",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("recorded:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestCallbacksRefused(t *testing.T) {
	r := newRig(t, wechatoa.ModeSafe, nil)
	msg := oafake.Text{From: "oChen", MsgID: 1, Content: "hi"}
	now := time.Now()
	post := func(q map[string][]string, body []byte) int {
		return postRaw(t, r.url, q, body)
	}
	q, body := r.fake.Seal(t, msg.XML("", now), now)
	for _, tc := range []struct {
		name   string
		change func(q map[string][]string, body []byte) []byte
		want   int
	}{
		{"bad signature", func(q map[string][]string, b []byte) []byte {
			q["signature"] = []string{strings.Repeat("0", 40)}
			return b
		}, 403},
		{"bad msg_signature", func(q map[string][]string, b []byte) []byte {
			q["msg_signature"] = []string{strings.Repeat("0", 40)}
			return b
		}, 403},
		{"plaintext in safe mode", func(q map[string][]string, b []byte) []byte { delete(q, "encrypt_type"); return msg.XML("", now) }, 403},
		{"replayed an hour later", func(q map[string][]string, b []byte) []byte {
			old := now.Add(-time.Hour)
			nq, nb := r.fake.Seal(t, msg.XML("", old), old)
			for k := range q {
				delete(q, k)
			}
			for k, v := range nq {
				q[k] = v
			}
			return nb
		}, 403},
		{"not xml", func(q map[string][]string, b []byte) []byte { return []byte("not xml") }, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cq := map[string][]string{}
			for k, v := range q {
				cq[k] = v
			}
			b := tc.change(cq, append([]byte(nil), body...))
			if code := post(cq, b); code != tc.want {
				t.Errorf("answered %d, want %d", code, tc.want)
			}
		})
	}
	if len(r.rec.ins) != 0 {
		t.Errorf("refused callbacks were recorded: %+v", r.rec.ins)
	}
	// Not recorded: 503, and WeChat retries.
	r.rec.fail = errors.New("database down")
	if code, _ := r.fake.Say(t, r.url, "oChen", 2, "hi"); code != 503 {
		t.Errorf("unrecorded message answered %d, want 503", code)
	}
}

func TestSend(t *testing.T) {
	templates := map[string]wechatoa.Template{"recall": {TemplateID: "TPL-recall-01", URL: "https://acme.example/new",
		Data: map[string]string{"thing1": "$title", "thing2": "$text", "time3": "本周"}}}
	r := newRig(t, wechatoa.ModeSafe, templates)
	ctx := context.Background()
	r.fake.AddFollower("oChen", "uChen")
	q, _ := r.fake.CreateTicket(t, r.ch, "g:g-li")
	r.fake.ScanAndFollow(t, r.url, "oChen", q)
	r.fake.AddMedia("image", "MEDIA1") // uploaded by an operator
	for _, tc := range []struct {
		name string
		m    adapters.Outbound
		want string
	}{
		{"text", adapters.Outbound{To: "oChen", Kind: adapters.KindText, Text: "您好"},
			`/cgi-bin/message/custom/send {"msgtype":"text","text":{"content":"您好"},"touser":"oChen"}`},
		{"news", adapters.Outbound{To: "oChen", Kind: adapters.KindNews, Text: "新品", Fields: map[string]string{"title": "春装", "url": "https://acme.example/s", "picurl": "https://acme.example/p.jpg"}},
			`/cgi-bin/message/custom/send {"msgtype":"news","news":{"articles":[{"description":"新品","picurl":"https://acme.example/p.jpg","title":"春装","url":"https://acme.example/s"}]},"touser":"oChen"}`},
		{"miniprogram", adapters.Outbound{To: "oChen", Kind: adapters.KindMiniProgram, Fields: map[string]string{"title": "会员中心", "appid": "wxmini", "page": "pages/index", "pic_media_id": "MEDIA1"}},
			`/cgi-bin/message/custom/send {"miniprogrampage":{"appid":"wxmini","pagepath":"pages/index","thumb_media_id":"MEDIA1","title":"会员中心"},"msgtype":"miniprogrampage","touser":"oChen"}`},
		{"template", adapters.Outbound{IdempotencyKey: "wf:1:nudge:1", To: "oChen", Kind: adapters.KindTemplate, Text: "来店里看看",
			Fields: map[string]string{"template": "recall", "kind": "text", "title": "新品到店"}},
			`/cgi-bin/message/template/send {"client_msg_id":"wf:1:nudge:1","data":{"thing1":{"value":"新品到店"},"thing2":{"value":"来店里看看"},"time3":{"value":"本周"}},"template_id":"TPL-recall-01","touser":"oChen","url":"https://acme.example/new"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := r.ch.Send(ctx, &tc.m); err != nil {
				t.Fatal(err)
			}
			api := "custom/send"
			if tc.m.Kind == adapters.KindTemplate {
				api = "template/send"
			}
			s := r.fake.WaitSent(t, tc.name, "oChen", api)
			b, _ := json.Marshal(s.Body)
			if got := s.Path + " " + string(b); got != tc.want {
				t.Errorf("fake took\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	if n := r.fake.TokenRequests(); n != 1 {
		t.Errorf("%d access tokens fetched, want 1 (cached)", n)
	}
	// A refused token is fetched anew once.
	r.fake.ExpireTokens()
	if _, err := r.ch.Send(ctx, &adapters.Outbound{To: "oChen", Kind: adapters.KindText, Text: "again"}); err != nil {
		t.Errorf("send after the token expired: %v", err)
	}
	r.fake.WaitSent(t, "after a new token", "oChen", "custom/send")

	// WeChat's refusals map onto the common errors.
	for _, tc := range []struct {
		name  string
		setup func()
		m     adapters.Outbound
		want  error
		retry bool
	}{
		{"rate (45009)", func() { r.fake.FailNext(45009) }, adapters.Outbound{To: "oChen", Kind: adapters.KindText, Text: "x"}, adapters.ErrRateLimited, true},
		{"window closed (45015)", func() { r.fake.SetLastInteraction("oChen", time.Now().Add(-49*time.Hour)) },
			adapters.Outbound{To: "oChen", Kind: adapters.KindText, Text: "x"}, adapters.ErrInvalidRecipient, false},
		{"not following (43004)", nil, adapters.Outbound{To: "oStranger", Kind: adapters.KindText, Text: "x"}, adapters.ErrInvalidRecipient, false},
		{"template without a mapping", nil, adapters.Outbound{To: "oChen", Kind: adapters.KindTemplate, Fields: map[string]string{"template": "birthday"}}, adapters.ErrInvalidMessage, false},
		{"markdown", nil, adapters.Outbound{To: "oChen", Kind: adapters.KindMarkdown, Text: "**x**"}, adapters.ErrInvalidMessage, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			_, err := r.ch.Send(ctx, &tc.m)
			if !errors.Is(err, tc.want) || adapters.Retryable(err) != tc.retry {
				t.Errorf("Send = %v (retryable %v), want %v (retryable %v)", err, adapters.Retryable(err), tc.want, tc.retry)
			}
		})
	}
	// Outside the window a template message still goes.
	if _, err := r.ch.Send(ctx, &adapters.Outbound{To: "oChen", Kind: adapters.KindTemplate, Text: "t", Fields: map[string]string{"template": "recall"}}); err != nil {
		t.Errorf("template outside the window: %v", err)
	}
	c, err := r.ch.LookupContact(ctx, "oChen")
	if err != nil || c.UnionID != "uChen" {
		t.Errorf("LookupContact = %+v, %v; want unionid uChen", c, err)
	}
}

// TestSendTemplateUnmapped: an account without template messages sends
// none, whatever a preview shows.
func TestSendTemplateUnmapped(t *testing.T) {
	r := newRig(t, wechatoa.ModePlaintext, nil)
	r.fake.AddFollower("oChen", "uChen")
	q, _ := r.fake.CreateTicket(t, r.ch, "s:sh-1")
	r.fake.ScanAndFollow(t, r.url, "oChen", q)
	m := &adapters.Outbound{To: "oChen", Kind: adapters.KindTemplate, Text: "t", Fields: map[string]string{"template": "recall"}}
	if _, err := r.ch.Send(context.Background(), m); !errors.Is(err, adapters.ErrInvalidMessage) {
		t.Errorf("Send = %v, want ErrInvalidMessage", err)
	}
	if req, err := wechatoa.Spec().Preview(m); err != nil || !strings.Contains(string(req.Body), `"template_id":"<recall>"`) {
		t.Errorf("preview without an account: %v, %v", req, err)
	}
	if got := r.fake.Sent(); len(got) != 0 {
		t.Errorf("the fake took %+v", got)
	}
}

// TestSendErrorsKeepSecrets: an API that cannot be reached fails the send
// as temporary, and the error names neither the access token nor the
// app secret the request URLs carry.
func TestSendErrorsKeepSecrets(t *testing.T) {
	r := newRig(t, wechatoa.ModeSafe, nil)
	ctx := context.Background()
	r.fake.AddFollower("oChen", "uChen")
	q, _ := r.fake.CreateTicket(t, r.ch, "s:sh-1") // a token is cached now
	r.fake.ScanAndFollow(t, r.url, "oChen", q)
	r.fake.Close()
	_, err := r.ch.Send(ctx, &adapters.Outbound{To: "oChen", Kind: adapters.KindText, Text: "hi"})
	if !errors.Is(err, adapters.ErrTemporary) || strings.Contains(err.Error(), "oa-token-") || strings.Contains(err.Error(), "access_token") {
		t.Errorf("Send = %v: want a temporary error without the token", err)
	}
	r.fake.ExpireTokens()
	cfg := wechatoa.Config{AppID: "wx1", AppSecret: "very-secret-app-secret", Token: "t", Mode: wechatoa.ModePlaintext, Brand: "acme", APIBase: r.fake.URL}
	ch, err := wechatoa.New(cfg, "", adapters.Deps{Recorder: r.rec, Tokens: &memTokens{m: map[string]string{}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ch.Send(ctx, &adapters.Outbound{To: "oChen", Kind: adapters.KindText, Text: "hi"})
	if err == nil || strings.Contains(err.Error(), "very-secret-app-secret") {
		t.Errorf("Send = %v: want an error without the app secret", err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := wechatoa.Config{AppID: "wx1", AppSecret: "s", Token: "t", EncodingAESKey: aesKey, Brand: "acme"}
	ok.SetDefaults()
	for _, tc := range []struct {
		name string
		edit func(c *wechatoa.Config)
		want string
	}{
		{"ok", func(c *wechatoa.Config) {}, ""},
		{"off", func(c *wechatoa.Config) { *c = wechatoa.Config{} }, ""},
		{"safe without key", func(c *wechatoa.Config) { c.EncodingAESKey = "" }, "wechat_oa.encoding_aes_key: required when wechat_oa.app_id is set"},
		{"bad mode", func(c *wechatoa.Config) { c.Mode = "aes" }, `wechat_oa.mode: want plaintext, compatible or safe, got "aes"`},
		{"instance twice", func(c *wechatoa.Config) {
			c.Instances = map[string]wechatoa.Config{"kids": {AppID: "wx1", AppSecret: "s", Token: "t", Mode: "plaintext", Brand: "acme-kids", APIBase: wechatoa.DefaultAPIBase}}
		}, "wechat_oa.instances.kids.app_id: wx1 is also wechat_oa"},
		{"template without id", func(c *wechatoa.Config) { c.Templates = map[string]wechatoa.Template{"recall": {}} }, "wechat_oa.templates.recall.template_id: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
				t.Errorf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}
