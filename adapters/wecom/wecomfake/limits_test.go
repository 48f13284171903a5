package wecomfake_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// TestCallWindows: with call windows enforced, each API gets its budget
// per window of the clock; a call over it answers 45009 and is not
// carried out, other APIs keep theirs, and the next window starts afresh.
func TestCallWindows(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2027, 1, 5, 10, 0, 30, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := wecomfake.New(t, wecomfake.WithClock(clock))
	f.EnforceCallWindows(wecomfake.CallWindow{Limit: 3, Per: time.Minute}, wecomfake.CallWindow{Limit: 5, Per: time.Hour})
	tok := token(t, f, f.ContactSecret())
	welcome := func() int {
		code := f.IssueWelcomeCode("wmA")
		return post(t, f.URL()+wecomfake.PathSendWelcomeMsg+"?access_token="+tok, `{"welcome_code":"`+code+`","text":{"content":"hi"}}`).Errcode
	}
	var codes []int
	for range 4 {
		codes = append(codes, welcome())
	}
	if want := []int{0, 0, 0, wecomfake.CodeFreqLimit}; !slices.Equal(codes, want) {
		t.Fatalf("four welcomes in a minute answered %v, want %v", codes, want)
	}
	if n := len(f.Welcomes()); n != 3 {
		t.Errorf("%d welcomes carried out, want 3", n)
	}
	appTok := token(t, f, f.Secret())
	if a := post(t, f.URL()+wecomfake.PathMessageSend+"?access_token="+appTok,
		`{"touser":"li","msgtype":"text","agentid":`+f.AgentID()+`,"text":{"content":"hi"}}`); a.Errcode != 0 {
		t.Errorf("message/send in the same minute: %d, want 0 (its own budget)", a.Errcode)
	}
	// The next minute: two more fit the hour's five.
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	codes = codes[:0]
	for range 3 {
		codes = append(codes, welcome())
	}
	if want := []int{0, 0, wecomfake.CodeFreqLimit}; !slices.Equal(codes, want) {
		t.Errorf("the next minute answered %v, want %v (the hour's budget is 5)", codes, want)
	}
	if n := f.RateLimited(); n != 2 {
		t.Errorf("RateLimited = %d, want 2", n)
	}
}

// TestDelayBetween: every call takes from the low to the high delay,
// not always the same, and is carried out all the same.
func TestDelayBetween(t *testing.T) {
	f := wecomfake.New(t)
	f.DelayBetween(wecomfake.PathSendWelcomeMsg, 20*time.Millisecond, 60*time.Millisecond)
	tok := token(t, f, f.ContactSecret())
	var took []time.Duration
	for range 8 {
		code := f.IssueWelcomeCode("wmA")
		start := time.Now()
		if a := post(t, f.URL()+wecomfake.PathSendWelcomeMsg+"?access_token="+tok, `{"welcome_code":"`+code+`","text":{"content":"hi"}}`); a.Errcode != 0 {
			t.Fatalf("welcome: %d", a.Errcode)
		}
		took = append(took, time.Since(start))
	}
	lo, hi := slices.Min(took), slices.Max(took)
	if lo < 20*time.Millisecond || hi > 500*time.Millisecond || hi-lo < time.Millisecond {
		t.Errorf("calls took %v, want each from 20 to 60 ms (plus the machine's own time), not all the same", took)
	}
	if n := len(f.Welcomes()); n != 8 {
		t.Errorf("%d welcomes carried out, want 8", n)
	}
}
