package adapters_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// gif is the smallest GIF: a sniffable picture.
var gif = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// TestMediaUploadsOnce: concurrent sends of one picture fetch and upload
// it once, and wait for that upload; without a cache every later send
// uploads again.
func TestMediaUploadsOnce(t *testing.T) {
	var fetches atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		<-release
		w.Header().Set("Content-Type", "image/gif")
		_, _ = w.Write(gif)
	}))
	defer srv.Close()
	var uploads atomic.Int32
	m := &adapters.Media{Vendor: "Fake", HTTP: srv.Client(),
		Limits: map[string]adapters.MediaLimit{"image": {MinBytes: 1, MaxBytes: 1 << 20, Formats: map[string]string{"image/gif": ".gif"}, FormatNames: "a GIF"}},
		Upload: func(_ context.Context, typ, filename, ctype string, data []byte) (string, error) {
			uploads.Add(1)
			if typ != "image" || filename != "a.gif" || ctype != "image/gif" || len(data) != len(gif) {
				return "", errors.New("unexpected upload " + typ + " " + filename + " " + ctype)
			}
			return "MEDIA", nil
		}}
	var wg sync.WaitGroup
	ids := make([]string, 8)
	errs := make([]error, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = m.Resolve(context.Background(), "image", srv.URL+"/a.gif", "")
		}()
	}
	time.Sleep(50 * time.Millisecond) // the waiters wait
	close(release)
	wg.Wait()
	for i := range ids {
		if ids[i] != "MEDIA" || errs[i] != nil {
			t.Errorf("send %d: %q, %v", i, ids[i], errs[i])
		}
	}
	if f, u := fetches.Load(), uploads.Load(); f != 1 || u != 1 {
		t.Errorf("%d fetches, %d uploads; want 1 and 1", f, u)
	}
	// No cache: the next send uploads again. A media id is no URL.
	if _, err := m.Resolve(context.Background(), "image", srv.URL+"/a.gif", ""); err != nil || uploads.Load() != 2 {
		t.Errorf("Resolve = %v, %d uploads; want 2", err, uploads.Load())
	}
	if id, err := m.Resolve(context.Background(), "image", "MEDIA_ID_1", ""); id != "MEDIA_ID_1" || err != nil {
		t.Errorf("Resolve(media id) = %q, %v", id, err)
	}
	// A type the vendor does not take is the message's fault.
	if _, err := m.Resolve(context.Background(), "video", srv.URL+"/a.gif", ""); !errors.Is(err, adapters.ErrInvalidMessage) {
		t.Errorf("Resolve(video) = %v, want ErrInvalidMessage", err)
	}
}

func TestShownURL(t *testing.T) {
	for src, want := range map[string]string{
		"https://cdn.example.com/a/b.png":                  "https://cdn.example.com/a/b.png",
		"https://cdn.example.com/b.png?X-Amz-Signature=ff": "https://cdn.example.com/b.png?…",
		"https://cdn.example.com/b.png#frag":               "https://cdn.example.com/b.png?…",
		"https://cdn.example.com/%zz":                      "(an unreadable link)",
	} {
		if got := adapters.ShownURL(src); got != want {
			t.Errorf("ShownURL(%q) = %q, want %q", src, got, want)
		}
	}
	if !adapters.IsURL("http://x") || !adapters.IsURL("https://x") || adapters.IsURL("MEDIA_ID") || adapters.IsURL("ftp://x") {
		t.Error("IsURL")
	}
}
