package httpserve

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// limiterEngine serves the routes the limiter tells apart: a callback
// (/callbacks/x), the API (/api/v1/x) and /healthz, each answering the
// status named by ?status= (default 200).
func limiterEngine(t *testing.T, l *RefusalLimiter, trusted []string) *gin.Engine {
	t.Helper()
	gin.SetMode(gin.TestMode)
	r := gin.New()
	if err := r.SetTrustedProxies(trusted); err != nil {
		t.Fatal(err)
	}
	r.Use(l.Middleware(PublicRoutes(map[string]bool{"/callbacks/x": true})))
	answer := func(c *gin.Context) {
		st := http.StatusOK
		if s := c.Query("status"); s != "" {
			st, _ = strconv.Atoi(s)
		}
		c.Status(st)
	}
	r.POST("/callbacks/x", answer)
	r.GET("/api/v1/x", answer)
	r.GET("/healthz", answer)
	return r
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newTestLimiter(rate float64, burst int) (*RefusalLimiter, *fakeClock) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := NewRefusalLimiter(rate, burst, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l.now = clk.now
	return l, clk
}

func serve(r http.Handler, method, path, remote, xff string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = remote
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

// TestRefusalLimiter: refused requests empty a client's bucket, after
// which every request of that client gets 429 with Retry-After until the
// bucket refills; accepted requests cost nothing, other clients and
// health checks are not affected.
func TestRefusalLimiter(t *testing.T) {
	l, clk := newTestLimiter(2, 3)
	r := limiterEngine(t, l, nil)
	const attacker, platform = "203.0.113.7:5000", "198.51.100.1:443"

	// A platform delivering valid callbacks is never throttled.
	for i := 0; i < 1000; i++ {
		if w := serve(r, "POST", "/callbacks/x", platform, ""); w.Code != 200 {
			t.Fatalf("valid callback %d: %d", i, w.Code)
		}
	}
	// The attacker's burst of forgeries is answered, then throttled.
	for i := 0; i < 3; i++ {
		if w := serve(r, "POST", "/callbacks/x?status=403", attacker, ""); w.Code != 403 {
			t.Fatalf("forgery %d: %d, want 403 (within the burst)", i, w.Code)
		}
	}
	w := serve(r, "POST", "/callbacks/x?status=403", attacker, "")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("forgery past the burst: %d, Retry-After %q; want 429 and 1", w.Code, w.Header().Get("Retry-After"))
	}
	// Throttled on every guarded route, valid or not; not on /healthz.
	if w := serve(r, "POST", "/callbacks/x", attacker, ""); w.Code != http.StatusTooManyRequests {
		t.Errorf("throttled client's valid callback: %d, want 429", w.Code)
	}
	if w := serve(r, "GET", "/api/v1/x", attacker, ""); w.Code != http.StatusTooManyRequests {
		t.Errorf("throttled client's API call: %d, want 429", w.Code)
	}
	if w := serve(r, "GET", "/healthz", attacker, ""); w.Code != 200 {
		t.Errorf("throttled client's health check: %d, want 200", w.Code)
	}
	if w := serve(r, "POST", "/callbacks/x", platform, ""); w.Code != 200 {
		t.Errorf("another client: %d, want 200", w.Code)
	}
	// Half a second refills one token at 2/s: one more refusal, then 429.
	clk.advance(500 * time.Millisecond)
	if w := serve(r, "POST", "/callbacks/x?status=401", attacker, ""); w.Code != 401 {
		t.Errorf("after the refill: %d, want 401", w.Code)
	}
	if w := serve(r, "POST", "/callbacks/x?status=401", attacker, ""); w.Code != http.StatusTooManyRequests {
		t.Errorf("right after: %d, want 429", w.Code)
	}
	// A client that stops is forgiven entirely.
	clk.advance(10 * time.Second)
	for i := 0; i < 3; i++ {
		if w := serve(r, "POST", "/callbacks/x?status=400", attacker, ""); w.Code != 400 {
			t.Errorf("after a pause, refusal %d: %d, want 400", i, w.Code)
		}
	}
}

func TestRefusalLimiterCounts(t *testing.T) {
	tests := []struct {
		name, method, path string
		counted            bool
	}{
		{"callback bad request", "POST", "/callbacks/x?status=400", true},
		{"callback bad signature", "POST", "/callbacks/x?status=403", true},
		{"callback unauthorized", "POST", "/callbacks/x?status=401", true},
		{"callback too large", "POST", "/callbacks/x?status=413", true},
		{"callback media type", "POST", "/callbacks/x?status=415", true},
		{"callback not recorded", "POST", "/callbacks/x?status=503", false},
		{"callback accepted", "POST", "/callbacks/x?status=202", false},
		{"api wrong token", "GET", "/api/v1/x?status=401", true},
		{"api brand token on admin call", "GET", "/api/v1/x?status=403", false},
		{"api not found", "GET", "/api/v1/x?status=404", false},
		{"api bad input", "GET", "/api/v1/x?status=400", false},
		{"health", "GET", "/healthz?status=401", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newTestLimiter(1, 1)
			r := limiterEngine(t, l, nil)
			serve(r, tc.method, tc.path, "192.0.2.1:1", "")
			w := serve(r, "POST", "/callbacks/x", "192.0.2.1:1", "")
			if got := w.Code == http.StatusTooManyRequests; got != tc.counted {
				t.Errorf("counted = %v (next request %d), want %v", got, w.Code, tc.counted)
			}
		})
	}
}

// TestRefusalLimiterClientIP: the client is the connection's address,
// an IPv6 client its /64, and X-Forwarded-For names it only when the
// connection comes from a trusted proxy.
func TestRefusalLimiterClientIP(t *testing.T) {
	t.Run("forwarded-for is not believed from anyone", func(t *testing.T) {
		l, _ := newTestLimiter(1, 2)
		r := limiterEngine(t, l, nil)
		for i := 0; i < 5; i++ {
			w := serve(r, "POST", "/callbacks/x?status=403", "203.0.113.7:1", "10.0.0."+strconv.Itoa(i))
			if want := 403; i >= 2 {
				if w.Code != http.StatusTooManyRequests {
					t.Errorf("forgery %d with a made-up X-Forwarded-For: %d, want 429", i, w.Code)
				}
			} else if w.Code != want {
				t.Errorf("forgery %d: %d, want %d", i, w.Code, want)
			}
		}
	})
	t.Run("behind a trusted proxy", func(t *testing.T) {
		l, _ := newTestLimiter(1, 2)
		r := limiterEngine(t, l, []string{"10.0.0.0/8"})
		for i := 0; i < 3; i++ {
			serve(r, "POST", "/callbacks/x?status=403", "10.1.2.3:1", "203.0.113.7")
		}
		if w := serve(r, "POST", "/callbacks/x", "10.1.2.3:1", "203.0.113.7"); w.Code != http.StatusTooManyRequests {
			t.Errorf("attacker behind the proxy: %d, want 429", w.Code)
		}
		if w := serve(r, "POST", "/callbacks/x", "10.1.2.3:1", "198.51.100.1"); w.Code != 200 {
			t.Errorf("platform behind the same proxy: %d, want 200", w.Code)
		}
	})
	t.Run("ipv6 by /64", func(t *testing.T) {
		l, _ := newTestLimiter(1, 2)
		r := limiterEngine(t, l, nil)
		serve(r, "POST", "/callbacks/x?status=403", "[2001:db8:1:2::1]:1", "")
		serve(r, "POST", "/callbacks/x?status=403", "[2001:db8:1:2::ffff]:1", "")
		if w := serve(r, "POST", "/callbacks/x", "[2001:db8:1:2:aaaa::9]:1", ""); w.Code != http.StatusTooManyRequests {
			t.Errorf("same /64: %d, want 429", w.Code)
		}
		if w := serve(r, "POST", "/callbacks/x", "[2001:db8:1:3::1]:1", ""); w.Code != 200 {
			t.Errorf("another /64: %d, want 200", w.Code)
		}
	})
}

// TestRefusalLimiterMemory: the clients tracked are bounded; under a
// flood from more addresses than that, the newcomers share one bucket,
// and clients whose buckets refilled are forgotten to make room.
func TestRefusalLimiterMemory(t *testing.T) {
	l, clk := newTestLimiter(1, 1)
	l.max = 3
	for i := 0; i < 10; i++ {
		key, _ := clientKey("192.0.2." + strconv.Itoa(i))
		l.refused(key)
	}
	if n := len(l.clients); n > l.max+1 { // the overflow bucket besides
		t.Fatalf("%d clients tracked, max %d and the overflow", n, l.max)
	}
	newcomer, _ := clientKey("192.0.2.200")
	if d, _ := l.wait(newcomer); d == 0 {
		t.Error("a newcomer during a flood is not throttled with the overflow")
	}
	clk.advance(time.Minute)
	l.refused(newcomer)
	if _, ok := l.clients[newcomer]; !ok {
		t.Errorf("refilled clients were not swept to make room: %v", l.clients)
	}
	if _, ok := clientKey("not an ip"); ok {
		t.Error("clientKey accepted a non-IP")
	}
	if k, _ := clientKey("::ffff:192.0.2.1"); k != netip.MustParsePrefix("192.0.2.1/32") {
		t.Errorf("IPv4-mapped address keyed as %v", k)
	}
}
