package membercode_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/gateway/membercode"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestCodesOnStore: the brand's secret is made on first use and kept
// sealed; codes and links verify against it, identifying writes nothing,
// and a rotation keeps the old secret for its overlap only.
func TestCodesOnStore(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, b := range []string{"acme", "zeta", "acme.cn"} {
			if err := s.CreateBrand(ctx, &store.Brand{ID: b, Name: b}); err != nil {
				t.Fatal(err)
			}
		}
		clk := &clock{t: time.Now()}
		codes := membercode.New(s, clk.now)
		if _, err := codes.Identify(ctx, "acme", "970000000000000000"); !errors.Is(err, membercode.ErrUnknown) {
			t.Errorf("identify before any code: %v", err)
		}
		if _, err := s.MemberCodeSecrets(ctx, "acme", clk.now()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("identifying made a secret: %v", err)
		}
		if _, _, err := codes.MemberCode(ctx, 7, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("code of an unknown brand: %v", err)
		}
		code, until, err := codes.MemberCode(ctx, 7, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if id, err := codes.Identify(ctx, "acme", code); err != nil || id != 7 {
			t.Errorf("Identify = %d, %v", id, err)
		}
		if _, err := codes.Identify(ctx, "zeta", code); !errors.Is(err, membercode.ErrUnknown) {
			t.Errorf("acme's code at zeta: %v", err)
		}
		// The secret stays the same across calls (made once).
		again, _, _ := codes.MemberCode(ctx, 7, "acme")
		if again != code {
			t.Errorf("same step, another code: %s %s", code, again)
		}

		// Links open the member's current code until they expire.
		tok, err := codes.Link(ctx, 7, "acme")
		if err != nil {
			t.Fatal(err)
		}
		got, gotUntil, brand, err := codes.LinkedCode(ctx, tok)
		if err != nil || got != code || !gotUntil.Equal(until) || brand != "acme" {
			t.Errorf("LinkedCode = %s %v %s %v", got, gotUntil, brand, err)
		}
		parts := strings.Split(tok, ".")
		for name, bad := range map[string]string{
			"another member": parts[0] + ".8." + parts[2] + "." + parts[3],
			"another brand":  "zeta." + strings.Join(parts[1:], "."),
			"longer life":    parts[0] + "." + parts[1] + ".9999999999." + parts[3],
			"no mac":         strings.Join(parts[:3], "."),
			"garbage":        "x",
		} {
			if _, _, _, err := codes.LinkedCode(ctx, bad); !errors.Is(err, membercode.ErrLinkInvalid) {
				t.Errorf("%s: %v", name, err)
			}
		}
		// A brand id with dots.
		dotted, err := codes.Link(ctx, 9, "acme.cn")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, b, err := codes.LinkedCode(ctx, dotted); err != nil || b != "acme.cn" {
			t.Errorf("link of acme.cn: %s %v", b, err)
		}
		clk.add(membercode.LinkTTL)
		if _, _, _, err := codes.LinkedCode(ctx, tok); !errors.Is(err, membercode.ErrLinkExpired) {
			t.Errorf("link past its TTL: %v", err)
		}
		if _, err := codes.Identify(ctx, "acme", code); !errors.Is(err, membercode.ErrExpired) {
			t.Errorf("code 10 minutes on: %v", err)
		}

		// Rotation with an overlap: old codes scan during it, not after.
		code, _, _ = codes.MemberCode(ctx, 7, "acme")
		if _, err := s.RotateMemberCodeSecret(ctx, "acme", time.Minute, clk.now()); err != nil {
			t.Fatal(err)
		}
		if id, err := codes.Identify(ctx, "acme", code); err != nil || id != 7 {
			t.Errorf("old code during the overlap: %d %v", id, err)
		}
		fresh, _, _ := codes.MemberCode(ctx, 7, "acme")
		if fresh == code {
			t.Errorf("rotation kept the code")
		}
		clk.add(time.Minute)
		if _, err := codes.Identify(ctx, "acme", code); !errors.Is(err, membercode.ErrUnknown) {
			t.Errorf("old code after the overlap: %v", err)
		}
		if _, err := s.RotateMemberCodeSecret(ctx, "acme", 0, clk.now()); err != nil {
			t.Fatal(err)
		}
		if _, err := codes.Identify(ctx, "acme", fresh); !errors.Is(err, membercode.ErrUnknown) {
			t.Errorf("code after a rotation without overlap: %v", err)
		}
		// A brand's first rotation makes its first secret.
		if _, err := s.RotateMemberCodeSecret(ctx, "zeta", time.Minute, clk.now()); err != nil {
			t.Fatal(err)
		}
		if ss, err := s.MemberCodeSecrets(ctx, "zeta", clk.now()); err != nil || len(ss) != 1 {
			t.Errorf("zeta after its first rotation: %d secrets, %v", len(ss), err)
		}
	})
}
