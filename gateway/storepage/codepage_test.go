package storepage_test

import (
	"context"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/membercode"
	"github.com/scrmgw/scrmgw/gateway/storepage"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestMemberCodePage: a member code link opens a page with the member's
// current code (digits, QR code, barcode) that the till accepts; the
// images need the same link; a tampered link is 404, an old one 410;
// nothing of it is cached.
func TestMemberCodePage(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.CreateBrand(ctx, &store.Brand{ID: "camellia", Name: "山茶花"}); err != nil {
			t.Fatal(err)
		}
		m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", Name: "陈女士", BrandID: "camellia"})
		if err != nil {
			t.Fatal(err)
		}
		codes := membercode.New(s, nil)
		gin.SetMode(gin.TestMode)
		r := gin.New()
		storepage.New(storepage.Options{Store: s, Codes: codes}).Mount(r)
		srv := httptest.NewServer(r)
		defer srv.Close()

		tok, err := codes.Link(ctx, m.ID, "camellia")
		if err != nil {
			t.Fatal(err)
		}
		a := get(t, srv.URL+membercode.LinkPath+tok, "")
		if a.status != 200 {
			t.Fatalf("code page: %d %s", a.status, a.body)
		}
		for h, want := range map[string]string{"Content-Security-Policy": storepage.CSP, "Cache-Control": "no-store",
			"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex", "Content-Type": "text/html; charset=utf-8"} {
			if got := a.header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
		shown := regexp.MustCompile(`<p class="digits" id="code">(97\d\d(?: \d{4}){3} \d\d)</p>`).FindStringSubmatch(a.body)
		if shown == nil {
			t.Fatalf("no code on the page:\n%s", a.body)
		}
		code := strings.ReplaceAll(shown[1], " ", "")
		if id, err := codes.Identify(ctx, "camellia", code); err != nil || id != m.ID {
			t.Errorf("page's code identifies %d, %v", id, err)
		}
		for _, w := range []string{"山茶花", "会员码", `<meta http-equiv="refresh" content="`, `src="` + membercode.LinkPath + tok + `/qr.png?c=`,
			`src="` + membercode.LinkPath + tok + `/barcode.svg?c=`, "前有效"} {
			if !strings.Contains(a.body, w) {
				t.Errorf("page lacks %q", w)
			}
		}
		if strings.Contains(a.body, "13800138000") || strings.Contains(a.body, "陈女士") {
			t.Errorf("page shows who the member is")
		}
		if en := get(t, srv.URL+membercode.LinkPath+tok, "en-US,en"); !strings.Contains(en.body, "Member code") || !strings.Contains(en.body, "valid until") {
			t.Errorf("English page:\n%s", en.body)
		}
		qr := get(t, srv.URL+membercode.LinkPath+tok+"/qr.png", "")
		if qr.status != 200 || qr.header.Get("Content-Type") != "image/png" || !strings.HasPrefix(qr.body, "\x89PNG") || qr.header.Get("Cache-Control") != "no-store" {
			t.Errorf("qr.png: %d %s", qr.status, qr.header.Get("Content-Type"))
		}
		bar := get(t, srv.URL+membercode.LinkPath+tok+"/barcode.svg", "")
		if bar.status != 200 || bar.header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(bar.body, `aria-label="97`) {
			t.Errorf("barcode.svg: %d %s %s", bar.status, bar.header.Get("Content-Type"), bar.body)
		}
		thumb := get(t, srv.URL+membercode.CardPicturePath, "")
		if thumb.status != 200 || !strings.HasPrefix(thumb.body, "\x89PNG") {
			t.Errorf("card thumbnail: %d", thumb.status)
		}

		parts := strings.Split(tok, ".")
		other := parts[0] + "." + strconv.FormatInt(m.ID+1, 10) + "." + parts[2] + "." + parts[3]
		old, err := membercode.New(s, func() time.Time { return time.Now().Add(-membercode.LinkTTL - time.Second) }).Link(ctx, m.ID, "camellia")
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, path string
			status     int
			want       string
		}{
			{"another member", membercode.LinkPath + other, 404, "链接无效"},
			{"another member's QR", membercode.LinkPath + other + "/qr.png", 404, "链接无效"},
			{"garbage", membercode.LinkPath + "x", 404, "链接无效"},
			{"expired", membercode.LinkPath + old, 410, "这个链接已过期"},
			{"expired barcode", membercode.LinkPath + old + "/barcode.svg", 410, "这个链接已过期"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := get(t, srv.URL+tc.path, "")
				if a.status != tc.status || !strings.Contains(a.body, tc.want) || a.header.Get("Content-Security-Policy") != storepage.CSP {
					t.Errorf("%d %q, want %d %q", a.status, a.body, tc.status, tc.want)
				}
				if strings.Contains(a.body, `class="digits"`) {
					t.Errorf("error page shows a code")
				}
			})
		}
	})
}
