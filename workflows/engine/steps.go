package engine

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
)

// exec executes one step of a run: state is the step visit's state
// (pending on entry, waiting once a wait began) and failures how often
// it failed before. An error is an infrastructure failure (the database): the
// wake is retried. A step's own failures are outcomes.
func (e *Engine) exec(ctx context.Context, rc *runCtx, step *workflows.Step, state string, failures int, now time.Time) (outcome, error) {
	switch step.Kind {
	case workflows.KindEnd:
		return outcome{stepState: store.StepDone, next: workflows.End, decision: "end", endReason: step.End.Reason}, nil
	case workflows.KindWait:
		return e.execWait(ctx, rc, step, state, now)
	case workflows.KindWaitFor:
		w := step.WaitFor
		if state == store.StepWaiting {
			return outcome{stepState: store.StepDone, next: w.OnTimeout, decision: "no " + w.Event + " within " + w.Timeout.String()}, nil
		}
		at := now.Add(w.Timeout)
		return outcome{stepState: store.StepWaiting, wakeAt: at, waitEvent: w.Event,
			decision: "waits for " + w.Event + " until " + at.Format(time.RFC3339)}, nil
	case workflows.KindIf:
		env, err := rc.env(ctx, now)
		if err != nil {
			return outcome{}, err
		}
		ok, err := step.If.Cond.Bool(env)
		if err != nil {
			return failed(step.ID, err), nil
		}
		if ok {
			return outcome{stepState: store.StepDone, next: step.If.Then, decision: "then"}, nil
		}
		return outcome{stepState: store.StepDone, next: step.If.Else, decision: "else"}, nil
	case workflows.KindSend:
		if state == store.StepSending {
			return e.sendSettled(ctx, rc, step, rc.cur, now)
		}
	case workflows.KindSwitch:
		env, err := rc.env(ctx, now)
		if err != nil {
			return outcome{}, err
		}
		to, err := step.Switch.Target(env)
		if err != nil {
			return failed(step.ID, err), nil
		}
		return outcome{stepState: store.StepDone, next: to, decision: "goes to " + to}, nil
	}
	return e.act(ctx, rc, step, failures, now)
}

func (e *Engine) execWait(ctx context.Context, rc *runCtx, step *workflows.Step, state string, now time.Time) (outcome, error) {
	if state == store.StepWaiting {
		return outcome{stepState: store.StepDone, next: step.Next, decision: "waited"}, nil
	}
	until := now.Add(step.Wait.For)
	if step.Wait.Until != nil {
		env, err := rc.env(ctx, now)
		if err != nil {
			return outcome{}, err
		}
		if until, err = step.Wait.Until.Time(env); err != nil {
			return failed(step.ID, err), nil
		}
	}
	at := until.UTC()
	if !at.After(now) {
		return outcome{stepState: store.StepDone, next: step.Next, decision: "until " + at.Format(time.RFC3339) + " is past: goes on"}, nil
	}
	return outcome{stepState: store.StepWaiting, wakeAt: at, decision: "waits until " + at.Format(time.RFC3339)}, nil
}

// act claims a step that acts and runs it. A transient failure is retried
// with backoff through the run's wake; a permanent one, or one that
// failed MaxStepAttempts times, fails the run.
func (e *Engine) act(ctx context.Context, rc *runCtx, step *workflows.Step, failures int, now time.Time) (outcome, error) {
	run := rc.run
	claimed, err := e.store.ClaimRunStep(ctx, run.ID, step.ID, run.Visit, now, now.Add(-e.opts.ClaimTimeout))
	if err != nil {
		return outcome{}, fmt.Errorf("claiming step: %w", err)
	}
	if !claimed {
		return outcome{}, errStepBusy
	}
	key := stepKey(run.ID, step.ID, run.Visit)
	var out outcome
	switch step.Kind {
	case workflows.KindAssignGuide:
		out, err = e.assignGuide(ctx, rc, step)
	case workflows.KindSend:
		out, err = e.send(ctx, rc, step, key, now)
	case workflows.KindGuideTask:
		out, err = e.guideTask(ctx, rc, step, key, now)
	case workflows.KindTag:
		out, err = e.tag(ctx, rc, step, key, now)
	case workflows.KindUntag:
		out, err = e.untag(ctx, rc, step, key, now)
	case workflows.KindAwardPoints:
		out, err = e.awardPoints(ctx, rc, step, key, now)
	case workflows.KindWebhook:
		out, err = e.webhook(ctx, rc, step, key, now)
	case workflows.KindSendGroups:
		out, err = e.sendGroups(ctx, rc, step, key, now)
	default:
		err = fmt.Errorf("unknown step kind %q: %w", step.Kind, errPermanent)
	}
	if err == nil {
		return out, nil
	}
	failures++
	if errors.Is(err, errPermanent) || failures >= e.opts.MaxStepAttempts {
		return failed(step.ID, err), nil
	}
	at := now.Add(retryDelay(failures))
	e.log.InfoContext(ctx, "workflow step failed; retrying", "run_id", run.ID, "step", step.ID, "failures", failures, "retry_at", at, slog.Any("error", err))
	return outcome{stepState: store.StepPending, wakeAt: at, errText: err.Error(),
		decision: fmt.Sprintf("failure %d; retrying at %s", failures, at.Format(time.RFC3339))}, nil
}

// retryDelay backs off a failing step: 30 s, 1 m, 2 m, ... up to an hour.
func retryDelay(failures int) time.Duration {
	return min(30*time.Second<<min(failures-1, 10), time.Hour)
}

func done(next, decision string) outcome {
	return outcome{stepState: store.StepDone, next: next, decision: decision}
}

// skipped is the outcome of a step skipped for a reason (reason*).
func skipped(next, reason, decision string) outcome {
	return outcome{stepState: store.StepSkipped, next: next, decision: decision, reason: reason}
}

func (e *Engine) assignGuide(ctx context.Context, rc *runCtx, step *workflows.Step) (outcome, error) {
	p, err := rc.member(ctx)
	if err != nil {
		return outcome{}, err
	}
	a := step.AssignGuide
	if a.KeepCurrent && p.Binding != nil {
		return done(step.Next, "keeps guide "+p.Binding.GuideID), nil
	}
	req, err := rc.assignRequest(ctx, a)
	if err != nil {
		return outcome{}, err
	}
	guideID, storeID, err := e.opts.Assigner.Assign(ctx, req)
	if errors.Is(err, ErrNoGuide) || (err == nil && guideID == "") {
		return skipped(step.Next, reasonNoGuide, "no guide available ("+assignWords(req)+")"), nil
	}
	if err != nil {
		return outcome{}, fmt.Errorf("assigning a guide: %w", err)
	}
	b, created, err := e.store.Bind(ctx, &store.Binding{MemberID: rc.run.MemberID, BrandID: rc.run.BrandID,
		GuideID: guideID, StoreID: storeID, Reason: a.Strategy})
	if err != nil {
		return outcome{}, fmt.Errorf("binding member to guide %s: %w", guideID, err)
	}
	rc.changed()
	if !created {
		return done(step.Next, "keeps guide "+b.GuideID), nil
	}
	return done(step.Next, "bound to guide "+b.GuideID), nil
}

func (e *Engine) guideTask(ctx context.Context, rc *runCtx, step *workflows.Step, key string, now time.Time) (outcome, error) {
	p, err := rc.member(ctx)
	if err != nil {
		return outcome{}, err
	}
	if p.Guide == nil {
		return skipped(step.Next, reasonNoGuide, "member has no guide: no task"), nil
	}
	loc := rc.wf.SendRules.Location(p.Member.TimeZone, storeZone(p))
	data, err := rc.templateData(ctx, step.ID, loc.String())
	if err != nil {
		return outcome{}, err
	}
	title, err := step.GuideTask.Title.Execute(data)
	if err != nil {
		return outcome{}, fmt.Errorf("rendering task title: %v: %w", err, errPermanent)
	}
	note := ""
	if step.GuideTask.Note != nil {
		if note, err = step.GuideTask.Note.Execute(data); err != nil {
			return outcome{}, fmt.Errorf("rendering task note: %v: %w", err, errPermanent)
		}
	}
	task := &store.GuideTask{Key: &key, RunID: &rc.run.ID, MemberID: rc.run.MemberID, GuideID: p.Guide.ID,
		BrandID: rc.run.BrandID, Title: truncateText(title, 500), Note: truncateText(note, 2000),
		DueAt: now.Add(step.GuideTask.DueIn), CreatedAt: now}
	if _, err := e.store.CreateGuideTask(ctx, task); err != nil {
		return outcome{}, fmt.Errorf("creating guide task: %w", err)
	}
	if err := e.notifyGuide(ctx, rc, p, task, loc); err != nil {
		return outcome{}, err
	}
	return done(step.Next, fmt.Sprintf("task %d for guide %s, due %s", task.ID, p.Guide.ID, task.DueAt.In(loc).Format("2006-01-02 15:04"))), nil
}

// Tagger marks a member's tags on the channels that keep tags of their
// own, so a tag a workflow sets shows there.
type Tagger interface {
	// CheckTags reports why tags cannot be set for brand on its
	// channels: an error wrapping adapters.ErrInvalidMessage.
	CheckTags(ctx context.Context, brand string, tags []string) error
	// MarkTags adds and removes the member's tags on those channels.
	MarkTags(ctx context.Context, brand string, memberID int64, add, remove []string) error
}

// markTags marks a step's tags on the channels before they are written
// here: a tag a channel refuses fails the step with nothing written.
func (e *Engine) markTags(ctx context.Context, rc *runCtx, add, remove []string) error {
	if e.opts.Tagger == nil {
		return nil
	}
	if err := e.opts.Tagger.CheckTags(ctx, rc.run.BrandID, add); err != nil {
		return fmt.Errorf("%w: %w", err, errPermanent)
	}
	err := e.opts.Tagger.MarkTags(ctx, rc.run.BrandID, rc.run.MemberID, add, remove)
	if err != nil && !adapters.Retryable(err) {
		return fmt.Errorf("marking tags on the member's channels: %w: %w", err, errPermanent)
	}
	if err != nil {
		return fmt.Errorf("marking tags on the member's channels: %w", err)
	}
	return nil
}

func (e *Engine) tag(ctx context.Context, rc *runCtx, step *workflows.Step, key string, now time.Time) (outcome, error) {
	if err := e.markTags(ctx, rc, step.Tag.Tags, nil); err != nil {
		return outcome{}, err
	}
	added, err := e.store.AddMemberTags(ctx, rc.run.MemberID, rc.run.BrandID, step.Tag.Tags, now)
	if err != nil {
		return outcome{}, fmt.Errorf("tagging member: %w", err)
	}
	rc.changed()
	out := done(step.Next, fmt.Sprintf("tagged %v", step.Tag.Tags))
	// Tags the member did not have are events other workflows may
	// start on (member.tagged), handled once this step is committed.
	out.events, err = e.tagEvents(ctx, rc, events.TypeMemberTagged, key+":", added, now)
	if err != nil {
		return outcome{}, err
	}
	return out, nil
}

func (e *Engine) untag(ctx context.Context, rc *runCtx, step *workflows.Step, key string, now time.Time) (outcome, error) {
	if err := e.markTags(ctx, rc, nil, step.Tag.Tags); err != nil {
		return outcome{}, err
	}
	removed, err := e.store.RemoveMemberTags(ctx, rc.run.MemberID, rc.run.BrandID, step.Tag.Tags)
	if err != nil {
		return outcome{}, fmt.Errorf("untagging member: %w", err)
	}
	rc.changed()
	out := done(step.Next, fmt.Sprintf("untagged %v (had %v)", step.Tag.Tags, removed))
	// Tags the member had: member.untagged, as member.tagged above.
	out.events, err = e.tagEvents(ctx, rc, events.TypeMemberUntagged, key+":untag:", removed, now)
	if err != nil {
		return outcome{}, err
	}
	return out, nil
}

// tagEvents logs an event of type typ (member.tagged or
// member.untagged) for each of tags, its source id keyPrefix+tag, and
// returns them.
func (e *Engine) tagEvents(ctx context.Context, rc *runCtx, typ, keyPrefix string, tags []string, now time.Time) ([]*store.Event, error) {
	var evs []*store.Event
	for _, tag := range tags {
		payload, _ := json.Marshal(map[string]string{"tag": tag, "run_id": strconv.FormatInt(rc.run.ID, 10)})
		ev := &store.Event{Type: typ, BrandID: rc.run.BrandID, MemberID: &rc.run.MemberID,
			Source: "workflow", SourceID: keyPrefix + tag, Payload: string(payload), OccurredAt: now}
		if _, err := e.store.AppendEvent(ctx, ev); err != nil {
			return nil, fmt.Errorf("logging %s: %w", typ, err)
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

func (e *Engine) awardPoints(ctx context.Context, rc *runCtx, step *workflows.Step, key string, now time.Time) (outcome, error) {
	a := step.AwardPoints
	reason := a.Reason
	if reason == "" {
		reason = "workflow " + rc.wf.Name
	}
	line := &store.PointsLine{MemberID: rc.run.MemberID, BrandID: rc.run.BrandID, Delta: a.Points, Reason: reason, Ref: key, CreatedAt: now}
	fresh, err := e.store.AwardPoints(ctx, line)
	if err != nil {
		return outcome{}, fmt.Errorf("awarding points: %w", err)
	}
	rc.changed()
	if !fresh {
		return done(step.Next, fmt.Sprintf("%d points were awarded already", a.Points)), nil
	}
	return done(step.Next, fmt.Sprintf("awarded %d points", a.Points)), nil
}

// webhookBody is what a webhook step posts: a CloudEvent 1.0 in
// structured mode, whose id is the webhook-id.
type webhookBody struct {
	SpecVersion     string      `json:"specversion"`
	ID              string      `json:"id"`
	Source          string      `json:"source"`
	Type            string      `json:"type"`
	Subject         string      `json:"subject"`
	Time            time.Time   `json:"time"`
	DataContentType string      `json:"datacontenttype"`
	Data            webhookData `json:"data"`
}

type webhookData struct {
	Workflow string   `json:"workflow"`
	Version  string   `json:"version"`
	Step     string   `json:"step"`
	RunID    int64    `json:"run_id"`
	MemberID int64    `json:"member_id"`
	Brand    string   `json:"brand"`
	Level    string   `json:"level,omitempty"`
	Points   int64    `json:"points"`
	Tags     []string `json:"tags"`
	GuideID  string   `json:"guide_id,omitempty"`
	StoreID  string   `json:"store_id,omitempty"`
}

// webhook posts to the brand's system, signed per Standard Webhooks. The
// webhook-id is the step visit's key, the same on every retry, so the
// receiver can drop repeats.
func (e *Engine) webhook(ctx context.Context, rc *runCtx, step *workflows.Step, key string, now time.Time) (outcome, error) {
	w := step.Webhook
	secret, err := e.opts.WebhookSecret(w.Secret)
	if err != nil {
		// A secret that is not configured will not appear by retrying.
		return outcome{}, fmt.Errorf("webhook secret %q: %v: %w", w.Secret, err, errPermanent)
	}
	p, err := rc.member(ctx)
	if err != nil {
		return outcome{}, err
	}
	m := rc.e.memberModel(p)
	body, err := json.Marshal(webhookBody{SpecVersion: "1.0", ID: key, Source: "scrmgw/workflows/" + rc.wf.Name, Type: w.Event,
		Subject: "member/" + strconv.FormatInt(rc.run.MemberID, 10), Time: now.UTC(), DataContentType: "application/json", Data: webhookData{
			Workflow: rc.wf.Name, Version: rc.wf.Version, Step: step.ID, RunID: rc.run.ID, MemberID: rc.run.MemberID,
			Brand: rc.run.BrandID, Level: m.Level, Points: m.Points, Tags: m.Tags, GuideID: m.GuideID, StoreID: m.StoreID}})
	if err != nil {
		return outcome{}, fmt.Errorf("encoding webhook: %v: %w", err, errPermanent)
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	reqCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return outcome{}, fmt.Errorf("building webhook request: %v: %w", err, errPermanent)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("User-Agent", "scrmgw-workflows")
	req.Header.Set("webhook-id", key)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", SignWebhook(secret, key, ts, body))
	host := hostOf(w.URL)
	resp, err := e.opts.Webhooks.Do(req)
	if err != nil {
		return outcome{}, fmt.Errorf("posting webhook to %s: %w", host, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return done(step.Next, fmt.Sprintf("posted %s to %s: %d", w.Event, host, resp.StatusCode)), nil
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return outcome{}, fmt.Errorf("webhook %s answered %d", host, resp.StatusCode)
	}
	return outcome{}, fmt.Errorf("webhook %s answered %d: %w", host, resp.StatusCode, errPermanent)
}

// SignWebhook returns the webhook-signature header of a Standard Webhooks
// request: "v1," and the base64 HMAC-SHA256 of "id.timestamp.body".
func SignWebhook(secret []byte, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid url)"
	}
	return u.Host
}

// hash64 is a stable hash for spreading and codes.
func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// spread is a run's deterministic offset within a window, in whole
// seconds: the runs released at one moment go out over the window.
func spread(runID int64, window time.Duration) time.Duration {
	n := uint64(window / time.Second)
	if n == 0 {
		return 0
	}
	return time.Duration(hash64(strconv.FormatInt(runID, 10))%n) * time.Second
}
