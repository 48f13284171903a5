package httpserve

import (
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// RefusalLimiter throttles clients that keep making refused requests:
// forged or stale callbacks, bad signatures, wrong bearer tokens. Each
// client IP (an IPv6 client by its /64) has a token bucket of burst
// refusals refilled at rate per second; a refused request takes one, an
// accepted one takes nothing. While the bucket is empty every request of
// that client is answered 429 with Retry-After, before any work is done,
// so a flood of forgeries cannot keep the gateway decrypting, hashing and
// querying tokens. A platform that delivers valid callbacks never
// empties its bucket, however fast it sends.
type RefusalLimiter struct {
	rate  float64 // refusals per second
	burst float64
	now   func() time.Time
	log   *slog.Logger
	// Throttled counts the requests answered 429.
	Throttled func()

	mu      sync.Mutex
	clients map[netip.Prefix]*refusals
	max     int // clients tracked; beyond, new ones share one bucket
}

type refusals struct {
	tokens float64
	last   time.Time
	warned bool // the client was logged as throttled since it last had room
}

// maxTrackedClients bounds the memory the limiter holds under a flood
// from many addresses: about 100 bytes a client.
const maxTrackedClients = 100_000

// overflow is the bucket the clients beyond maxTrackedClients share.
var overflow = netip.Prefix{}

// NewRefusalLimiter returns a limiter allowing burst refusals per client,
// refilled at rate per second.
func NewRefusalLimiter(rate float64, burst int, log *slog.Logger) *RefusalLimiter {
	return &RefusalLimiter{rate: rate, burst: float64(burst), now: time.Now, log: log, Throttled: func() {},
		clients: make(map[netip.Prefix]*refusals), max: maxTrackedClients}
}

// clientKey is the bucket of ip: the address itself, or its /64 for
// IPv6, where one host easily holds a whole /64. ok is false for a
// string that is not an IP.
func clientKey(ip string) (netip.Prefix, bool) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{}, false
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return netip.PrefixFrom(addr, 32), true
	}
	p, _ := addr.Prefix(64)
	return p, true
}

// refill brings b's tokens up to now.
func (l *RefusalLimiter) refill(b *refusals, now time.Time) {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el*l.rate)
	}
	b.last = now
}

// wait reports how long key must wait before it may make a request: 0
// when its bucket has room. first is true the first time a wait is
// reported since the client last had room.
func (l *RefusalLimiter) wait(key netip.Prefix) (d time.Duration, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[key]
	if b == nil {
		if len(l.clients) < l.max {
			return 0, false
		}
		if b = l.clients[overflow]; b == nil {
			return 0, false
		}
	}
	l.refill(b, l.now())
	if b.tokens >= 1 {
		b.warned = false
		return 0, false
	}
	first = !b.warned
	b.warned = true
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), first
}

// refused takes a token from key's bucket.
func (l *RefusalLimiter) refused(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.clients[key]
	if b == nil {
		if len(l.clients) >= l.max {
			l.sweep(now)
		}
		if len(l.clients) >= l.max {
			key = overflow
			b = l.clients[key]
		}
		if b == nil {
			b = &refusals{tokens: l.burst, last: now}
			l.clients[key] = b
		}
	}
	l.refill(b, now)
	b.tokens = math.Max(0, b.tokens-1)
}

// sweep forgets the clients whose buckets are full again: they are as
// good as new.
func (l *RefusalLimiter) sweep(now time.Time) {
	for k, b := range l.clients {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.clients, k)
		}
	}
}

// RefusedStatus says which answers count as refusals on a route.
type RefusedStatus func(status int) bool

// callbackRefused: a callback or event that failed verification or
// could not be read.
func callbackRefused(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden,
		http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return true
	}
	return false
}

// authRefused: a bearer token that is missing or wrong. A valid brand
// token refused an admin-only call (403) is not counted.
func authRefused(status int) bool { return status == http.StatusUnauthorized }

// Middleware guards the routes classify assigns a RefusedStatus; the
// others (health, metrics) pass untouched.
func (l *RefusalLimiter) Middleware(classify func(c *gin.Context) RefusedStatus) gin.HandlerFunc {
	return func(c *gin.Context) {
		counts := classify(c)
		if counts == nil {
			c.Next()
			return
		}
		key, ok := clientKey(c.ClientIP())
		if !ok {
			c.Next()
			return
		}
		if d, first := l.wait(key); d > 0 {
			l.Throttled()
			if first {
				l.log.Warn("client throttled after too many refused requests",
					slog.String("client", key.String()), slog.String("route", c.FullPath()))
			}
			c.Header("Retry-After", strconv.Itoa(max(1, int(math.Ceil(d.Seconds())))))
			c.AbortWithStatusJSON(http.StatusTooManyRequests, gin.H{"error": gin.H{"code": "rate_limited",
				"message": "too many refused requests from this address; retry later"}})
			return
		}
		c.Next()
		if counts(c.Writer.Status()) {
			l.refused(key)
		}
	}
}

// PublicRoutes classifies requests for the refusal limiter: the channel
// callback routes (exact paths), the admin API, the queue UI, /metrics and
// the console (whose sign-in answers a bad token 401).
func PublicRoutes(callbacks map[string]bool) func(c *gin.Context) RefusedStatus {
	return func(c *gin.Context) RefusedStatus {
		if callbacks[c.FullPath()] {
			return callbackRefused
		}
		p := c.Request.URL.Path
		if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/console/") || p == QueueUIPath || strings.HasPrefix(p, QueueUIPath+"/") || p == "/metrics" {
			return authRefused
		}
		return nil
	}
}
