package membercode

import (
	"bytes"
	"fmt"
)

// code128 are the bar and space widths (in modules, bar first) of the
// Code 128 symbols 0–106 (ISO/IEC 15417); 106 is the stop with its final
// bar.
var code128 = [...]string{
	"212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213",
	"221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221", "223211", "221132",
	"221231", "213212", "223112", "312131", "311222", "321122", "321221", "312212", "322112", "322211",
	"212123", "212321", "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313",
	"231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121", "313121", "211331",
	"231131", "213113", "213311", "213131", "311123", "311321", "331121", "312113", "312311", "332111",
	"314111", "221411", "431111", "111224", "111422", "121124", "121421", "141122", "141221", "112214",
	"112412", "122114", "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111",
	"111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
	"214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311", "113141",
	"114131", "311141", "411131", "211412", "211214", "211232", "2331112",
}

const (
	code128StartC = 105
	code128Stop   = 106
	quietModules  = 10
)

// code128C returns the symbols of an even number of digits in Code 128
// code set C (two digits a symbol): start C, the pairs, the check symbol,
// stop.
func code128C(digits string) ([]int, error) {
	if len(digits) == 0 || len(digits)%2 != 0 {
		return nil, fmt.Errorf("code set C takes an even number of digits, got %d", len(digits))
	}
	syms := []int{code128StartC}
	sum := code128StartC
	for i := 0; i < len(digits); i += 2 {
		a, b := digits[i], digits[i+1]
		if a < '0' || a > '9' || b < '0' || b > '9' {
			return nil, fmt.Errorf("not a digit in %q", digits)
		}
		v := int(a-'0')*10 + int(b-'0')
		syms = append(syms, v)
		sum += v * (i/2 + 1)
	}
	return append(syms, sum%103, code128Stop), nil
}

// BarcodeSVG draws code as a Code 128 barcode (code set C), with quiet
// zones, as an SVG image scaled to its box.
func BarcodeSVG(code string) ([]byte, error) {
	syms, err := code128C(code)
	if err != nil {
		return nil, err
	}
	var bars bytes.Buffer
	x := quietModules
	for _, s := range syms {
		for i, w := range code128[s] {
			n := int(w - '0')
			if i%2 == 0 {
				fmt.Fprintf(&bars, "M%d 0h%dv60h-%dz", x, n, n)
			}
			x += n
		}
	}
	width := x + quietModules
	var out bytes.Buffer
	fmt.Fprintf(&out, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d 60" preserveAspectRatio="none" shape-rendering="crispEdges" role="img" aria-label="%s">`, width, code)
	fmt.Fprintf(&out, `<rect width="%d" height="60" fill="#fff"/><path fill="#000" d="%s"/></svg>`, width, bars.String())
	return out.Bytes(), nil
}
