package wecomfake

import (
	"net/http"
	"time"
)

// ---- rate limits and latency ----

type delay struct{ before, after time.Duration }

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

// overRate counts a call of path and reports whether it is over its
// limit; s.mu is held.
func (s *Server) overRate(path string) bool {
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
