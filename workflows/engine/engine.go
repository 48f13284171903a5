package engine

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/templates"
)

// Task types the engine handles; Register routes them.
const (
	// TypeWake wakes one run at one sequence number.
	TypeWake = "workflow:wake"
	// TypeSweep hands the next horizon's wakes to the queue, hands over
	// again the lost ones and starts the runs of due schedules. Schedule
	// it every 30 s on every replica: a lease and schedule markers make
	// the work happen once.
	TypeSweep = "workflow:sweep"
)

// Enqueuer is the part of *asynq.Client the engine uses.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Sender hands a message to the outbound pipeline, which sends it once per
// m.IdempotencyKey (with rate limits and retries) on the named channel.
type Sender interface {
	Send(ctx context.Context, channel string, m *adapters.Outbound, meta SendMeta) error
}

// Withdrawer is implemented by a Sender that can take back the sends of a
// run still waiting for a human step (a WeCom message task its guide has
// not confirmed) when the run ends at a goal or an exit: the member
// bought, the live session was cancelled or moved. keyPrefix starts the
// idempotency keys of the run's sends.
type Withdrawer interface {
	Withdraw(ctx context.Context, keyPrefix, why string) (int, error)
}

// SendMeta describes a message for the outbox.
type SendMeta struct {
	MemberID int64
	GuideID  string
	Brand    string
	// Queue is the queue the delivery should go on: Options.CriticalQueue
	// for high-priority sends (a welcome), else Options.SendQueue.
	Queue    string
	RunID    int64
	Workflow string
	Step     string
}

// Assigner binds members to guides for assign_guide steps.
type Assigner interface {
	// Assign returns the guide (and their store) a member of a brand
	// should be bound to, or ErrNoGuide.
	Assign(ctx context.Context, req AssignRequest) (guideID, storeID string, err error)
}

// AssignRequest is what an assign_guide step asks of the Assigner.
type AssignRequest struct {
	MemberID int64
	Brand    string
	// Strategy is workflows.AssignNearest, AssignStore or AssignPool.
	Strategy string
	// StoreID is the store of AssignStore: the step's store_id, else the
	// trigger event's store, else the store of the member's last order;
	// "" when none is known.
	StoreID string
	// Lat and Lng locate the member when the trigger event carries a
	// location (attrs lat and lng); nil otherwise.
	Lat, Lng *float64
	// MaxDistanceKm bounds the nearest-store walk; 0: the gateway's.
	MaxDistanceKm float64
	// Fallback is workflows.AssignPool, AssignNearest or AssignNone.
	Fallback string
}

// ErrNoGuide is what an Assigner returns when no guide qualifies.
var ErrNoGuide = errors.New("no guide available")

// KeepBinding is the default Assigner: it keeps the member's current
// guide, and has none to offer a member without one. The nearest-store
// assignment replaces it.
type KeepBinding struct {
	Store *store.Store
}

// Assign returns the member's current guide.
func (k KeepBinding) Assign(ctx context.Context, req AssignRequest) (string, string, error) {
	p, err := k.Store.MemberProfile(ctx, req.Brand, req.MemberID)
	if err != nil {
		return "", "", fmt.Errorf("assigning guide: %w", err)
	}
	if p.Binding == nil {
		return "", "", ErrNoGuide
	}
	return p.Binding.GuideID, p.Binding.StoreID, nil
}

// Coupons issues coupons for send steps with coupon:.
type Coupons interface {
	// Issue issues the member a coupon from a batch. It must be
	// idempotent by req.Key: the same key gives the same coupon.
	Issue(ctx context.Context, req CouponRequest) (templates.Coupon, error)
}

// CouponRequest asks for one coupon.
type CouponRequest struct {
	Batch    string
	MemberID int64
	Brand    string
	Key      string
	At       time.Time
	// RunID, Workflow and GuideID say whose message carries the coupon
	// (the guide it is sent through, or the member's guide): its
	// redemption is credited to them. Zero in a dry run.
	RunID    int64
	Workflow string
	GuideID  string
}

// batchCodes is the default Coupons: a code derived from the batch and the
// key, with no value and valid 30 days, until a coupon system is wired.
type batchCodes struct{}

func (batchCodes) Issue(_ context.Context, req CouponRequest) (templates.Coupon, error) {
	return templates.Coupon{Code: couponCode(req), ExpiresAt: req.At.Add(30 * 24 * time.Hour)}, nil
}

// Options configure an Engine. Store, Queue, Templates and Sender are
// required.
type Options struct {
	Store     *store.Store
	Queue     Enqueuer
	Templates *templates.Registry
	Sender    Sender
	// Assigner binds members to guides; default KeepBinding.
	Assigner Assigner
	// Coupons issues coupons; default codes derived from the batch with
	// no value.
	Coupons Coupons
	// CouponBatches are the configured batches, for dry runs (Coupons
	// issues the real ones).
	CouponBatches CouponBatches
	// Quotas are the channels' own limits on how many messages one
	// member may receive per period (WeCom: group-send messages to an
	// external contact), by channel; default none. A send over a quota is
	// delayed to the next period or skipped, per the step's when_capped.
	Quotas map[string]Quota
	// Webhooks is the client webhook steps call with; default one with
	// a 30 s timeout (each step's own timeout applies too).
	Webhooks *http.Client
	// WebhookSecret returns the signing secret a webhook step names;
	// default the environment variable SCRMGW_WEBHOOK_SECRET_<NAME>
	// (upper case, '-' as '_'), "whsec_"+base64 or raw text.
	WebhookSecret func(name string) ([]byte, error)
	// Clock is the time; default time.Now. Tests pass a virtual clock.
	Clock  func() time.Time
	Logger *slog.Logger
	// Horizon is how far ahead wakes are handed to Asynq; default 1h.
	Horizon time.Duration
	// SpreadWindow spreads the sends released at the end of quiet
	// hours (or of a cap); default 5m.
	SpreadWindow time.Duration
	// Locale is the locale messages are rendered in; default "zh".
	Locale string
	// Tagger marks the tags tag and untag steps set on the channels
	// that keep tags of their own (WeCom corp tags); nil: tags stay in
	// scrmgw.
	Tagger Tagger
	// Groups sends the messages of send_groups steps to customer groups
	// (WeCom 客户群) through their owners; nil: such a step fails.
	Groups GroupMessenger
	// GroupKinds are the message kinds each channel kind sends to its
	// customer groups (workflows.Options.GroupKinds). Default: from the
	// specs of Channels.
	GroupKinds map[string][]string
	// Channels are the channel instances the gateway was wired with
	// (the adapters Registry), in the order a member's own channel is
	// chosen, with their specs: whether a channel reaches a member
	// through their guide, what it sends guides. Workflows may name
	// their kinds. Default none: nobody can be reached.
	Channels adapters.Specs
	// MemberKinds are the message kinds each channel kind sends members
	// (workflows.Options.MemberKinds): a workflow put whose send step's
	// template renders a kind its channel cannot carry is refused. Stored
	// versions are not checked again when they are loaded. Default: from
	// the specs of Channels.
	MemberKinds map[string][]string
	// WakeQueue is the Asynq queue of wakes; default "workflows". Its
	// handlers mostly wait (see Lead) or wait for the database: serve it
	// with a Concurrency of at least the wakes due per second, or from a
	// server of its own.
	WakeQueue string
	// CriticalQueue is the queue of the wakes of high-priority sends (a
	// welcome) and of their delivery; default "critical". SendQueue is
	// the queue of other deliveries; default "default".
	CriticalQueue string
	SendQueue     string
	// Lead is how long before it is due a wake is handed to Asynq;
	// default 1s. Asynq moves due tasks once per DelayedTaskCheckInterval
	// (1 s in the gateway): a wake handed over ahead reaches a worker
	// before its time and the handler waits for it (holding the worker,
	// not a database connection), so it acts on time rather than up to
	// a second or two late. Negative: wakes are handed over at their due
	// time rounded up to a whole second, no handler waits, and wakes act
	// up to about two seconds late; for a WakeQueue served with little
	// Concurrency.
	Lead time.Duration
	// SendPoll is how soon a send step whose message is in the outbox
	// looks at it itself, in case the news that it settled
	// (SendSettled) was lost; default 1m. The wait doubles with the time
	// the message has been waiting (a rate-limited campaign), up to
	// SendPollMax, default 30m.
	SendPoll    time.Duration
	SendPollMax time.Duration
	// MaxWakeRetry is the Asynq MaxRetry of wake tasks; default 10.
	MaxWakeRetry int
	// MaxStepAttempts is how often a step is tried before its run fails;
	// default 8 (with backoff from 30 s to an hour: about 4 hours).
	MaxStepAttempts int
	// SweepBatch is how many wakes the sweeper hands over per
	// transaction; default 1000.
	SweepBatch int
	// SweepGrace is how long a handed-over wake may be overdue before
	// the sweeper hands it over again; default 2m.
	SweepGrace time.Duration
	// ClaimTimeout is how long a claimed step may run before another
	// worker may take it over; default 2m.
	ClaimTimeout time.Duration
	// CacheTTL is how long the list of enabled workflows is cached;
	// default 10s. Put, Enable, Disable and Retire refresh it at once on
	// the replica that calls them.
	CacheTTL time.Duration
	// ScheduleCatchUp is how late a schedule firing may still start its
	// runs (after downtime); default 1h.
	ScheduleCatchUp time.Duration
	// MaxEarly is how early a wake may arrive and still be waited for
	// in the handler instead of scheduled again; default Lead + 1s.
	MaxEarly time.Duration
	// OnWake, when set, is called when a wake acts, with its due time
	// and the time it acted: for a lateness histogram.
	OnWake func(due, acted time.Time)
	// Instance names this replica in leases; default host-pid-random.
	Instance string
}

// Engine executes workflows. It is safe for concurrent use.
type Engine struct {
	opts  Options
	store *store.Store
	log   *slog.Logger

	versions sync.Map // versionKey → *workflows.Workflow
	brands   sync.Map // brand id → name

	mu      sync.Mutex
	enabled map[string]enabledCache // brand → enabled workflows
}

type enabledCache struct {
	at        time.Time
	workflows []store.Workflow
}

// New returns an Engine.
func New(opts Options) (*Engine, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("workflow engine: a store is required")
	case opts.Queue == nil:
		return nil, errors.New("workflow engine: a queue is required")
	case opts.Templates == nil:
		return nil, errors.New("workflow engine: templates are required")
	case opts.Sender == nil:
		return nil, errors.New("workflow engine: a sender is required")
	}
	if opts.Assigner == nil {
		opts.Assigner = KeepBinding{Store: opts.Store}
	}
	if opts.Coupons == nil {
		opts.Coupons = batchCodes{}
	}
	if opts.Webhooks == nil {
		opts.Webhooks = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.WebhookSecret == nil {
		opts.WebhookSecret = envSecret
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Channels == nil {
		opts.Channels = adapters.SpecList{}
	}
	if opts.GroupKinds == nil {
		opts.GroupKinds = groupKinds(opts.Channels)
	}
	if opts.MemberKinds == nil {
		opts.MemberKinds = memberKinds(opts.Channels)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&opts.Horizon, time.Hour)
	setDefault(&opts.SpreadWindow, 5*time.Minute)
	setDefault(&opts.Locale, "zh")
	setDefault(&opts.WakeQueue, "workflows")
	setDefault(&opts.CriticalQueue, "critical")
	setDefault(&opts.SendQueue, "default")
	setDefault(&opts.Lead, time.Second)
	opts.Lead = max(opts.Lead, 0)
	setDefault(&opts.SendPoll, time.Minute)
	setDefault(&opts.SendPollMax, 30*time.Minute)
	opts.SendPollMax = max(opts.SendPollMax, opts.SendPoll)
	setDefault(&opts.MaxWakeRetry, 10)
	setDefault(&opts.MaxStepAttempts, 8)
	setDefault(&opts.SweepBatch, 1000)
	setDefault(&opts.SweepGrace, 2*time.Minute)
	setDefault(&opts.ClaimTimeout, 2*time.Minute)
	setDefault(&opts.CacheTTL, 10*time.Second)
	setDefault(&opts.ScheduleCatchUp, time.Hour)
	setDefault(&opts.MaxEarly, opts.Lead+time.Second)
	if opts.Instance == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		rand.Read(b)
		opts.Instance = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	return &Engine{opts: opts, store: opts.Store, log: opts.Logger, enabled: make(map[string]enabledCache)}, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Register routes the engine's task types on mux.
func (e *Engine) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TypeWake, e.HandleWake)
	mux.HandleFunc(TypeSweep, e.HandleSweep)
}

func (e *Engine) now() time.Time { return e.opts.Clock().UTC() }

// envSecret reads a webhook secret from SCRMGW_WEBHOOK_SECRET_<NAME>.
func envSecret(name string) ([]byte, error) {
	key := "SCRMGW_WEBHOOK_SECRET_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	v := os.Getenv(key)
	if v == "" {
		return nil, fmt.Errorf("webhook secret %q is not configured (set %s): %w", name, key, errPermanent)
	}
	return decodeSecret(v)
}

// decodeSecret reads a Standard Webhooks secret: "whsec_" and base64, or
// the raw text.
func decodeSecret(v string) ([]byte, error) {
	if b64, ok := strings.CutPrefix(v, "whsec_"); ok {
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("decoding webhook secret: %v: %w", err, errPermanent)
		}
		return b, nil
	}
	return []byte(v), nil
}
