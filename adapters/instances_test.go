package adapters

import (
	"context"
	"slices"
	"testing"
)

func TestInstanceKeys(t *testing.T) {
	for _, tt := range []struct{ kind, instance, key string }{
		{"wecom", "", "wecom"},
		{"wecom", DefaultInstance, "wecom"},
		{"wecom", "acme", "wecom:acme"},
		{"dingtalk", "north-2", "dingtalk:north-2"},
	} {
		if got := InstanceKey(tt.kind, tt.instance); got != tt.key {
			t.Errorf("InstanceKey(%q, %q) = %q, want %q", tt.kind, tt.instance, got, tt.key)
		}
		kind, inst := KindOf(tt.key)
		want := tt.instance
		if want == "" {
			want = DefaultInstance
		}
		if kind != tt.kind || inst != want {
			t.Errorf("KindOf(%q) = %q, %q; want %q, %q", tt.key, kind, inst, tt.kind, want)
		}
	}
}

func TestValidInstanceName(t *testing.T) {
	for name, ok := range map[string]bool{
		"acme": true, "north-2": true, "a_b": true, "default": true,
		"": false, "Acme": false, "2nd": false, "a:b": false, "a/b": false, "-x": false,
		"abcdefghijklmnopqrst": true, "abcdefghijklmnopqrstu": false,
	} {
		if err := ValidInstanceName(name); (err == nil) != ok {
			t.Errorf("ValidInstanceName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

type named string

func (n named) Name() string { return string(n) }
func (n named) Send(context.Context, *Outbound) (*Receipt, error) {
	return &Receipt{}, nil
}

func TestRegistryKeepsRegistrationOrder(t *testing.T) {
	r := NewRegistry()
	for _, n := range []string{"wecom", "dingtalk", "wecom:acme", "webhook"} {
		r.Register(named(n))
	}
	if got, want := r.Names(), []string{"wecom", "dingtalk", "wecom:acme", "webhook"}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
}

func TestInstancesListsDefaultThenNamedByName(t *testing.T) {
	named := map[string]string{"north": "n", "acme": "a"}
	var keys []string
	for _, n := range Instances("wecom", "d", true, named) {
		keys = append(keys, n.Key()+"="+n.Config)
	}
	if want := []string{"wecom=d", "wecom:acme=a", "wecom:north=n"}; !slices.Equal(keys, want) {
		t.Fatalf("Instances = %v, want %v", keys, want)
	}
	if got := Instances("wecom", "d", false, named); len(got) != 2 || got[0].Name != "acme" {
		t.Fatalf("without the default: %+v", got)
	}
}
