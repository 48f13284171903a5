package wecomfake

import (
	"math/rand/v2"
	"net/http"
	"time"
)

// ---- rate limits and latency ----

type delay struct{ before, after, spread time.Duration }

// Delay makes every call of path (a Path* constant) take longer: before
// is spent before the call is looked at, after between carrying it out
// and answering. A client that goes away during before has its call
// dropped, as a request cut off on its way; one killed during after has
// had its call done without learning it, as when a process dies while
// WeCom answers.
func (s *Server) Delay(path string, before, after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delays[path] = delay{before: before, after: after}
}

// DelayBetween makes every call of path (a Path* constant) take from lo
// to hi, uniformly at random, as WeCom's answer times vary: half before
// the call is carried out and half between carrying it out and answering
// (see Delay).
func (s *Server) DelayBetween(path string, lo, hi time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delays[path] = delay{before: lo / 2, after: lo - lo/2, spread: max(hi-lo, 0)}
}

// draw is the delay of one call: d with a random part of its spread.
func (d delay) draw() delay {
	if d.spread > 0 {
		extra := rand.N(d.spread)
		d.before += extra / 2
		d.after += extra - extra/2
	}
	return d
}

// rateWindow counts the calls of one path in the current window.
type rateWindow struct {
	limit  int
	window time.Duration
	start  time.Time
	n      int
}

// LimitRate makes path (a Path* constant) accept at most limit calls per
// window, as WeCom limits each API per corp (10,000 a minute, 150,000 an
// hour): the calls over it answer 45009 (接口调用超过限制) and do nothing.
// Windows are fixed (the first starts at the first call), like a
// per-minute counter; limit 0 removes the limit.
func (s *Server) LimitRate(path string, limit int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit <= 0 {
		delete(s.rates, path)
		return
	}
	s.rates[path] = &rateWindow{limit: limit, window: window}
}

// RateLimited counts the calls refused by LimitRate.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rateLimited
}

// CallWindow is a budget of calls of one API per fixed window of the
// clock (a minute from :00, an hour from :00).
type CallWindow struct {
	Limit int
	Per   time.Duration
}

// WeComCallWindows are the call budgets WeCom publishes for each API of
// a corp: 10,000 a minute and 150,000 an hour.
var WeComCallWindows = []CallWindow{{Limit: 10_000, Per: time.Minute}, {Limit: 150_000, Per: time.Hour}}

// EnforceCallWindows makes every API keep windows (WeComCallWindows when
// none are given), each API counted on its own, in windows aligned to the
// clock (the fake's, WithClock) as the gateway's send limiter counts
// them: a call over any
// answers 45009 (接口调用超过限制), does nothing and is not counted.
func (s *Server) EnforceCallWindows(windows ...CallWindow) {
	if len(windows) == 0 {
		windows = WeComCallWindows
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callWindows, s.windowCounts = windows, map[string][]windowCount{}
}

// windowCount counts the calls of one API in window idx of a CallWindow.
type windowCount struct {
	idx int64
	n   int
}

// overRate counts a call of path and reports whether it is over its
// limit (LimitRate) or a call window (EnforceCallWindows); s.mu is held.
func (s *Server) overRate(path string) bool {
	if len(s.callWindows) > 0 {
		now := s.now()
		counts := s.windowCounts[path]
		if counts == nil {
			counts = make([]windowCount, len(s.callWindows))
			s.windowCounts[path] = counts
		}
		for i, w := range s.callWindows {
			if idx := now.UnixNano() / int64(w.Per); counts[i].idx != idx {
				counts[i] = windowCount{idx: idx}
			}
			if counts[i].n >= w.Limit {
				return true
			}
		}
		for i := range counts {
			counts[i].n++
		}
	}
	r := s.rates[path]
	if r == nil {
		return false
	}
	now := time.Now()
	if r.start.IsZero() || now.Sub(r.start) >= r.window {
		r.start, r.n = now, 0
	}
	r.n++
	return r.n > r.limit
}

// delayedWriter holds an answer until it is flushed.
type delayedWriter struct {
	header http.Header
	status int
	body   []byte
}

func (d *delayedWriter) Header() http.Header { return d.header }

func (d *delayedWriter) WriteHeader(status int) {
	if d.status == 0 {
		d.status = status
	}
}

func (d *delayedWriter) Write(b []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	d.body = append(d.body, b...)
	return len(b), nil
}

func (d *delayedWriter) flush(w http.ResponseWriter) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	w.WriteHeader(d.status)
	_, _ = w.Write(d.body)
}
