package wecom_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

type recorded struct {
	mu  sync.Mutex
	ins []*adapters.Inbound
}

func (r *recorded) Record(_ context.Context, in *adapters.Inbound) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ins = append(r.ins, in)
	return nil
}

type mapCursors struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *mapCursors) Cursor(_ context.Context, k string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k], nil
}

func (c *mapCursors) SetCursor(_ context.Context, k, v string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[k] = v
	return nil
}

const (
	acmeCorp  = "wwAcmeCorp"
	acmeToken = "AcmeTok9"
	acmeAES   = "ACMEacmeACMEacmeACMEacmeACMEacmeACMEacme012"
)

// TestInstances: the default instance and instance acme, two corps at
// one host, share a token cache, a cursor store and an inbox, and keep
// apart: channel keys, callback paths and what each accepts, tokens,
// kf cursors and the corp each call goes to. The default's keys are
// those of a gateway of one corp.
func TestInstances(t *testing.T) {
	defFake := wecomfake.New(t)
	acmeFake := wecomfake.New(t, wecomfake.WithCorpID(acmeCorp), wecomfake.WithAgentID("1000005"), wecomfake.WithSecrets("acme-secret", "acme-secret"))
	corps := wecomfake.NewCorps(t, defFake, acmeFake)
	tokens, cursors, rec := newMemTokens(), &mapCursors{m: map[string]string{}}, &recorded{}
	deps := func(instance string) wecom.Deps {
		return wecom.Deps{Instance: instance, Recorder: rec, Tokens: tokens, Cursors: cursors}
	}
	defCfg := corps.Config(defFake)
	defCfg.Brand = "camellia"
	def, err := wecom.New(defCfg, deps(""))
	if err != nil {
		t.Fatal(err)
	}
	acmeCfg := corps.Config(acmeFake)
	acmeCfg.Token, acmeCfg.EncodingAESKey, acmeCfg.Brands = acmeToken, acmeAES, []string{"acme", "acme-kids"}
	acme, err := wecom.New(acmeCfg, deps("acme"))
	if err != nil {
		t.Fatal(err)
	}
	if def.Name() != "wecom" || acme.Name() != "wecom:acme" || acme.Instance() != "acme" {
		t.Errorf("names = %q, %q (instance %q); want wecom, wecom:acme (acme)", def.Name(), acme.Name(), acme.Instance())
	}
	routes := func(c *wecom.Client) []string {
		var out []string
		for _, r := range c.Routes() {
			out = append(out, r.Method+" "+r.Path)
		}
		return out
	}
	if got, want := routes(def), []string{"GET /callbacks/wecom", "POST /callbacks/wecom", "GET /callbacks/wecom/default", "POST /callbacks/wecom/default"}; !slices.Equal(got, want) {
		t.Errorf("default routes = %q, want %q", got, want)
	}
	if got, want := routes(acme), []string{"GET /callbacks/wecom/acme", "POST /callbacks/wecom/acme"}; !slices.Equal(got, want) {
		t.Errorf("acme routes = %q, want %q", got, want)
	}

	// Callbacks: each instance takes only those sealed for its corp.
	mux := http.NewServeMux()
	for _, c := range []*wecom.Client{def, acme} {
		for _, r := range c.Routes() {
			mux.Handle(r.Method+" "+r.Path, r.Handler)
		}
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	acmeCB := wecomfake.Callback{Token: acmeToken, EncodingAESKey: acmeAES, CorpID: acmeCorp}
	post := func(path string, cb wecomfake.Callback) int {
		t.Helper()
		ev := wecomfake.AddExternalContact("zhang", "wmA", "g:g-zhang", "code-1")
		ev.CreateTime, ev.CorpID = time.Now().Truncate(time.Second), cb.CorpID
		req, err := cb.Request(srv.URL+path, ev.XML())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path string
		cb   wecomfake.Callback
		want int
	}{
		{"/callbacks/wecom/acme", acmeCB, 200},
		{"/callbacks/wecom/acme", wecomfake.Callback{}, 403},
		{"/callbacks/wecom", acmeCB, 403},
		{"/callbacks/wecom/default", wecomfake.Callback{}, 200},
	} {
		if got := post(tc.path, tc.cb); got != tc.want {
			t.Errorf("POST %s sealed for %s: %d, want %d", tc.path, orDefault(tc.cb.CorpID), got, tc.want)
		}
	}
	if len(rec.ins) != 2 {
		t.Fatalf("recorded %d callbacks, want 2", len(rec.ins))
	}
	if in := rec.ins[0]; in.Channel != "wecom:acme" || in.Brand != "acme" || in.Attrs[adapters.AttrBrands] != "acme,acme-kids" ||
		!slices.Equal(in.Brands(), []string{"acme", "acme-kids"}) || !strings.Contains(in.DedupKey, acmeCorp) {
		t.Errorf("acme's callback = %+v, want channel wecom:acme, brand acme of acme,acme-kids", in)
	}
	if in := rec.ins[1]; in.Channel != "wecom" || in.Brand != "camellia" || in.Attrs[adapters.AttrBrands] != "" {
		t.Errorf("default's callback = %+v, want channel wecom, brand camellia", in)
	}

	// Sends: each through its own corp, with its own token.
	ctx := context.Background()
	defFake.AddContact(wecomfake.Contact{ExternalUserID: "wmD", FollowUsers: []wecom.FollowUser{{UserID: "li"}}})
	acmeFake.AddContact(wecomfake.Contact{ExternalUserID: "wmA", FollowUsers: []wecom.FollowUser{{UserID: "zhang"}}})
	if _, err := acme.Send(ctx, &adapters.Outbound{IdempotencyKey: "k1", To: "wmA", ToParty: adapters.PartyMember, Via: "zhang", Kind: "text", Text: "hi"}); err != nil {
		t.Fatalf("acme send: %v", err)
	}
	if _, err := def.Send(ctx, &adapters.Outbound{IdempotencyKey: "k2", To: "wmD", ToParty: adapters.PartyMember, Via: "li", Kind: "text", Text: "hi"}); err != nil {
		t.Fatalf("default send: %v", err)
	}
	// A member of the default corp is no contact of acme's.
	if _, err := acme.LookupContact(ctx, "wmD"); err == nil {
		t.Error("acme looked up the default corp's customer")
	}
	if d, a := defFake.MsgTemplates(), acmeFake.MsgTemplates(); len(d) != 1 || d[0].Sender != "li" || len(a) != 1 || a[0].Sender != "zhang" {
		t.Errorf("message tasks: default %+v, acme %+v; want one each, from li and zhang", d, a)
	}
	var keys []string
	tokens.mu.Lock()
	for k := range tokens.vals {
		keys = append(keys, k)
	}
	tokens.mu.Unlock()
	slices.Sort(keys)
	if len(keys) != 2 || !strings.HasPrefix(keys[0], "wecom:access_token:"+acmeCorp+":") ||
		!strings.HasPrefix(keys[1], "wecom:access_token:"+wecomfake.DefaultCorpID+":") {
		t.Errorf("token cache keys = %q, want one per corp, wecom:access_token:<corp>:<secret hash>", keys)
	}

	// kf: a notification of acme's is expanded by acme alone, its cursor
	// kept under acme's corp.
	kfTok := acmeFake.QueueKFMessages("wkAcme", wecomfake.KFText("wmA", "在吗"))
	note := &adapters.Inbound{Channel: "wecom:acme", Kind: "event", Event: "kf.notify", Attrs: map[string]string{"token": kfTok, "open_kfid": "wkAcme"}}
	if handled, err := def.Expand(ctx, note); handled || err != nil {
		t.Errorf("the default instance expanded acme's notification: %v, %v", handled, err)
	}
	if handled, err := acme.Expand(ctx, note); !handled || err != nil {
		t.Fatalf("acme's Expand: %v, %v", handled, err)
	}
	if _, ok := cursors.m["wecom:kf:"+acmeCorp+":wkAcme"]; !ok || len(cursors.m) != 1 {
		t.Errorf("cursors = %v, want acme's under wecom:kf:%s:wkAcme", cursors.m, acmeCorp)
	}
	if last := rec.ins[len(rec.ins)-1]; last.Channel != "wecom:acme" || last.Text != "在吗" || last.Brand != "acme" {
		t.Errorf("kf message = %+v, want on wecom:acme", last)
	}
}

func orDefault(corp string) string {
	if corp == "" {
		return wecomfake.DefaultCorpID
	}
	return corp
}

// TestInstanceConfigErrors: New names the instance's keys.
func TestInstanceConfigErrors(t *testing.T) {
	cfg := wecomfake.New(t).Config()
	cfg.Brand = ""
	_, err := wecom.New(cfg, wecom.Deps{Instance: "acme", Recorder: nopRecorder{}, Tokens: newMemTokens(), Cursors: nopCursors{}})
	if err == nil || !strings.Contains(err.Error(), "wecom.instances.acme.brand: required (or wecom.instances.acme.brands)") {
		t.Errorf("error %v, want one naming wecom.instances.acme.brand", err)
	}
	cfg.Brand = "acme"
	if _, err := wecom.New(cfg, wecom.Deps{Instance: "Acme!", Recorder: nopRecorder{}, Tokens: newMemTokens(), Cursors: nopCursors{}}); err == nil {
		t.Error("an invalid instance name was taken")
	}
}
