package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// TestSpecPreviewIsTheBodySent: the preview of a message is, byte for
// byte, the CloudEvent Send posts (the signature headers aside), for
// every kind.
func TestSpecPreviewIsTheBodySent(t *testing.T) {
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body = must(io.ReadAll(r.Body))
	}))
	defer srv.Close()
	ch, err := New(Config{Secret: specSecret, URL: srv.URL}, NewIngester(&memRecorder{}, nil, 0, nil), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	ch.now = func() time.Time { return at }
	spec := ch.Spec()
	if spec.Name != ChannelName || len(spec.MemberKinds) != 8 || len(spec.GuideKinds) != 8 {
		t.Errorf("Spec = %+v, want webhook sending every kind", spec)
	}
	m := &adapters.Outbound{IdempotencyKey: "wf:1:nudge:1", To: "m-1", ToParty: adapters.PartyMember, Kind: adapters.KindNews,
		Fields: map[string]string{"title": "新品", "url": "https://shop.example.com/n/1"}}
	req, err := spec.Preview(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"data":{"fields":{"title":"新品","url":"https://shop.example.com/n/1"},"kind":"news","text":"","to":"m-1","to_party":"member"},` +
		`"datacontenttype":"application/json","id":"wf:1:nudge:1","source":"scrmgw","specversion":"1.0","subject":"m-1",` +
		`"time":"2026-11-25T02:00:00Z","type":"scrmgw.message"}`
	if req.API != "POST scrmgw.message" || string(req.Body) != want {
		t.Errorf("Preview = %s %s\nwant %s", req.API, req.Body, want)
	}
	if _, err := ch.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if string(body) != want {
		t.Errorf("posted %s\nwant the preview %s", body, want)
	}
}
