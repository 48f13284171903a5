package templates

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// sampleData is a member of a Shanghai store with a recent order and a
// coupon, the data the golden files are rendered with.
func sampleData() *Data {
	shanghai := time.FixedZone("CST", 8*3600)
	return &Data{
		Member: Member{Name: "王小美", Level: "gold", Points: 1280, PhoneTail: "5678"},
		Guide:  Guide{Name: "李娜", Store: "静安嘉里中心店"},
		Store:  Store{Name: "静安嘉里中心店", Address: "上海市静安区南京西路1515号B1-12", OpeningHours: "10:00-22:00", DistanceKm: 1.26},
		Order: Order{
			ID:    "SO20240502001",
			Total: 45800,
			Items: []Item{
				{SKU: "SK-001", Name: "氨基酸洁面乳", Qty: 1},
				{SKU: "SK-014", Name: "保湿精华水", Qty: 2},
			},
			// 23:30 UTC is already the next day in Shanghai: the golden
			// files show the date in the member's zone.
			PurchasedAt: time.Date(2024, 5, 1, 23, 30, 0, 0, time.UTC),
		},
		Workflow: Workflow{Name: "new-member-welcome", Step: "welcome"},
		Brand:    Brand{Name: "山茶花"},
		Coupon:   Coupon{Code: "NEW50-8Q2X", Value: 5000, ExpiresAt: time.Date(2024, 6, 30, 23, 59, 59, 0, shanghai)},
		Stores: []Store{
			{Name: "静安嘉里中心店", Address: "上海市静安区南京西路1515号B1-12", OpeningHours: "10:00-22:00", DistanceKm: 1.26},
			{Name: "新天地店", Address: "上海市黄浦区马当路245号", DistanceKm: 3.4},
		},
		Members: []Member{{Name: "王小美", Level: "gold", PhoneTail: "5678"}, {PhoneTail: "0012"}},
		Tasks: []Task{{ID: 12, Title: "新会员 王小美：打个招呼", Member: "王小美", Due: time.Date(2024, 5, 2, 2, 0, 0, 0, time.UTC), Overdue: true},
			{ID: 15, Title: "回访老客", Due: time.Date(2024, 5, 3, 6, 30, 0, 0, time.UTC)}},
		Handoff: Handoff{ID: 42, Member: "王小美", Text: "这款精华有小样吗？", Reason: "asked",
			Recent: []Line{{At: "05-02 10:01", Text: "你好"}, {At: "05-02 10:02", Text: "有折扣吗"}}},
		Handoffs: []Handoff{{ID: 42, Member: "王小美"}, {ID: 43, Member: "…0012"}},
		Stats: Stats{Date: "2024-05-02", MembersBound: 128, NewMembers: 3, OpenTasks: 5, DueTasks: 2, TasksDone: 17,
			NudgesConverted: 6, Points: 2400, OpenHandoffs: 1},
		Orders: []Order{
			{ID: "SO20240502001", Total: 45800, Refunded: 12900, Store: "静安嘉里中心店", PurchasedAt: time.Date(2024, 5, 1, 23, 30, 0, 0, time.UTC),
				Items: []Item{{SKU: "SK-001", Name: "氨基酸洁面乳", Qty: 1}, {SKU: "SK-014", Name: "保湿精华水", Qty: 2}}},
			{ID: "SO20240412007", Total: 12800, PurchasedAt: time.Date(2024, 4, 12, 6, 0, 0, 0, time.UTC),
				Items: []Item{{SKU: "SK-020", Name: "防晒乳", Qty: 1}}},
		},
		Ranks: []Rank{
			{Board: "静安嘉里中心店", Place: 2, Of: 5, Points: 340, Top: []Placing{{1, "王芳", 420}, {2, "李娜", 340}, {3, "赵敏", 120}}},
			{Board: "山茶花", Place: 7, Of: 58, Points: 340, Top: []Placing{{1, "周婷", 980}, {2, "孙悦", 760}, {3, "王芳", 420}}},
		},
		Brands: []Brand{{Name: "山茶花"}, {Name: "云朵"}},
		// Valid until 10:02 in Shanghai.
		MemberCode: MemberCode{Code: "971234567890123456", ValidUntil: time.Date(2024, 5, 2, 2, 2, 0, 0, time.UTC),
			URL: "https://scrm.example.com/m/code/camellia.42.1714615320.6vYw3Gx0c1bqkE9rJm2QpA", PictureURL: "https://scrm.example.com/m/code-card.png"},
		Live: Live{Title: "春季新品试用", URL: "https://live.example.com/s/camellia-0110",
			StartsAt: time.Date(2024, 5, 10, 12, 0, 0, 0, time.UTC), EndsAt: time.Date(2024, 5, 10, 13, 30, 0, 0, time.UTC)},
		Share: Share{SKU: "CL-100", Product: "氨基酸洁面乳", Price: 11900, InStock: true,
			URL: "https://shop.example.com/p/CL-100?share_token=s1.eyJiIjoiY2FtZWxsaWEifQ.AAAAAAAAAAAAAAAAAAAAAA", ExpiresAt: time.Date(2024, 6, 1, 4, 0, 0, 0, time.UTC)},
		TimeZone: "Asia/Shanghai",
	}
}

// TestGolden renders every shipped template (configs/templates) in every
// locale on WeCom, DingTalk and a channel without variants of its own, and
// compares with testdata/golden. Run with -update to rewrite the files.
func TestGolden(t *testing.T) {
	r, err := LoadDir("../configs/templates")
	if err != nil {
		t.Fatalf("loading the shipped templates:\n%v", err)
	}
	if len(r.IDs()) == 0 {
		t.Fatal("no templates in configs/templates")
	}
	seen := map[string]bool{}
	for _, id := range r.IDs() {
		tmpl, _ := r.Lookup(id)
		for _, locale := range tmpl.Locales() {
			for _, channel := range []string{"wecom", "dingtalk", "webhook"} {
				name := id + "." + locale + "." + channel + ".json"
				seen[name] = true
				t.Run(name, func(t *testing.T) {
					m, err := r.Render(id, locale, channel, sampleData())
					if err != nil {
						t.Fatal(err)
					}
					var got bytes.Buffer
					enc := json.NewEncoder(&got)
					enc.SetEscapeHTML(false)
					enc.SetIndent("", "  ")
					if err := enc.Encode(m); err != nil {
						t.Fatal(err)
					}
					file := filepath.Join("testdata", "golden", name)
					if *update {
						if err := os.WriteFile(file, got.Bytes(), 0o644); err != nil {
							t.Fatal(err)
						}
						return
					}
					want, err := os.ReadFile(file)
					if err != nil {
						t.Fatalf("%v (run go test ./templates -update to create it)", err)
					}
					if !bytes.Equal(got.Bytes(), want) {
						t.Errorf("%s differs (go test ./templates -update rewrites it)\ngot:\n%s\nwant:\n%s", file, got.Bytes(), want)
					}
				})
			}
		}
	}
	// A golden file no template renders any more is stale.
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			if *update {
				os.Remove(f)
				continue
			}
			t.Errorf("stale golden file %s (go test ./templates -update removes it)", f)
		}
	}
}
