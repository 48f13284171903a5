package adapters

import "log/slog"

// Deps is what the gateway gives a channel it builds: where to record
// what the channel receives, a token cache shared by the replicas, the
// log, and the most bytes a callback body may have.
type Deps struct {
	Recorder BatchRecorder
	Tokens   TokenCache
	Logger   *slog.Logger
	// MaxBodyBytes limits a callback's body; 0: the channel's own limit.
	MaxBodyBytes int64
}

// Section is a channel kind's configuration section that knows its
// configured instances and builds them from Deps alone. The wiring
// lists sections; a further channel is its section in the configuration
// and one line there. The section's own type decodes its keys (the
// configuration's YAML and SCRMGW_* forms of its fields), states its
// defaults (SetDefaults) and checks them (Validate).
type Section interface {
	// Spec is the kind's Spec, credential-free; its Name is the kind.
	Spec() Spec
	// Configured lists the configured instances, the default first.
	Configured() []Build
}

// Build is one configured instance of a Section.
type Build struct {
	// Name is the instance's name: DefaultInstance for the section's
	// own keys.
	Name string
	// SendRate is the instance's send rate as configured ("40/s",
	// "off"); "": the Spec's Rate.
	SendRate string
	// New builds the instance's channel.
	New func(Deps) (Channel, error)
}
