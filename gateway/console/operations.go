package console

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/store"
)

// Queues reads the task queues' figures; *asynq.Inspector implements it.
type Queues interface {
	Queues() ([]string, error)
	GetQueueInfo(queue string) (*asynq.QueueInfo, error)
}

// Links of the operations page (the gateway mounts them).
const (
	queueUIPath = "/admin/queues"
	metricsPath = "/metrics"
)

// failureDays is the period of the failed sends.
const failureDays = 7

// opsPageSize is how many failed sends and audit entries a page shows.
const opsPageSize = 50

// healthRow is one check of the gateway's health.
type healthRow struct {
	Name  string
	Error string
}

type operationsData struct {
	QueueUI, Metrics string
	// Health is the gateway's checks (the database, Redis, each stream
	// channel), by name.
	Health []healthRow
	// Queues is nil when the process has no queue; QueueError says why
	// reading it failed.
	Queues     []*asynq.QueueInfo
	HasQueues  bool
	QueueError string
	Inbox      []store.Backlog
	Outbox     []store.Backlog
	Failures   []store.Backlog
	FailDays   int
	// Channel and Failure select the failed sends listed.
	Channel, Failure string
	Failed           []store.OutboxMessage
	FailedOlder      string
	// The audit trail's filters and a page of it.
	Since, Token, Action, Resource, ResourceID string
	Actions                                    []string
	SinceError                                 string
	Audit                                      []store.AuditEntry
	AuditNext, AuditFirst                      string
}

// FailureLink lists the failed sends of one channel and reason.
func (d *operationsData) FailureLink(channel, failure string) string {
	return Path + "/operations?" + url.Values{"channel": {channel}, "failure": {failure}}.Encode() + "#failed-sends"
}

// operationsPage shows the admin the queues, the inbox and outbox
// backlogs, the failed sends by channel and reason (and a page of those
// of one), and the audit trail with filters, paged by id:
// GET /console/operations?channel=&failure=&before=&since=&token=&action=&resource=&resource_id=&after=.
func (c *Console) operationsPage(ctx *gin.Context) {
	rctx := ctx.Request.Context()
	lang := language(ctx.Request)
	now := c.o.Now()
	d := &operationsData{QueueUI: queueUIPath, Metrics: metricsPath, FailDays: failureDays, Channel: ctx.Query("channel"), Failure: ctx.Query("failure"),
		Token: ctx.Query("token"), Action: ctx.Query("action"), Resource: ctx.Query("resource"), ResourceID: ctx.Query("resource_id"),
		Actions: []string{store.AuditWrite, store.AuditPhoneView, store.AuditMemberExport, store.AuditMemberErase, store.AuditTokenCreate, store.AuditTokenRevoke}}
	if c.o.Health != nil {
		for name, err := range c.o.Health(rctx) {
			h := healthRow{Name: name}
			if err != nil {
				h.Error = err.Error()
			}
			d.Health = append(d.Health, h)
		}
		slices.SortFunc(d.Health, func(a, b healthRow) int { return strings.Compare(a.Name, b.Name) })
	}
	if c.o.Queues != nil {
		d.HasQueues = true
		names, err := c.o.Queues.Queues()
		if err != nil {
			d.QueueError = translate(lang, "ops.queue_error", err.Error())
		}
		for _, n := range names {
			info, err := c.o.Queues.GetQueueInfo(n)
			if err != nil {
				d.QueueError = translate(lang, "ops.queue_error", err.Error())
				continue
			}
			d.Queues = append(d.Queues, info)
		}
	}
	var err error
	if d.Inbox, err = c.o.Store.InboxBacklog(rctx); err != nil {
		c.fail(ctx, err)
		return
	}
	since := now.AddDate(0, 0, -failureDays)
	outbox, err := c.o.Store.OutboxBacklog(rctx, since)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	for _, b := range outbox {
		if b.State == store.OutboxFailed {
			d.Failures = append(d.Failures, b)
		} else {
			d.Outbox = append(d.Outbox, b)
		}
	}
	before, _ := strconv.ParseInt(ctx.Query("before"), 10, 64)
	failed, err := c.o.Store.FailedSends(rctx, d.Channel, d.Failure, since, before, opsPageSize+1)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	if len(failed) > opsPageSize {
		failed = failed[:opsPageSize]
		q := url.Values{"channel": {d.Channel}, "failure": {d.Failure}, "before": {strconv.FormatInt(failed[len(failed)-1].ID, 10)}}
		d.FailedOlder = Path + "/operations?" + q.Encode() + "#failed-sends"
	}
	d.Failed = failed

	// The audit trail from a time (a day ago by default), oldest first.
	aq := store.AuditQuery{Token: d.Token, Action: d.Action, Resource: d.Resource, ResourceID: d.ResourceID, Limit: opsPageSize + 1}
	aq.Since = now.Add(-24 * time.Hour)
	d.Since = aq.Since.In(shownZone).Format("2006-01-02T15:04")
	if v := strings.TrimSpace(ctx.Query("since")); v != "" {
		t, err := parseLocal(v)
		if err != nil {
			d.SinceError = translate(lang, "ops.bad_since", v)
		} else {
			aq.Since, d.Since = t, v
		}
	}
	aq.After, _ = strconv.ParseInt(ctx.Query("after"), 10, 64)
	entries, err := c.o.Store.AuditLog(rctx, aq)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	q := url.Values{}
	for k, v := range map[string]string{"since": d.Since, "token": d.Token, "action": d.Action, "resource": d.Resource, "resource_id": d.ResourceID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if aq.After > 0 {
		d.AuditFirst = Path + "/operations?" + q.Encode() + "#audit"
	}
	if len(entries) > opsPageSize {
		entries = entries[:opsPageSize]
		q.Set("after", strconv.FormatInt(entries[len(entries)-1].ID, 10))
		d.AuditNext = Path + "/operations?" + q.Encode() + "#audit"
	}
	d.Audit = entries
	c.render(ctx, http.StatusOK, "operations", "ops.title", "/operations", d)
}

// parseLocal reads a date or a date and time in the console's zone.
func parseLocal(v string) (time.Time, error) {
	var err error
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02 15:04", time.DateOnly, time.RFC3339} {
		var t time.Time
		if t, err = time.ParseInLocation(layout, v, shownZone); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}
