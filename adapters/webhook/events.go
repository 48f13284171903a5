package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

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
	// A source that belongs to a brand may leave it out.
	Brand string `json:"brand"`
}

// Fault is one problem of a refused request, at a JSON path of the body
// ("events[3].data.items[0].qty" in a batch, "data.items[0].qty" for one
// event).
type Fault struct {
	Path    string `json:"field"`
	Message string `json:"message"`
}

// Result is the answer to an accepted request.
type Result struct {
	// Accepted counts the events recorded now; Duplicates those recorded
	// before (same brand, source and id), which changed nothing.
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// Check checks an event's type and data against the schema of the events
// the channel takes (the wiring passes the commerce event schema,
// events.Check). It returns every fault as "path: message", the path
// "type" or under "data" ("data.items[0].qty"); none accepts the event.
// The channel itself checks only the CloudEvents envelope.
type Check func(typ string, data json.RawMessage) []string

// Ingester checks CloudEvents requests and records their events. It serves
// both the signed /callbacks/events and the token-authenticated
// /api/v1/events.
type Ingester struct {
	rec      adapters.Recorder
	check    Check
	maxBatch int
	// KnownBrand, when set, refuses events for brands it does not know.
	KnownBrand func(ctx context.Context, id string) (bool, error)
	log        *slog.Logger
	now        func() time.Time
}

// NewIngester returns an ingester checking events with check (nil: any
// type, any data) and recording them through rec; maxBatch caps the
// events of a batch (0: 1000).
func NewIngester(rec adapters.Recorder, check Check, maxBatch int, log *slog.Logger) *Ingester {
	if maxBatch <= 0 {
		maxBatch = 1000
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ingester{rec: rec, check: check, maxBatch: maxBatch, log: log, now: time.Now}
}

// ReadBody reads a request body within the size limit, answering 413 or
// 400 itself when it cannot; ok is false then.
func ReadBody(w http.ResponseWriter, r *http.Request) (body []byte, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventsBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds %d bytes", maxEventsBody), nil)
			return nil, false
		}
		WriteError(w, http.StatusBadRequest, "reading body", nil)
		return nil, false
	}
	return body, true
}

// Serve checks a request's events and records them. brand, when set,
// pins every event to that brand (a source's or a token's brand); else
// each event names its brand. Any bad event refuses the whole request
// (400, every fault with its path) and records nothing. Accepted events
// are durably recorded before the 200.
//
// Every content mode of the CloudEvents HTTP binding is accepted: batched
// (application/cloudevents-batch+json), structured
// (application/cloudevents+json, or application/json without ce-*
// headers) and binary (attributes in ce-* headers, the data as the body,
// its Content-Type the datacontenttype). A binary request's faults name
// its headers ("ce-id").
func (g *Ingester) Serve(w http.ResponseWriter, r *http.Request, body []byte, brand string) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var (
		events []cloudEvent
		name   func(i int, attr string) string // an attribute's path in faults
		binary bool
	)
	switch {
	case mt == "application/cloudevents-batch+json":
		if err := json.Unmarshal(body, &events); err != nil {
			WriteError(w, http.StatusBadRequest, "batch: want a JSON array of CloudEvents: "+jsonMessage(err), nil)
			return
		}
		if len(events) == 0 || len(events) > g.maxBatch {
			WriteError(w, http.StatusBadRequest, fmt.Sprintf("batch: want 1 to %d events, got %d", g.maxBatch, len(events)), nil)
			return
		}
		name = func(i int, attr string) string { return fmt.Sprintf("events[%d].%s", i, attr) }
	case mt == "application/cloudevents+json", mt == "application/json" && !binaryMode(r.Header):
		var ev cloudEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			WriteError(w, http.StatusBadRequest, "want a CloudEvent JSON object: "+jsonMessage(err), nil)
			return
		}
		events = []cloudEvent{ev}
		name = func(_ int, attr string) string { return attr }
	case binaryMode(r.Header):
		ev, faults := binaryEvent(r.Header, body)
		if len(faults) > 0 {
			writeFaults(w, faults, true)
			return
		}
		events, binary = []cloudEvent{*ev}, true
		name = func(_ int, attr string) string { return binaryName(attr) }
	default:
		WriteError(w, http.StatusUnsupportedMediaType, "content type must be application/cloudevents+json or application/cloudevents-batch+json, "+
			"or a binary-mode CloudEvent (ce-* headers, data as the body)", nil)
		return
	}
	inbounds := make([]*adapters.Inbound, len(events))
	var faults []Fault
	seen := map[string]int{}
	known := map[string]bool{} // brand → exists, for the brands checked
	for i := range events {
		in, fs := g.inbound(&events[i], brand, func(attr string) string { return name(i, attr) })
		if len(fs) > 0 {
			faults = append(faults, fs...)
			continue
		}
		if first, dup := seen[in.DedupKey]; dup {
			faults = append(faults, Fault{Path: name(i, "id"), Message: fmt.Sprintf("same source and id as events[%d]", first)})
			continue
		}
		seen[in.DedupKey] = i
		inbounds[i] = in
		if g.KnownBrand == nil {
			continue
		}
		ok, checked := known[in.Brand]
		if !checked {
			var err error
			if ok, err = g.KnownBrand(r.Context(), in.Brand); err != nil {
				g.log.Error("checking brands", slog.Any("error", err))
				WriteError(w, http.StatusServiceUnavailable, "temporarily unavailable; retry", nil)
				return
			}
			known[in.Brand] = ok
		}
		if !ok {
			faults = append(faults, Fault{Path: name(i, "brand"), Message: fmt.Sprintf("unknown brand %q", in.Brand)})
		}
	}
	if len(faults) > 0 {
		writeFaults(w, faults, binary)
		return
	}
	res, err := g.record(r.Context(), inbounds)
	if err != nil {
		g.log.Error("recording events", slog.Int("events", len(inbounds)), slog.Any("error", err))
		WriteError(w, http.StatusServiceUnavailable, "temporarily unavailable; retry", nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(res)
}

// record records events in one batch when the recorder can, else
// concurrently one by one (the recorder then groups the commits).
func (g *Ingester) record(ctx context.Context, ins []*adapters.Inbound) (Result, error) {
	if br, ok := g.rec.(adapters.BatchRecorder); ok {
		fresh, err := br.RecordBatch(ctx, ins)
		if err != nil {
			return Result{}, err
		}
		var res Result
		for _, f := range fresh {
			if f {
				res.Accepted++
			} else {
				res.Duplicates++
			}
		}
		return res, nil
	}
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
				if err := g.rec.Record(ctx, in); err != nil {
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
	return Result{Accepted: len(ins)}, errors.Join(errs...)
}

// inbound checks one event and maps it onto a delivery; name gives an
// attribute's (or a data path's) name in faults.
func (g *Ingester) inbound(ev *cloudEvent, brand string, name func(attr string) string) (*adapters.Inbound, []Fault) {
	var faults []Fault
	fault := func(path, format string, args ...any) {
		faults = append(faults, Fault{Path: name(path), Message: fmt.Sprintf(format, args...)})
	}
	if ev.SpecVersion != "1.0" {
		fault("specversion", "want \"1.0\", got %q", ev.SpecVersion)
	}
	if ev.ID == "" || len(ev.ID) > 100 {
		fault("id", "want 1-100 characters")
	}
	if ev.Source == "" || len(ev.Source) > 200 {
		fault("source", "want 1-200 characters")
	}
	// The schema's faults: one of the type among the attributes', those
	// of the data after them.
	var dataFaults []string
	if g.check == nil && ev.Type == "" {
		fault("type", "is required")
	}
	for _, f := range g.checkEvent(ev) {
		if path, msg, _ := strings.Cut(f, ": "); path == "type" {
			fault(path, "%s", msg)
		} else {
			dataFaults = append(dataFaults, f)
		}
	}
	switch {
	case brand != "" && ev.Brand != "" && ev.Brand != brand:
		fault("brand", "this source or token belongs to brand %q", brand)
	case brand == "" && ev.Brand == "":
		fault("brand", "the brand extension attribute is required")
	case brand == "":
		brand = ev.Brand
	}
	at := g.now().UTC()
	if ev.Time != "" {
		t, err := time.Parse(time.RFC3339, ev.Time)
		if err != nil {
			fault("time", "want RFC 3339, got %q", ev.Time)
		}
		at = t.UTC()
	}
	if ct, _, _ := mime.ParseMediaType(ev.DataContentType); ev.DataContentType != "" && ct != "application/json" {
		fault("datacontenttype", "only application/json data is accepted")
	}
	for _, f := range dataFaults {
		path, msg, _ := strings.Cut(f, ": ")
		fault(path, "%s", msg)
	}
	if len(faults) > 0 {
		return nil, faults
	}
	return &adapters.Inbound{Channel: ChannelName, DedupKey: DedupKey(brand, ev.Source, ev.ID), Brand: brand, Kind: "event",
		Event: ev.Type, At: at, Attrs: map[string]string{"source": ev.Source, "id": ev.ID, "subject": ev.Subject, "data": string(ev.Data)}}, nil
}

// checkEvent is the schema's faults of ev; none without a schema.
func (g *Ingester) checkEvent(ev *cloudEvent) []string {
	if g.check == nil {
		return nil
	}
	return g.check(ev.Type, ev.Data)
}

// DedupKey is an event's key in the inbox and the event log: its brand,
// source and id (hashed when they would not fit in 200 bytes).
func DedupKey(brand, source, id string) string {
	k := brand + " " + source + " " + id
	if len(k) <= 200 {
		return k
	}
	sum := sha256.Sum256([]byte(source + "\x00" + id))
	return brand + " sha256:" + hex.EncodeToString(sum[:])
}

// jsonMessage is a JSON error without Go type names.
func jsonMessage(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%s: wrong type (%s)", te.Field, te.Value)
		}
		return fmt.Sprintf("wrong type (%s)", te.Value)
	}
	return err.Error()
}

// errorCodes are the API's error codes by status.
var errorCodes = map[int]string{
	http.StatusBadRequest:            "invalid_argument",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusRequestEntityTooLarge: "payload_too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusServiceUnavailable:    "unavailable",
}

// WriteError writes the API's error shape:
// {"error": {"code", "message", "details": [{"field", "message"}]}}.
func WriteError(w http.ResponseWriter, status int, msg string, faults []Fault) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	code := errorCodes[status]
	if code == "" {
		code = "internal"
	}
	body := map[string]any{"code": code, "message": msg}
	if faults != nil {
		body["details"] = faults
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // "must be > 0", not "must be \u003e 0"
	enc.Encode(map[string]any{"error": body})
}
