package outbox

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/queue/queuetest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// cutProxy forwards TCP connections to a server and can cut them all and
// refuse new ones for a while, as a database restart does.
type cutProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	conns   []net.Conn
	downTil time.Time
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut(0) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := time.Now().Before(p.downTil)
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

// cut closes every connection and refuses new ones for d.
func (p *cutProxy) cut(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.downTil = time.Now().Add(d)
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// outageChannel accepts a message (or fails it with err) and then takes
// the database away for a second, between the send and the recording of
// its outcome.
type outageChannel struct {
	fakeChannel
	proxy *cutProxy
	err   error
}

func (c *outageChannel) Send(ctx context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	defer c.proxy.cut(time.Second)
	if c.err != nil {
		return nil, c.err
	}
	return c.fakeChannel.Send(ctx, m)
}

// TestSenderRecordsOutcomeAcrossDatabaseOutage: when the database goes
// away between a send and the recording of its outcome (found by
// TestFaultsPostgresRestart in cmd/scrmgw-load), the sender records the
// outcome once the database is back. Before, the row stayed "sending" for
// ever: a delivered message never showed as sent, and a send released for
// a retry was never retried (the retry found the row claimed).
func TestSenderRecordsOutcomeAcrossDatabaseOutage(t *testing.T) {
	u, err := url.Parse(storetest.URL(t, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := startCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{URL: u.String(), PhoneKey: storetest.PhoneKey, MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ch := &outageChannel{fakeChannel: fakeChannel{}, proxy: proxy}
	reg := adapters.NewRegistry()
	reg.Register(ch)
	q := queuetest.New()
	snd := NewSender(s, reg, q, discard)

	for _, tc := range []struct {
		name      string
		sendErr   error
		wantState string
	}{
		{"sent", nil, store.OutboxSent},
		{"released for a retry", &adapters.APIError{Channel: "fake", Code: 502, Kind: adapters.ErrTemporary}, store.OutboxPending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			waitDB(t, s)
			ch.err = tc.sendErr
			row, err := snd.Send(ctx, "fake", &adapters.Outbound{IdempotencyKey: "outage:" + tc.name, To: "wm1", Text: "hi"}, Meta{})
			if err != nil {
				t.Fatal(err)
			}
			tasks := q.Drain()
			if len(tasks) != 1 {
				t.Fatalf("queued %d tasks, want 1", len(tasks))
			}
			start := time.Now()
			err = snd.SendTask(ctx, tasks[0])
			if (err != nil) != (tc.sendErr != nil) {
				t.Errorf("SendTask: %v", err)
			}
			if d := time.Since(start); d < time.Second {
				t.Errorf("SendTask returned after %s, before the database was back", d)
			}
			waitDB(t, s)
			got, err := s.Outbox(ctx, row.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tc.wantState {
				t.Errorf("outbox row is %s after the outage, want %s", got.State, tc.wantState)
			}
		})
	}
	if len(ch.sent) != 1 {
		t.Errorf("channel got %d messages, want 1", len(ch.sent))
	}
}

// waitDB waits until the store answers again.
func waitDB(t *testing.T, s *store.Store) {
	t.Helper()
	for i := 0; s.Ping(context.Background()) != nil; i++ {
		if i > 100 {
			t.Fatal("the database did not come back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
