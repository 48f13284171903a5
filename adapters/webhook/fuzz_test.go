package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/events"
)

// FuzzIngest: whatever the body, the ingester answers without panicking;
// a 200 means every event was recorded (accepted + duplicates = events),
// anything else records nothing, and a 400 names each fault with a path.
func FuzzIngest(f *testing.F) {
	f.Add([]byte(purchaseBody), "application/cloudevents+json")
	f.Add([]byte("["+purchaseBody+","+strings.Replace(purchaseBody, `"e1"`, `"e2"`, 1)+"]"), "application/cloudevents-batch+json")
	f.Add([]byte(`{"specversion":"1.0","id":"v","source":"s","type":"store.visited","brand":"acme","data":{"member":{"crm_id":"c"},"store":"x"}}`), "application/json")
	f.Add([]byte(`{"specversion":"1.0","id":"r","source":"s","type":"purchase.refunded","brand":"acme","data":{"member":{"member_id":1},"order_id":"o","refund_id":"r","items":[{"line":1,"qty":1}]}}`), "application/cloudevents+json")
	f.Add([]byte(`{"specversion":"1.0","id":"x","source":"s","type":"x.my_event","brand":"acme","data":{"member":{"phone":"1"},"n":1e400}}`), "application/cloudevents+json")
	f.Add([]byte(`[{"data":null},{}]`), "application/cloudevents-batch+json")
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		rec := &memRecorder{}
		g := NewIngester(rec, schema, 1000, nil)
		g.now = func() time.Time { return time.Unix(specTS, 0) }
		req := httptest.NewRequest("POST", "/api/v1/events", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		g.Serve(w, req, body, "")
		switch w.Code {
		case http.StatusOK:
			var res Result
			if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
				t.Fatalf("200 with %q: %v", w.Body.String(), err)
			}
			if res.Accepted+res.Duplicates == 0 || len(rec.seen) != res.Accepted {
				t.Fatalf("200 %+v but %d recorded", res, len(rec.seen))
			}
			for _, in := range rec.seen {
				if in.Brand == "" || in.DedupKey == "" || len(in.DedupKey) > 200 || !events.KnownType(in.Event) {
					t.Fatalf("recorded %+v", in)
				}
			}
		case http.StatusBadRequest:
			if len(rec.seen) != 0 {
				t.Fatalf("400 but %d recorded", len(rec.seen))
			}
			var e struct {
				Error struct {
					Details []Fault `json:"details"`
				} `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatalf("400 body %q: %v", w.Body.String(), err)
			}
			for _, f := range e.Error.Details {
				if f.Path == "" || f.Message == "" {
					t.Fatalf("fault without a path or message: %+v", f)
				}
			}
		case http.StatusUnsupportedMediaType:
			if len(rec.seen) != 0 {
				t.Fatal("415 but recorded")
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	})
}

const purchaseBody = `{"specversion":"1.0","id":"e1","source":"/pos/sh-1","type":"purchase.completed","brand":"acme","time":"2026-11-25T10:00:00+08:00",
"data":{"member":{"phone":"13800138000"},"order_id":"SO-1","store":"sh-1","items":[{"sku":"CL-100","qty":2,"price":"129.00"}]}}`

// FuzzBinaryIngest: a binary-mode request (attributes in ce-* headers,
// data as the body) is answered without panicking whatever the headers
// and body; a 200 records exactly its event, a 400 records nothing and
// names each fault it lists.
func FuzzBinaryIngest(f *testing.F) {
	const visitData = `{"member":{"crm_id":"c"},"store":"x"}`
	f.Add("1.0", "v-1", "/pos/sh-1", "store.visited", "2026-11-25T10:00:00+08:00", "acme", "application/json", []byte(visitData))
	f.Add("", "v-1", "/pos/sh-1", "store.visited", "", "acme", "application/json", []byte(visitData))
	f.Add("1.0", "%E9%9D%99", "/pos/%ZZ", "x.my_event", "", "", "text/plain", []byte("hello"))
	f.Add("1.0", "v-2", "s", "purchase.completed", "yesterday", "acme", "application/json; charset=utf-8", []byte(`{"member":{"phone":"1"}}`))
	f.Fuzz(func(t *testing.T, spec, id, source, typ, at, brand, contentType string, body []byte) {
		rec := &memRecorder{}
		g := NewIngester(rec, schema, 1000, nil)
		g.now = func() time.Time { return time.Unix(specTS, 0) }
		req := httptest.NewRequest("POST", "/api/v1/events", bytes.NewReader(body))
		for k, v := range map[string]string{"ce-specversion": spec, "ce-id": id, "ce-source": source, "ce-type": typ, "ce-time": at,
			"ce-brand": brand, "Content-Type": contentType} {
			if v != "" {
				req.Header[http.CanonicalHeaderKey(k)] = []string{v}
			}
		}
		req.Header.Set("ce-subject", "fuzz") // binary mode even when every other header is empty
		w := httptest.NewRecorder()
		g.Serve(w, req, body, "")
		switch w.Code {
		case http.StatusOK:
			if len(rec.seen) != 1 {
				t.Fatalf("200 but %d recorded", len(rec.seen))
			}
			for _, in := range rec.seen {
				if in.Brand == "" || in.Attrs["id"] == "" || !events.KnownType(in.Event) {
					t.Fatalf("recorded %+v", in)
				}
			}
		case http.StatusBadRequest:
			var e struct {
				Error struct {
					Details []Fault `json:"details"`
				} `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || len(rec.seen) != 0 {
				t.Fatalf("400 %s, %d recorded", w.Body.String(), len(rec.seen))
			}
			for _, f := range e.Error.Details {
				if f.Path == "" || f.Message == "" {
					t.Fatalf("fault without a path or message: %+v", f)
				}
			}
		case http.StatusUnsupportedMediaType:
			if len(rec.seen) != 0 {
				t.Fatal("415 but recorded")
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
	})
}
