package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// EventTypes are the CloudEvents types accepted from the brand's systems.
var EventTypes = []string{
	"purchase.completed", "purchase.refunded", "member.signed_up", "member.tagged", "member.untagged", "store.visited",
}

// maxEventsBody bounds a request body (a batch of MaxBatch events).
const maxEventsBody = 16 << 20

// cloudEvent is a CloudEvents 1.0 event in the JSON format. Extension
// attributes other than brand are ignored.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time,omitempty"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
	// Brand is scrmgw's extension attribute: the brand the event is for.
	Brand string `json:"brand"`
}

// MemberRef is how an event's data names its member: data.member.
type MemberRef struct {
	Phone    string `json:"phone,omitempty"`
	CRMID    string `json:"crm_id,omitempty"`
	MemberID int64  `json:"member_id,omitempty"`
}

// problem is one refused event of a request.
type problem struct {
	Index   int    `json:"index"`
	Message string `json:"message"`
}

func (c *Channel) Routes() []adapters.Route {
	return []adapters.Route{{Method: http.MethodPost, Path: EventsPath, Handler: http.HandlerFunc(c.receive)}}
}

// receive accepts one event (application/cloudevents+json or
// application/json) or a batch (application/cloudevents-batch+json). The
// body is verified first; then every event is checked, and a request with
// any bad event records nothing. Accepted events are durably recorded
// before the 202; a redelivered event (same source and id) is recorded
// once.
func (c *Channel) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventsBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds %d bytes", maxEventsBody), nil)
			return
		}
		writeError(w, http.StatusBadRequest, "reading body", nil)
		return
	}
	if err := c.verify(r.Header, body); err != nil {
		c.log.Warn("event request refused", slog.String("remote", r.RemoteAddr), slog.Any("error", err))
		writeError(w, http.StatusUnauthorized, err.Error(), nil)
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var events []cloudEvent
	switch mt {
	case "application/cloudevents-batch+json":
		if err := json.Unmarshal(body, &events); err != nil {
			writeError(w, http.StatusBadRequest, "batch: want a JSON array of CloudEvents: "+err.Error(), nil)
			return
		}
		if len(events) == 0 || len(events) > c.cfg.MaxBatch {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("batch: want 1 to %d events, got %d", c.cfg.MaxBatch, len(events)), nil)
			return
		}
	case "application/cloudevents+json", "application/json":
		var ev cloudEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			writeError(w, http.StatusBadRequest, "want a CloudEvent JSON object: "+err.Error(), nil)
			return
		}
		events = []cloudEvent{ev}
	default:
		writeError(w, http.StatusUnsupportedMediaType, "content type must be application/cloudevents+json or application/cloudevents-batch+json", nil)
		return
	}
	inbounds := make([]*adapters.Inbound, len(events))
	var problems []problem
	seen := map[string]int{}
	for i := range events {
		in, err := c.inbound(&events[i])
		if err != nil {
			problems = append(problems, problem{Index: i, Message: err.Error()})
			continue
		}
		if first, dup := seen[in.DedupKey]; dup {
			problems = append(problems, problem{Index: i, Message: fmt.Sprintf("same source and id as event %d", first)})
			continue
		}
		seen[in.DedupKey] = i
		inbounds[i] = in
	}
	if len(problems) > 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%d bad event(s); nothing was recorded", len(problems)), problems)
		return
	}
	if err := c.recordAll(r, inbounds); err != nil {
		c.log.Error("recording events", slog.Int("events", len(inbounds)), slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "temporarily unavailable; retry", nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(map[string]int{"accepted": len(inbounds)})
}

// recordAll records events concurrently, so the recorder commits them in
// few statements.
func (c *Channel) recordAll(r *http.Request, ins []*adapters.Inbound) error {
	const workers = 64
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next = make(chan *adapters.Inbound)
	)
	for w := 0; w < min(workers, len(ins)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for in := range next {
				if err := c.rec.Record(r.Context(), in); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, in := range ins {
		next <- in
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// inbound checks one event and maps it onto a delivery.
func (c *Channel) inbound(ev *cloudEvent) (*adapters.Inbound, error) {
	var errs []string
	if ev.SpecVersion != "1.0" {
		errs = append(errs, fmt.Sprintf("specversion: want \"1.0\", got %q", ev.SpecVersion))
	}
	if ev.ID == "" || len(ev.ID) > 100 {
		errs = append(errs, "id: want 1-100 characters")
	}
	if ev.Source == "" || len(ev.Source) > 90 {
		errs = append(errs, "source: want 1-90 characters")
	}
	if !slices.Contains(EventTypes, ev.Type) {
		errs = append(errs, fmt.Sprintf("type: %q is not one of %s", ev.Type, strings.Join(EventTypes, ", ")))
	}
	if ev.Brand == "" {
		errs = append(errs, "brand: the brand extension attribute is required")
	}
	at := c.now().UTC()
	if ev.Time != "" {
		t, err := time.Parse(time.RFC3339, ev.Time)
		if err != nil {
			errs = append(errs, fmt.Sprintf("time: want RFC 3339, got %q", ev.Time))
		}
		at = t.UTC()
	}
	if ct := ev.DataContentType; ct != "" && ct != "application/json" {
		errs = append(errs, "datacontenttype: only application/json data is accepted")
	}
	var data struct {
		Member *MemberRef `json:"member"`
	}
	if len(ev.Data) == 0 || json.Unmarshal(ev.Data, &data) != nil {
		errs = append(errs, "data: want a JSON object")
	} else if data.Member == nil || (data.Member.Phone == "" && data.Member.CRMID == "" && data.Member.MemberID == 0) {
		errs = append(errs, "data.member: want phone, crm_id or member_id")
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	return &adapters.Inbound{Channel: ChannelName, DedupKey: ev.Source + " " + ev.ID, Brand: ev.Brand, Kind: "event",
		Event: ev.Type, At: at, Attrs: map[string]string{"source": ev.Source, "id": ev.ID, "subject": ev.Subject, "data": string(ev.Data)}}, nil
}

func writeError(w http.ResponseWriter, status int, msg string, problems []problem) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body := map[string]any{"code": http.StatusText(status), "message": msg}
	if problems != nil {
		body["details"] = problems
	}
	json.NewEncoder(w).Encode(map[string]any{"error": body})
}
