package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/workflows"
)

// shanghai is where the fixture stores are, unless a test says otherwise.
var shanghai = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// at is a wall time in Shanghai on a day of March 2025 (the 3rd is a
// Monday).
func at(day, hour, min int) time.Time {
	return time.Date(2025, 3, day, hour, min, 0, 0, shanghai)
}

// vclock is the virtual clock tests move.
type vclock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *vclock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *vclock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// queued is a wake task the engine queued, with the time it is due.
type queued struct {
	id, queue string
	at        time.Time
	payload   []byte
}

// recQueue queues on real Redis through asynq and remembers what it
// queued and when it is due, so a test can deliver the tasks on its
// virtual clock (and remove them from Redis as a worker would).
type recQueue struct {
	client *asynq.Client
	insp   *asynq.Inspector
	clock  *vclock

	mu    sync.Mutex
	tasks []queued
	fail  bool
}

func (q *recQueue) EnqueueContext(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	q.mu.Lock()
	fail := q.fail
	q.mu.Unlock()
	if fail {
		return nil, errors.New("redis unavailable")
	}
	info, err := q.client.EnqueueContext(ctx, t, opts...)
	if err != nil {
		return info, err
	}
	// The task is delivered when the wake is due: a worker that gets it
	// early (Lead) waits for that time in real time, which a test does
	// not have.
	task := queued{id: info.ID, queue: info.Queue, at: q.clock.Now(), payload: t.Payload()}
	var p wakePayload
	if json.Unmarshal(t.Payload(), &p) == nil && p.Due != 0 && time.UnixMilli(p.Due).After(task.at) {
		task.at = time.UnixMilli(p.Due)
	}
	q.mu.Lock()
	q.tasks = append(q.tasks, task)
	q.mu.Unlock()
	return info, nil
}

// take removes and returns the tasks due at now, earliest first.
func (q *recQueue) take(now time.Time) []queued {
	q.mu.Lock()
	defer q.mu.Unlock()
	slices.SortStableFunc(q.tasks, func(a, b queued) int { return a.at.Compare(b.at) })
	var due []queued
	for len(q.tasks) > 0 && !q.tasks[0].at.After(now) {
		due = append(due, q.tasks[0])
		q.tasks = q.tasks[1:]
	}
	return due
}

func (q *recQueue) next() time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	var n time.Time
	for _, t := range q.tasks {
		if n.IsZero() || t.at.Before(n) {
			n = t.at
		}
	}
	return n
}

func (q *recQueue) pending() []queued {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.tasks)
}

// lose drops every queued task, from Redis too: Redis lost its data.
func (q *recQueue) lose(t *testing.T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, task := range q.tasks {
		if err := q.insp.DeleteTask(task.queue, task.id); err != nil {
			t.Fatalf("deleting task %s: %v", task.id, err)
		}
	}
	q.tasks = nil
}

// sent is a message the engine handed to the sender.
type sent struct {
	at      time.Time
	channel string
	out     adapters.Outbound
	meta    SendMeta
}

// fakeSender stands in for the outbound pipeline. Like it, it saves each
// message once per key in the outbox (the real table) and reports later,
// not in Send, what became of it: settle (or, with auto, a goroutine right
// after Send) claims the messages, marks them sent (a message through a
// guide on WeCom pending the guide's confirmation, as WeCom's are) or
// failed as outcome says, and tells the engine (Engine.SendSettled), as
// the pipeline's Sender does. It counts every call.
type fakeSender struct {
	store *store.Store
	now   func() time.Time
	// settled is the engine's hook (Engine.SendSettled).
	settled func(ctx context.Context, key string) error
	// outcome decides what becomes of a message; default: sent.
	outcome func(channel string, m *adapters.Outbound) sendResult
	// auto settles each message in a goroutine as soon as it is saved;
	// instant settles it in Send, before the engine records that its
	// step waits for it.
	auto, instant bool

	mu    sync.Mutex
	calls int
	// memberCalls counts the calls to members (a WeCom message task
	// also tells the guide of their confirmation task).
	memberCalls int
	sent        []sent
	keys        map[string]bool
	queued      []string
	fail        error
}

// sendResult is what becomes of a message in the fake pipeline.
type sendResult struct {
	// hold keeps it queued (waiting for a rate slot, retrying).
	hold bool
	// failure and reason fail it for good.
	failure, reason string
}

func newFakeSender(s *store.Store, now func() time.Time) *fakeSender {
	return &fakeSender{store: s, now: now, keys: map[string]bool{}}
}

func (f *fakeSender) Send(ctx context.Context, channel string, m *adapters.Outbound, meta SendMeta) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.calls++
	if m.ToParty == adapters.PartyMember {
		f.memberCalls++
	}
	if f.keys[m.IdempotencyKey] {
		return nil
	}
	payload, _ := json.Marshal(m)
	member := meta.MemberID
	row := &store.OutboxMessage{IdempotencyKey: m.IdempotencyKey, Channel: channel, Recipient: m.To, MemberID: &member,
		GuideID: meta.GuideID, BrandID: meta.Brand, Kind: orWord(m.Kind, "text"), Payload: payload}
	if _, err := f.store.AddOutbox(ctx, row); err != nil {
		return err
	}
	f.keys[m.IdempotencyKey] = true
	f.sent = append(f.sent, sent{at: f.now(), channel: channel, out: *m, meta: meta})
	switch {
	case f.instant:
		f.settleKey(ctx, m.IdempotencyKey)
	case f.auto:
		go f.settleKey(context.WithoutCancel(ctx), m.IdempotencyKey)
	default:
		f.queued = append(f.queued, m.IdempotencyKey)
	}
	return nil
}

// settle settles the queued messages and returns how many settled.
func (f *fakeSender) settle(ctx context.Context) int {
	f.mu.Lock()
	keys := f.queued
	f.queued = nil
	f.mu.Unlock()
	n := 0
	for _, k := range keys {
		if f.settleKey(ctx, k) {
			n++
		} else {
			f.mu.Lock()
			f.queued = append(f.queued, k)
			f.mu.Unlock()
		}
	}
	return n
}

// settleKey settles one message, unless outcome holds it.
func (f *fakeSender) settleKey(ctx context.Context, key string) bool {
	row, err := f.store.OutboxByKey(ctx, key)
	if err != nil || row.State != store.OutboxPending {
		return err == nil
	}
	var m adapters.Outbound
	json.Unmarshal(row.Payload, &m)
	res := sendResult{}
	if f.outcome != nil {
		res = f.outcome(row.Channel, &m)
	}
	if res.hold {
		return false
	}
	if _, claimed, err := f.store.ClaimOutbox(ctx, row.ID); err != nil || !claimed {
		return false
	}
	switch {
	case res.failure != "":
		err = f.store.FailOutboxFor(ctx, row.ID, res.failure, res.reason)
	case m.Via != "" && throughGuide(testChannels, row.Channel):
		err = f.store.FinishOutbox(ctx, row.ID, "msg-"+key, string(adapters.DeliveryPending))
	default:
		err = f.store.FinishOutbox(ctx, row.ID, "msg-"+key, "")
	}
	if err != nil {
		panic(fmt.Sprintf("settling %s: %v", key, err))
	}
	if f.settled != nil {
		if err := f.settled(ctx, key); err != nil {
			panic(fmt.Sprintf("telling the engine %s settled: %v", key, err))
		}
	}
	return true
}

// toMembers returns the messages sent to members (not guides' task
// notices).
func (f *fakeSender) toMembers() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sent
	for _, s := range f.sent {
		if s.out.ToParty == adapters.PartyMember {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeSender) toGuides() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sent
	for _, s := range f.sent {
		if s.out.ToParty == adapters.PartyGuide {
			out = append(out, s)
		}
	}
	return out
}

// harness is an engine on a real database and Redis with a virtual clock.
type harness struct {
	t      *testing.T
	ctx    context.Context
	s      *store.Store
	e      *Engine
	clock  *vclock
	q      *recQueue
	sender *fakeSender
	reg    *templates.Registry
	errs   []error
}

type option func(*Options)

func newHarness(t *testing.T, s *store.Store, start time.Time, opts ...option) *harness {
	t.Helper()
	opt, err := asynq.ParseRedisURI(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(opt)
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { client.Close(); insp.Close() })
	clock := &vclock{t: start}
	reg, err := templates.LoadFS(configs.BuiltinTemplates())
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ctx: context.Background(), s: s, clock: clock, reg: reg,
		q:      &recQueue{client: client, insp: insp, clock: clock},
		sender: newFakeSender(s, clock.Now)}
	o := Options{Store: s, Queue: h.q, Templates: reg, Channels: testChannels, Sender: h.sender, Clock: clock.Now, Logger: testLogger(t), Instance: "test"}
	for _, f := range opts {
		f(&o)
	}
	if h.e, err = New(o); err != nil {
		t.Fatal(err)
	}
	h.sender.settled = h.e.SendSettled
	h.seed()
	return h
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("ENGINE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// seed creates the brand camellia with two stores (Shanghai and London),
// a guide in each on WeCom, and a DingTalk guide in Shanghai.
func (h *harness) seed() {
	ctx := h.ctx
	if err := h.s.CreateBrand(ctx, &store.Brand{ID: "camellia", Name: "山茶花"}); err != nil {
		h.t.Fatal(err)
	}
	for _, rs := range []store.RetailStore{
		{ID: "sh1", Name: "静安店", Lat: 31.22, Lng: 121.45, Address: "南京西路1号", TimeZone: "Asia/Shanghai", OpeningHours: "10:00-22:00", Active: true, BrandIDs: []string{"camellia"}},
		{ID: "ldn", Name: "Soho", Lat: 51.51, Lng: -0.13, Address: "1 Old Compton St", TimeZone: "Europe/London", OpeningHours: "10:00-20:00", Active: true, BrandIDs: []string{"camellia"}},
	} {
		if err := h.s.CreateRetailStore(ctx, &rs); err != nil {
			h.t.Fatal(err)
		}
	}
	for _, g := range []store.Guide{
		{ID: "g1", StoreID: "sh1", Name: "小王", Identities: []store.GuideIdentity{{Channel: "wecom", ExternalID: "wang"}}, Active: true},
		{ID: "g2", StoreID: "ldn", Name: "Amy", Identities: []store.GuideIdentity{{Channel: "wecom", ExternalID: "amy"}}, Active: true},
		{ID: "g3", StoreID: "sh1", Name: "小李", Identities: []store.GuideIdentity{{Channel: "dingtalk", ExternalID: "li"}}, Active: true},
	} {
		if err := h.s.CreateGuide(ctx, &g); err != nil {
			h.t.Fatal(err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// member creates a camellia member on a channel, bound to a guide ("" for
// none).
func (h *harness) member(name, channel, guide string) int64 {
	h.t.Helper()
	m, _, err := h.s.EnsureMember(h.ctx, store.NewMember{BrandID: "camellia", Name: name,
		Identities: []store.Identity{{Channel: channel, ExternalID: channel + "-" + name}}})
	if err != nil {
		h.t.Fatal(err)
	}
	if guide != "" {
		g, err := h.s.Guide(h.ctx, guide, "")
		if err != nil {
			h.t.Fatal(err)
		}
		if _, _, err := h.s.Bind(h.ctx, &store.Binding{MemberID: m.ID, BrandID: "camellia", GuideID: g.ID, StoreID: g.StoreID, Reason: "manual"}); err != nil {
			h.t.Fatal(err)
		}
	}
	return m.ID
}

// put stores and enables a workflow.
func (h *harness) put(yaml string) *Version {
	h.t.Helper()
	name := ""
	for _, line := range strings.Split(yaml, "\n") {
		if v, ok := strings.CutPrefix(line, "name: "); ok {
			name = strings.TrimSpace(v)
			break
		}
	}
	v, err := h.e.Put(h.ctx, "camellia", name, []byte(yaml))
	if err != nil {
		h.t.Fatalf("putting %s: %v", name, err)
	}
	if err := h.e.Enable(h.ctx, "camellia", name); err != nil {
		h.t.Fatal(err)
	}
	return v
}

// putExample stores and enables a shipped example.
func (h *harness) putExample(name string) *Version {
	h.t.Helper()
	data, err := fs.ReadFile(configs.ExampleWorkflows(), name+".yaml")
	if err != nil {
		h.t.Fatal(err)
	}
	return h.put(string(data))
}

var eventSeq int

// event appends an event to the log at the clock's time and handles it.
func (h *harness) event(typ string, member int64, payload string) *store.Event {
	h.t.Helper()
	eventSeq++
	ev := &store.Event{Type: typ, BrandID: "camellia", MemberID: &member, Source: "test",
		SourceID: fmt.Sprintf("%s-%d-%d", typ, member, eventSeq), Payload: payload, OccurredAt: h.clock.Now().UTC()}
	if _, err := h.s.AppendEvent(h.ctx, ev); err != nil {
		h.t.Fatal(err)
	}
	if err := h.e.HandleEvent(h.ctx, ev); err != nil {
		h.t.Fatalf("handling %s: %v", typ, err)
	}
	return ev
}

// deliver hands a queued task to the wake handler, as a worker would
// (removing it from Redis first).
func (h *harness) deliver(task queued) error {
	if err := h.q.insp.DeleteTask(task.queue, task.id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
		h.t.Fatalf("deleting delivered task %s: %v", task.id, err)
	}
	return h.e.HandleWake(h.ctx, asynq.NewTask(TypeWake, task.payload))
}

// fire delivers every task due by the clock, and those they queue, and
// settles the messages sent meanwhile.
func (h *harness) fire() {
	for range 1000 {
		due := h.q.take(h.clock.Now())
		for _, task := range due {
			if err := h.deliver(task); err != nil {
				h.errs = append(h.errs, err)
			}
		}
		if h.sender.settle(h.ctx) == 0 && len(due) == 0 {
			return
		}
	}
	h.t.Fatal("tasks keep coming")
}

// sweep runs the sweeper at the clock's time.
func (h *harness) sweep() {
	h.t.Helper()
	if err := h.e.Sweep(h.ctx); err != nil {
		h.t.Fatalf("sweep: %v", err)
	}
}

// runUntil moves the clock to t, stopping at every due task and wake on
// the way: the sweeper hands wakes over, and due tasks are delivered.
func (h *harness) runUntil(t time.Time) {
	h.t.Helper()
	for range 10000 {
		h.sweep()
		h.fire()
		next := h.q.next()
		if w := h.nextWake(); !w.IsZero() && (next.IsZero() || w.Before(next)) {
			next = w
		}
		if next.IsZero() || next.After(t) {
			h.clock.Set(t)
			h.sweep()
			h.fire()
			return
		}
		if next.After(h.clock.Now()) {
			h.clock.Set(next)
		}
	}
	h.t.Fatal("runUntil does not end")
}

// nextWake is the earliest wake of an active run that is not in the queue.
func (h *harness) nextWake() time.Time {
	runs, err := h.s.Runs(h.ctx, store.RunFilter{State: store.RunActive, Limit: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	var n time.Time
	for _, r := range runs {
		if r.WakeAt != nil && r.QueuedAt == nil && (n.IsZero() || r.WakeAt.Before(n)) {
			n = *r.WakeAt
		}
	}
	return n
}

func (h *harness) runs(member int64) []store.WorkflowRun {
	h.t.Helper()
	runs, err := h.s.Runs(h.ctx, store.RunFilter{MemberID: member})
	if err != nil {
		h.t.Fatal(err)
	}
	return runs
}

// only returns the member's one run.
func (h *harness) only(member int64) store.WorkflowRun {
	h.t.Helper()
	runs := h.runs(member)
	if len(runs) != 1 {
		h.t.Fatalf("member %d has %d runs, want 1: %+v", member, len(runs), runs)
	}
	return runs[0]
}

// runOf returns the member's one run of a workflow.
func (h *harness) runOf(member int64, workflow string) store.WorkflowRun {
	h.t.Helper()
	runs, err := h.s.Runs(h.ctx, store.RunFilter{MemberID: member, Workflow: workflow})
	if err != nil || len(runs) != 1 {
		h.t.Fatalf("member %d's runs of %s: %+v, %v", member, workflow, runs, err)
	}
	return runs[0]
}

// trail lists a run's steps as "step:state".
func (h *harness) trail(runID int64) []string {
	h.t.Helper()
	steps, err := h.s.RunSteps(h.ctx, runID)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, s := range steps {
		out = append(out, s.StepID+":"+s.State)
	}
	return out
}

// noErrors fails the test on wake errors other than expected busy claims.
func (h *harness) noErrors() {
	h.t.Helper()
	for _, err := range h.errs {
		if !errors.Is(err, errStepBusy) {
			h.t.Errorf("wake error: %v", err)
		}
	}
}

// forEach runs a test on both databases, each with its own harness.
func forEach(t *testing.T, start time.Time, f func(t *testing.T, h *harness), opts ...option) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		f(t, newHarness(t, s, start, opts...))
	})
}

// loadWorkflow loads a workflow against the shipped templates.
func loadWorkflow(t *testing.T, yaml string) *workflows.Workflow {
	t.Helper()
	reg, err := templates.LoadFS(configs.BuiltinTemplates())
	if err != nil {
		t.Fatal(err)
	}
	w, err := workflows.Load("test.yaml", []byte(yaml), workflows.Options{Templates: reg})
	if err != nil {
		t.Fatal(err)
	}
	return w
}
