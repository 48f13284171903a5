package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
)

// TestEraseStopsRunAndSendWithRedis: a member added on WeCom enters a
// workflow that waits and then nudges them through their guide; the
// admin erases them meanwhile (POST /members/{id}/erase). The run ends
// ("erased"), and when the wait would have ended no message task reaches
// WeCom; the person is gone from the API and erasing again answers the
// same.
func TestEraseStopsRunAndSendWithRedis(t *testing.T) {
	s, fake, tok := startWithWeCom(t)
	ctx := context.Background()
	run := joinNudgeLater(t, s, fake, tok, "wmErase", "孙女士", "13300133001")
	before := len(fake.MsgTemplates())
	path := fmt.Sprintf("%s/api/v1/members/%d/erase", s.base, run.MemberID)
	code, first := request(t, "POST", path, tok, "")
	if code != 200 {
		t.Fatalf("erase: %d %s", code, first)
	}
	r, err := s.app.Store.Run(ctx, run.ID)
	if err != nil || r.State == store.RunActive || r.EndReason != store.ErasedReason {
		t.Fatalf("run after the erasure: %+v %v", r, err)
	}
	// Past the wait: nothing goes to WeCom for them.
	time.Sleep(5 * time.Second)
	if n := len(fake.MsgTemplates()); n != before {
		t.Errorf("%d message tasks reached WeCom after the erasure", n-before)
	}
	if code, body := request(t, "GET", fmt.Sprintf("%s/api/v1/members/%d", s.base, run.MemberID), tok, ""); code != 404 {
		t.Errorf("erased member read: %d %s", code, body)
	}
	if code, again := request(t, "POST", path, tok, ""); code != 200 || again != first {
		t.Errorf("erasing again: %d %s, want 200 %s", code, again, first)
	}
	if _, err := s.app.Store.MemberByIdentity(ctx, "wecom", "wmErase"); err == nil {
		t.Error("the erased member's WeCom id still finds them")
	}
}
