package adapters

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// A channel instance is one configured account of a channel kind: one
// WeCom corp, one DingTalk app, one webhook endpoint. It is named by its
// key, which is what the registry, identities (of members and guides),
// the outbox, consent and send reservations record as "channel":
//
//   - the kind alone ("wecom") for the instance named DefaultInstance, so
//     a deployment of one corp per channel keeps the keys it always had;
//   - kind:instance ("wecom:acme") for any other.
//
// Workflows and templates name kinds; the gateway resolves the instance
// from the member's identities (an external_userid belongs to one corp).
const DefaultInstance = "default"

// InstanceKey names instance of kind. An empty instance is the default.
func InstanceKey(kind, instance string) string {
	if instance == "" || instance == DefaultInstance {
		return kind
	}
	return kind + ":" + instance
}

// KindOf returns the kind and the instance an instance key names.
func KindOf(key string) (kind, instance string) {
	if k, inst, ok := strings.Cut(key, ":"); ok {
		return k, inst
	}
	return key, DefaultInstance
}

// MaxInstanceName is the longest instance name: its key ("dingtalk:"
// and the name) must fit the 32 characters the store keeps of a channel
// in the inbox, the outbox, consent, handovers and send reservations.
const MaxInstanceName = 20

// ValidInstanceName reports why name cannot name an instance: lower-case
// letters, digits, '-' and '_', starting with a letter, at most
// MaxInstanceName bytes (it appears in callback paths, cache keys,
// metrics labels and the store's channel columns).
func ValidInstanceName(name string) error {
	if name == "" || len(name) > MaxInstanceName {
		return fmt.Errorf("instance name %q: want 1 to %d characters", name, MaxInstanceName)
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z':
		case i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '_'):
		default:
			return fmt.Errorf("instance name %q: use lower-case letters, digits, '-' and '_', starting with a letter", name)
		}
	}
	return nil
}

// InstanceNames checks the names of a section's instances (the
// section's instances.<name> keys): each a valid name, not the default
// (the section itself), none with instances of its own (nested). It
// returns the names, sorted, whose settings can be checked further, and
// the errors of the others (and of nesting, which is reported and still
// checked further).
func InstanceNames[T any](section string, instances map[string]T, nested func(T) bool) ([]string, []error) {
	var names []string
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(instances)) {
		if err := ValidInstanceName(name); err != nil {
			errs = append(errs, fmt.Errorf("%s.instances.%s: %w", section, name, err))
			continue
		}
		if name == DefaultInstance {
			errs = append(errs, fmt.Errorf("%s.instances.%s: the default instance is the %s section itself", section, name, section))
			continue
		}
		if nested(instances[name]) {
			errs = append(errs, fmt.Errorf("%s.instances.%s.instances: only the top-level %s section has instances", section, name, section))
		}
		names = append(names, name)
	}
	return names, errs
}

// Rate is a send rate: N messages per Per.
type Rate struct {
	N   int
	Per time.Duration
}

// IsZero reports whether the rate is unset (no limit).
func (r Rate) IsZero() bool { return r.N <= 0 || r.Per <= 0 }

func (r Rate) String() string {
	if r.IsZero() {
		return "unlimited"
	}
	switch r.Per {
	case time.Second:
		return fmt.Sprintf("%d/s", r.N)
	case time.Minute:
		return fmt.Sprintf("%d/min", r.N)
	case time.Hour:
		return fmt.Sprintf("%d/h", r.N)
	}
	return fmt.Sprintf("%d/%s", r.N, r.Per)
}

// AttrBrands is the Inbound attribute an instance that serves several
// brands (a WeCom corp shared by a group's brands) sets on contact
// events: the brands, comma-separated, Inbound.Brand (its default) first.
// The contact joins the one of the guide or store they added.
const AttrBrands = "brands"

// Brands returns the brands an inbound delivery may belong to: those of
// AttrBrands, else Brand alone (none when it is empty).
func (in *Inbound) Brands() []string {
	if v := in.Attrs[AttrBrands]; v != "" {
		return strings.Split(v, ",")
	}
	if in.Brand == "" {
		return nil
	}
	return []string{in.Brand}
}

// Specs is what the engine, the bots and the admin API know of the
// channels a gateway was wired with, without sending: the instance keys
// in the order of preference (Registry.Names) and each one's Spec. The
// Registry is one; SpecList another.
type Specs interface {
	Names() []string
	Spec(key string) (Spec, bool)
}

// Spec returns the Spec of the channel registered under key, when the
// channel has one (is Specified).
func (r *Registry) Spec(key string) (Spec, bool) {
	c, ok := r.Channel(key)
	if !ok {
		return Spec{}, false
	}
	s, ok := c.(Specified)
	if !ok {
		return Spec{}, false
	}
	return s.Spec(), true
}

// SpecList is Specs of fixed specs, each the default instance of its
// Name's kind: for validating and previewing without channels, and tests.
type SpecList []Spec

// Names lists the specs' names in order.
func (l SpecList) Names() []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = s.Name
	}
	return out
}

// Spec returns the spec named key.
func (l SpecList) Spec(key string) (Spec, bool) {
	for _, s := range l {
		if s.Name == key {
			return s, true
		}
	}
	return Spec{}, false
}

// Kinds returns the channel kinds of instance keys, each once, in the
// order they first appear.
func Kinds(keys []string) []string {
	var out []string
	for _, k := range keys {
		kind, _ := KindOf(k)
		if !slices.Contains(out, kind) {
			out = append(out, kind)
		}
	}
	return out
}

// Named is one configured instance of a channel kind: its name
// (DefaultInstance for the channel's own config section) and config.
type Named[C any] struct {
	Kind   string
	Name   string
	Config C
}

// Key is the instance's channel key ("wecom", "wecom:acme").
func (n Named[C]) Key() string { return InstanceKey(n.Kind, n.Name) }

// Instances lists a channel section's instances: the default (the
// section's own keys, when enabled) first, then the named ones by name.
func Instances[C any](kind string, def C, enabled bool, named map[string]C) []Named[C] {
	var out []Named[C]
	if enabled {
		out = append(out, Named[C]{Kind: kind, Name: DefaultInstance, Config: def})
	}
	for _, n := range slices.Sorted(maps.Keys(named)) {
		out = append(out, Named[C]{Kind: kind, Name: n, Config: named[n]})
	}
	return out
}
