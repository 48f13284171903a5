package membercode

import (
	"slices"
	"strings"
	"testing"
)

// TestCode128Table: every symbol is 3 bars and 3 spaces over 11 modules
// (the stop 4 bars over 13), and no two are alike.
func TestCode128Table(t *testing.T) {
	seen := map[string]int{}
	for v, p := range code128 {
		want, n := 11, 6
		if v == code128Stop {
			want, n = 13, 7
		}
		sum := 0
		for _, c := range p {
			sum += int(c - '0')
		}
		if len(p) != n || sum != want {
			t.Errorf("symbol %d = %s: %d widths over %d modules", v, p, len(p), sum)
		}
		if w, dup := seen[p]; dup {
			t.Errorf("symbols %d and %d are both %s", w, v, p)
		}
		seen[p] = v
	}
}

func TestBarcode(t *testing.T) {
	// 97 12 34 56 78 90 12 34 56: start C 105, the check symbol is
	// (105 + 97·1 + 12·2 + 34·3 + 56·4 + 78·5 + 90·6 + 12·7 + 34·8 + 56·9) mod 103.
	syms, err := code128C("971234567890123456")
	if err != nil {
		t.Fatal(err)
	}
	check := (105 + 97*1 + 12*2 + 34*3 + 56*4 + 78*5 + 90*6 + 12*7 + 34*8 + 56*9) % 103
	if want := []int{105, 97, 12, 34, 56, 78, 90, 12, 34, 56, check, 106}; !slices.Equal(syms, want) {
		t.Errorf("symbols %v, want %v", syms, want)
	}
	svg, err := BarcodeSVG("971234567890123456")
	if err != nil {
		t.Fatal(err)
	}
	// 12 symbols: 11 of 11 modules, the stop 13, and 10 quiet each side.
	if s := string(svg); !strings.HasPrefix(s, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 154 60"`) || strings.Count(s, "M") != 11*3+4 {
		t.Errorf("svg = %s", s)
	}
	for _, bad := range []string{"", "123", "12a4"} {
		if _, err := BarcodeSVG(bad); err == nil {
			t.Errorf("BarcodeSVG(%q) succeeded", bad)
		}
	}
}
