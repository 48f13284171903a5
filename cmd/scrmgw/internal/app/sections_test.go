package app

import (
	"testing"

	"github.com/scrmgw/scrmgw/adapters"
)

// testSection is a channel section as a channel package would define
// it: two instances, the default with its own send rate.
type testSection struct{}

func (testSection) Spec() adapters.Spec {
	return adapters.Spec{Name: "parrot", MemberKinds: []string{adapters.KindText}}
}

func (testSection) Configured() []adapters.Build {
	build := func(key string) func(adapters.Deps) (adapters.Channel, error) {
		return func(d adapters.Deps) (adapters.Channel, error) { return &chirp{name: key, rec: d.Recorder}, nil }
	}
	return []adapters.Build{
		{Name: adapters.DefaultInstance, SendRate: "5/s", New: build("parrot")},
		{Name: "north", New: build("parrot:north")},
	}
}

// TestSectionInstances: a section's instances get their keys, their send
// rates with the keys that set them, and build with the gateway's deps.
func TestSectionInstances(t *testing.T) {
	ins := sectionInstances(testSection{})
	if len(ins) != 2 {
		t.Fatalf("%d instances, want 2", len(ins))
	}
	for i, want := range []struct{ key, rate, rateKey string }{
		{"parrot", "5/s", "parrot.send_rate"},
		{"parrot:north", "", "parrot.instances.north.send_rate"},
	} {
		in := ins[i]
		if in.key != want.key || in.kind != "parrot" || in.rate != want.rate || in.rateKey != want.rateKey {
			t.Errorf("instance %d: key %q kind %q rate %q (%s), want %+v", i, in.key, in.kind, in.rate, in.rateKey, want)
		}
		ch, err := in.build(&App{}, nil)
		if err != nil || ch.Name() != want.key {
			t.Errorf("instance %d built %v, %v", i, ch, err)
		}
	}
}
