package templates

import (
	"errors"
	"testing"
)

// FuzzParseText feeds the checker arbitrary template texts. It must not
// panic; its errors carry a position inside the text; and a text it
// accepts must execute with sample data without panicking (an error, such
// as from index out of range, is allowed: that is data-dependent).
func FuzzParseText(f *testing.F) {
	for _, s := range []string{
		"{{.Member.Name}}",
		"{{range $i, $it := .Order.Items}}{{$i}} {{$it.Name}} {{$.Brand.Name}}{{end}}",
		"{{with .Coupon}}{{.Code}} {{money .Value}}{{else}}none{{end}}",
		`{{date "1月2日" .Coupon.ExpiresAt "Asia/Shanghai" | default "长期"}}`,
		"{{if and .Member.Name (gt .Member.Points 100)}}vip{{end}}",
		"{{index .Order.Items 0}}{{len .Order.ItemNames}}{{slice .Member.Name 1}}",
		"{{$x := .Order}}{{$x = .Member}}{{$x.Name}}",
		"{{range 3}}{{.}}{{break}}{{end}}",
		"{{.Order.PurchasedAt.Format \"2006\"}}{{.Order.ItemNames | join \"、\"}}",
		"{{printf \"%.1f\" .Store.DistanceKm}}{{truncate 3 .Store.Address}}",
	} {
		f.Add(s)
	}
	data := sampleData()
	f.Fuzz(func(t *testing.T, text string) {
		tmpl, err := ParseText("fuzz", text)
		if err != nil {
			var l ErrorList
			if !errors.As(err, &l) || len(l) == 0 {
				t.Fatalf("error %T is not a non-empty ErrorList: %v", err, err)
			}
			for _, e := range l {
				if e.Line < 1 || e.Column < 1 || e.Msg == "" {
					t.Fatalf("error without a position: %#v", e)
				}
			}
			return
		}
		tmpl.Execute(data)
	})
}
