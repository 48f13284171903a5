package app

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/assign"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// TestAssignRequest: an assign_guide step's strategy and fallback become
// what the assigner tries, and nothing else.
func TestAssignRequest(t *testing.T) {
	lat, lng := 31.2, 121.4
	for _, tc := range []struct {
		name string
		in   engine.AssignRequest
		want assign.Request
	}{
		{"nearest, no fallback", engine.AssignRequest{Strategy: "nearest", Lat: &lat, Lng: &lng, MaxDistanceKm: 30, Fallback: "none"},
			assign.Request{Lat: &lat, Lng: &lng, MaxDistanceKm: 30, NoPool: true}},
		{"nearest, then pool", engine.AssignRequest{Strategy: "nearest", Lat: &lat, Lng: &lng, Fallback: "pool"},
			assign.Request{Lat: &lat, Lng: &lng}},
		{"store only", engine.AssignRequest{Strategy: "store", StoreID: "sh1", Lat: &lat, Lng: &lng, Fallback: "none"},
			assign.Request{StoreID: "sh1", NoPool: true}},
		{"store, then nearest", engine.AssignRequest{Strategy: "store", StoreID: "sh1", Lat: &lat, Lng: &lng, MaxDistanceKm: 10, Fallback: "nearest"},
			assign.Request{StoreID: "sh1", Lat: &lat, Lng: &lng, MaxDistanceKm: 10, NoPool: true}},
		{"store, then pool", engine.AssignRequest{Strategy: "store", StoreID: "sh1", Fallback: "pool"},
			assign.Request{StoreID: "sh1"}},
		{"store unknown, nothing else", engine.AssignRequest{Strategy: "store", Fallback: "none"},
			assign.Request{PoolOnly: true, NoPool: true}},
		{"pool", engine.AssignRequest{Strategy: "pool", Lat: &lat, Lng: &lng, Fallback: "none"},
			assign.Request{PoolOnly: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.MemberID, tc.in.Brand = 7, "acme"
			tc.want.MemberID, tc.want.Brand = 7, "acme"
			if diff := cmp.Diff(tc.want, assignRequest(tc.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestSendRulesConfig: bad rates and quotas stop the start with the key
// at fault.
func TestSendRulesConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*configs.Config)
		want string
	}{
		{"rate", func(c *configs.Config) { c.Send.Rate.WeCom = "50 per second" }, `send.rate.wecom: bad rate "50 per second"`},
		{"quota", func(c *configs.Config) { c.WeCom.MemberMassLimit = "1/week" }, `wecom.member_mass_limit: bad quota "1/week": unknown period "week"; use day or month`},
		{"share", func(c *configs.Config) { c.Send.CriticalShare = 1 }, `send.critical_share: 1 is all of the rate`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configs.Default()
			tc.set(&cfg)
			a := &App{Config: cfg}
			_, err := a.sendRules()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
		})
	}
	cfg := configs.Default()
	q, err := (&App{Config: cfg}).sendRules()
	if err != nil || q["wecom"] != (engine.Quota{Limit: 1}) {
		t.Fatalf("defaults: %v, %v; want wecom 1/day", q, err)
	}
}

// TestSendRulesPerInstance: every WeCom instance has its own rate (its
// section's send_rate, else send.rate.wecom, else the channel's own) and
// quota, by instance key; a bad one names its key.
func TestSendRulesPerInstance(t *testing.T) {
	cfg := configs.Default()
	cfg.WeCom.CorpID = "ww1"
	acme := configs.Default().WeCom
	acme.CorpID, acme.SendRate, acme.MemberMassLimit = "ww2", "30/s", "4/month"
	kids := configs.Default().WeCom
	kids.CorpID = "ww3"
	cfg.WeCom.Instances = map[string]wecom.Config{"acme": acme, "kids": kids}
	cfg.DingTalk.Instances = map[string]dingtalk.Config{"cn": {ClientID: "d", ClientSecret: "s", Brand: "acme"}}
	for _, tt := range []struct {
		name  string
		set   func(c *configs.Config)
		rates map[string]string
	}{
		{"defaults", func(*configs.Config) {}, map[string]string{"wecom": "40/s", "wecom:acme": "30/s", "wecom:kids": "40/s", "dingtalk:cn": "20/s"}},
		{"send.rate.wecom is every corp's", func(c *configs.Config) { c.Send.Rate.WeCom = "25/s" },
			map[string]string{"wecom": "25/s", "wecom:acme": "30/s", "wecom:kids": "25/s"}},
		{"the section's own first", func(c *configs.Config) { c.Send.Rate.WeCom, c.WeCom.SendRate = "25/s", "600/min" },
			map[string]string{"wecom": "600/min", "wecom:acme": "30/s", "wecom:kids": "25/s"}},
		{"unset: the channel's own", func(c *configs.Config) { c.Send.Rate.WeCom, c.Send.Rate.DingTalk = "", "" },
			map[string]string{"wecom": "40/s", "wecom:acme": "30/s", "wecom:kids": "40/s", "dingtalk": "20/s", "dingtalk:cn": "20/s"}},
	} {
		c := cfg
		c.Send.Rate = cfg.Send.Rate
		tt.set(&c)
		rates, err := SendRates(c)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		for key, want := range tt.rates {
			if got := rates[key].String(); got != want {
				t.Errorf("%s: rate of %s = %s, want %s", tt.name, key, got, want)
			}
		}
	}

	quotas, err := Quotas(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if quotas["wecom"] != (engine.Quota{Limit: 1}) || quotas["wecom:acme"].Limit != 4 || quotas["wecom:kids"] != (engine.Quota{Limit: 1}) {
		t.Errorf("quotas = %+v, want wecom 1/day, wecom:acme 4/month, wecom:kids 1/day", quotas)
	}
	acme.SendRate = "fast"
	cfg.WeCom.Instances["acme"] = acme
	if _, err := SendRates(cfg); err == nil || !strings.Contains(err.Error(), `wecom.instances.acme.send_rate: bad rate "fast"`) {
		t.Errorf("bad rate: %v", err)
	}
	acme.SendRate, acme.MemberMassLimit = "", "1/week"
	cfg.WeCom.Instances["acme"] = acme
	if _, err := Quotas(cfg); err == nil || !strings.Contains(err.Error(), `wecom.instances.acme.member_mass_limit: bad quota "1/week"`) {
		t.Errorf("bad quota: %v", err)
	}
}
