package wechatoa_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/scrmgw/scrmgw/adapters"
)

// serve mounts a channel's routes on a test server.
func serve(t *testing.T, ch adapters.HTTPReceiver) string {
	mux := http.NewServeMux()
	for _, r := range ch.Routes() {
		mux.Handle(r.Method+" "+r.Path, r.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func postRaw(t *testing.T, u string, q url.Values, body []byte) int {
	t.Helper()
	resp, err := http.Post(u+"?"+q.Encode(), "text/xml", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
