package api_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/membercode"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestMemberCodeIdentify: the POS scans a member code and gets the member
// (phone masked), level, points and coupons usable now; stale, malformed
// and foreign codes are told apart without anything written.
func TestMemberCodeIdentify(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newServer(t, s)
		seed(c)
		m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", Name: "陈女士", BrandID: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		// She is a member of zeta too, which a zeta code would name.
		if _, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", BrandID: "zeta"}); err != nil {
			t.Fatal(err)
		}
		points := int64(320)
		if err := s.SetMembership(ctx, m.ID, "acme", "gold", &points); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Second)
		for _, cp := range []store.IssuedCoupon{
			{Key: "k1", Code: "ACME-10", Batch: "welcome", BrandID: "acme", MemberID: m.ID, ValueCents: 1000, ExpiresAt: now.Add(72 * time.Hour), IssuedAt: now},
			{Key: "k2", Code: "ACME-OLD", Batch: "spring", BrandID: "acme", MemberID: m.ID, ValueCents: 500, ExpiresAt: now.Add(-time.Hour), IssuedAt: now.Add(-48 * time.Hour)},
			{Key: "k3", Code: "ZETA-5", Batch: "z", BrandID: "zeta", MemberID: m.ID, ValueCents: 500, ExpiresAt: now.Add(time.Hour), IssuedAt: now},
		} {
			if _, err := s.IssueCoupon(ctx, &cp); err != nil {
				t.Fatal(err)
			}
		}
		codes := membercode.New(s, nil)
		code, until, err := codes.MemberCode(ctx, m.ID, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Until(until); d <= membercode.Step || d > 2*membercode.Step {
			t.Errorf("code valid until %v (in %v), want 60-120 s on", until, d)
		}
		zetaCode, _, err := codes.MemberCode(ctx, m.ID, "zeta")
		if err != nil {
			t.Fatal(err)
		}
		acme := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"acme pos","brand":"acme"}`)["token"].(string)
		zeta := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"zeta pos","brand":"zeta"}`)["token"].(string)
		// A code made three minutes ago with the brand's own secret.
		secrets, err := s.MemberCodeSecrets(ctx, "acme", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		stale, err := membercode.Make(secrets[0], m.ID, time.Now().Add(-3*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		prev, err := membercode.Make(secrets[0], m.ID, time.Now().Add(-membercode.Step))
		if err != nil {
			t.Fatal(err)
		}
		tampered := []byte(code)
		tampered[10] = '0' + (tampered[10]-'0'+3)%10

		wantCoupons := []any{map[string]any{"code": "ACME-10", "batch": "welcome", "value_cents": 1000.0, "expires_at": now.Add(72 * time.Hour).Format(time.RFC3339)}}
		want := map[string]any{"brand": "acme", "member": map[string]any{"id": float64(m.ID), "name": "陈女士", "phone": "+86138****8000"},
			"level": "gold", "points": 320.0, "coupons": wantCoupons}
		for _, tc := range []struct {
			name, token, body string
			status            int
			code              string
		}{
			{"brand token", acme, `{"code":"` + code + `"}`, 200, ""},
			{"brand token naming its brand", acme, `{"code":"` + code + `","brand":"acme"}`, 200, ""},
			{"admin naming the brand", adminToken, `{"code":"` + code + `","brand":"acme"}`, 200, ""},
			{"previous step", acme, `{"code":"` + prev + `"}`, 200, ""},
			{"admin without a brand", adminToken, `{"code":"` + code + `"}`, 400, api.CodeInvalidArgument},
			{"expired", acme, `{"code":"` + stale + `"}`, 410, api.CodeCodeExpired},
			{"malformed", acme, `{"code":"97123"}`, 400, api.CodeInvalidCode},
			{"payment code", acme, `{"code":"134567890123456789"}`, 400, api.CodeInvalidCode},
			{"empty", acme, `{"code":""}`, 400, api.CodeInvalidCode},
			{"tampered", acme, `{"code":"` + string(tampered) + `"}`, 404, api.CodeNotFound},
			{"another brand's code", acme, `{"code":"` + zetaCode + `"}`, 404, api.CodeNotFound},
			{"acme's code at zeta's till", zeta, `{"code":"` + code + `"}`, 404, api.CodeNotFound},
			{"brand token naming another brand", acme, `{"code":"` + zetaCode + `","brand":"zeta"}`, 404, api.CodeNotFound},
			{"unknown field", acme, `{"code":"` + code + `","member":1}`, 400, api.CodeInvalidArgument},
			{"no token", "", `{"code":"` + code + `"}`, 401, api.CodeUnauthorized},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, out := c.do("POST", "/api/v1/pos/identify", tc.token, tc.body)
				if got != tc.status || errCode(out) != tc.code {
					t.Fatalf("status %d %v, want %d %s", got, out, tc.status, tc.code)
				}
				if tc.status == 200 {
					if d := cmp.Diff(want, out); d != "" {
						t.Errorf("identify (-want +got):\n%s", d)
					}
				}
			})
		}
		// zeta's till knows her by zeta's code, with zeta's coupon only.
		z := c.must(200, "POST", "/api/v1/pos/identify", zeta, `{"code":"`+zetaCode+`"}`)
		if cs := z["coupons"].([]any); len(cs) != 1 || cs[0].(map[string]any)["code"] != "ZETA-5" || z["points"] != 0.0 {
			t.Errorf("zeta identify = %v", z)
		}

		// Rotation: a code of the old secret still scans (the overlap), a
		// new code verifies with the new secret, another brand cannot
		// rotate acme's.
		c.must(404, "POST", "/api/v1/brands/acme/member-code/rotate", zeta, "")
		c.must(404, "POST", "/api/v1/brands/nope/member-code/rotate", adminToken, "")
		rot := c.must(200, "POST", "/api/v1/brands/acme/member-code/rotate", acme, "")
		if _, ok := rot["previous_valid_until"].(string); !ok {
			t.Errorf("rotate answered %v", rot)
		}
		c.must(200, "POST", "/api/v1/pos/identify", acme, `{"code":"`+code+`"}`)
		fresh, _, err := codes.MemberCode(ctx, m.ID, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if fresh == code {
			t.Errorf("code unchanged by the rotation")
		}
		c.must(200, "POST", "/api/v1/pos/identify", acme, `{"code":"`+fresh+`"}`)
		now2, _ := s.MemberCodeSecrets(ctx, "acme", time.Now())
		if len(now2) != 2 || string(now2[1]) != string(secrets[0]) {
			t.Errorf("after rotation: %d secrets, previous kept %v", len(now2), len(now2) == 2 && string(now2[1]) == string(secrets[0]))
		}
		later, _ := s.MemberCodeSecrets(ctx, "acme", time.Now().Add(3*time.Minute))
		if len(later) != 1 {
			t.Errorf("the previous secret outlives its overlap: %d secrets", len(later))
		}

		// A brand that never issued a code knows none; nothing was
		// written by identifying.
		if _, err := s.MemberCodeSecrets(ctx, "zeta", time.Now()); err != nil {
			t.Fatalf("zeta's secret: %v", err)
		}
		c.must(201, "POST", "/api/v1/brands", adminToken, `{"id":"quiet","name":"Quiet"}`)
		q := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"quiet pos","brand":"quiet"}`)["token"].(string)
		c.must(404, "POST", "/api/v1/pos/identify", q, `{"code":"`+code+`"}`)
		if _, err := s.MemberCodeSecrets(ctx, "quiet", time.Now()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("identify made brand quiet a secret: %v", err)
		}
	})
}
