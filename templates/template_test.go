package templates

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testChannels are the channels templates are checked against in tests,
// as the wiring gives them from the channels' specs.
var testChannels = Channels{
	"wecom":    {KindText, KindNews, KindMiniProgram},
	"dingtalk": {KindText, KindMarkdown, KindNews, KindActionCard, KindImage},
	"webhook":  kindNames,
}

// TestAddErrors checks every kind of problem a template file can have,
// with the exact message, line and column a marketer sees.
func TestAddErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{
			name: "unknown field of a data struct",
			file: "locales:\n  zh:\n    default: \"{{.Member.Nmae}}您好\"\n",
			want: []string{`welcome.yaml:3:25: template welcome: zh.default: .Member.Nmae: Member has no field Nmae (did you mean "Name"?)`},
		},
		{
			name: "unknown field with no close name lists the fields",
			file: "locales:\n  zh:\n    default: 你好，我是{{.Guide.Phone}}\n",
			want: []string{`welcome.yaml:3:28: template welcome: zh.default: .Guide.Phone: Guide has no field Phone; it has Name, Store`},
		},
		{
			name: "inside range dot is the item",
			file: "locales:\n  en:\n    default: |\n      Your order:\n      {{range .Order.Items}}- {{.Nmae}} x{{.Qty}}\n      {{end}}\n",
			want: []string{`welcome.yaml:5:34: template welcome: en.default: .Nmae: Item has no field Nmae (did you mean "Name"?)`},
		},
		{
			name: "range variables and $ for the root",
			file: "locales:\n  en:\n    default: '{{range $i, $it := .Order.Items}}{{$it.Qtty}} {{$.Member.Nam}}{{end}}'\n",
			want: []string{
				`welcome.yaml:3:54: template welcome: en.default: $it.Qtty: Item has no field Qtty (did you mean "Qty"?)`,
				`welcome.yaml:3:72: template welcome: en.default: $.Member.Nam: Member has no field Nam (did you mean "Name"?)`,
			},
		},
		{
			name: "inside with dot is the value",
			file: "locales:\n  en:\n    default: \"{{with .Coupon}}Code {{.Cod}}{{end}}\"\n",
			want: []string{`welcome.yaml:3:39: template welcome: en.default: .Cod: Coupon has no field Cod (did you mean "Code"?)`},
		},
		{
			name: "unknown function",
			file: "locales:\n  en:\n    default: \"{{mony .Coupon.Value}}\"\n",
			want: []string{`welcome.yaml:3:17: template welcome: en.default: unknown function mony (did you mean "money"?)`},
		},
		{
			name: "function arguments",
			file: "locales:\n  en:\n    default: \"{{money .Member.Name}} {{date .Order.PurchasedAt}}\"\n",
			want: []string{
				`welcome.yaml:3:17: template welcome: en.default: argument 1 of money must be money (an amount such as .Order.Total), not text`,
				`welcome.yaml:3:40: template welcome: en.default: date needs at least 2 arguments, got 1`,
			},
		},
		{
			name: "date layout and zone",
			file: "locales:\n  en:\n    default: '{{date \"YYYY-MM-DD\" .Order.PurchasedAt}} {{date \"Jan 2\" .Order.PurchasedAt \"Asia/Shangai\"}}'\n",
			want: []string{
				`welcome.yaml:3:17: template welcome: en.default: date layout "YYYY-MM-DD" has nothing to fill in: write Go's reference time Mon Jan 2 15:04:05 2006 the way you want it shown, e.g. "2006-01-02" or "1月2日"`,
				`welcome.yaml:3:58: template welcome: en.default: date: unknown time zone "Asia/Shangai": use an IANA name such as Asia/Shanghai`,
			},
		},
		{
			name: "printing a raw time and a whole struct",
			file: "locales:\n  en:\n    default: \"{{.Coupon.ExpiresAt}} {{.Member}}\"\n",
			want: []string{
				`welcome.yaml:3:17: template welcome: en.default: {{.Coupon.ExpiresAt}} prints a raw time: format it with date, e.g. {{date "2006-01-02" .Coupon.ExpiresAt}}`,
				`welcome.yaml:3:39: template welcome: en.default: {{.Member}} prints a whole Member: pick one of its fields (Name, Level, Points, PhoneTail)`,
			},
		},
		{
			name: "range over text and comparing text with a number",
			file: "locales:\n  en:\n    default: \"{{range .Member.Name}}x{{end}}{{if eq .Member.Points .Member.Level}}y{{end}}\"\n",
			want: []string{
				`welcome.yaml:3:23: template welcome: en.default: cannot range over .Member.Name, which is text: range goes through a list such as .Order.Items`,
				`welcome.yaml:3:50: template welcome: en.default: eq compares a number with text: they can never be equal`,
			},
		},
		{
			name: "syntax error",
			file: "locales:\n  en:\n    default: |\n      Hi {{.Member.Name}\n",
			want: []string{`welcome.yaml:4:7: template welcome: en.default: unexpected } : close an action with }}`},
		},
		{
			name: "template and define are not supported",
			file: "locales:\n  en:\n    default: '{{template \"x\"}}'\n",
			want: []string{`welcome.yaml:3:26: template welcome: en.default: {{template}} and {{block}} are not supported in message templates: write the text out`},
		},
		{
			name: "unknown channel key",
			file: "locales:\n  zh:\n    default: 你好\n    wecomm:\n      text: 你好\n",
			want: []string{`welcome.yaml:4:5: template welcome: zh.wecomm: unknown field "wecomm" (did you mean "wecom"?)`},
		},
		{
			name: "kind the channel cannot send",
			file: "locales:\n  zh:\n    wecom:\n      kind: markdown\n      title: t\n      text: x\n",
			want: []string{`welcome.yaml:4:13: template welcome: zh.wecom.kind: wecom cannot send markdown messages; it sends text, news, miniprogram`},
		},
		{
			name: "unknown kind",
			file: "locales:\n  zh:\n    dingtalk:\n      kind: actioncard\n",
			want: []string{`welcome.yaml:4:13: template welcome: zh.dingtalk.kind: unknown kind "actioncard" (did you mean "action_card"?)`},
		},
		{
			name: "field of another kind and a missing field",
			file: "locales:\n  zh:\n    wecom:\n      title: 新品\n      text: 你好\n    dingtalk:\n      kind: action_card\n      title: t\n      text: x\n      single_url: ftp://x\n",
			want: []string{
				`welcome.yaml:4:7: template welcome: zh.wecom.title: a text message has no title; set kind: news to use it`,
				`welcome.yaml:7:7: template welcome: zh.dingtalk: a action_card message needs single_title`,
				`welcome.yaml:10:19: template welcome: zh.dingtalk.single_url: single_url must be an http:// or https:// link, got "ftp://x"`,
			},
		},
		{
			name: "miniprogram cover missing, or given twice",
			file: "locales:\n  zh:\n    wecom:\n      kind: miniprogram\n      title: t\n      appid: wx1\n      page: p\n" +
				"  en:\n    wecom:\n      kind: miniprogram\n      title: t\n      appid: wx1\n      page: p\n      pic_media_id: m\n      picurl: https://shop.example.com/c.png\n" +
				"  ja:\n    wecom:\n      kind: miniprogram\n      title: t\n      appid: wx1\n      page: p\n      picurl: ftp://x\n",
			want: []string{
				`welcome.yaml:4:7: template welcome: zh.wecom: a miniprogram message needs one of pic_media_id, picurl`,
				`welcome.yaml:15:7: template welcome: en.wecom.picurl: a miniprogram message takes one of pic_media_id, picurl, not both: pic_media_id is given too`,
				`welcome.yaml:22:15: template welcome: ja.wecom.picurl: picurl must be an http:// or https:// link, got "ftp://x"`,
			},
		},
		{
			name: "default must be text",
			file: "locales:\n  zh:\n    default:\n      kind: news\n      title: x\n",
			want: []string{`welcome.yaml:4:13: template welcome: zh.default.kind: the default variant must be kind text: it is sent on channels that take nothing else`},
		},
		{
			name: "unknown top-level field and bad locale",
			file: "id: welcome\ndescripton: x\nlocales:\n  Chinese:\n    default: 你好\n",
			want: []string{
				`welcome.yaml:2:1: template welcome: descripton: unknown field "descripton" (did you mean "description"?)`,
				`welcome.yaml:4:3: template welcome: Chinese: bad locale "Chinese": use a language tag such as zh, en or zh-TW`,
			},
		},
		{
			name: "missing locales",
			file: "id: welcome\n",
			want: []string{`welcome.yaml:1:1: template welcome: missing locales: a template needs at least one locale, e.g. zh`},
		},
		{
			name: "yaml syntax error",
			file: "locales:\n  zh:\n    default: \"unclosed\n",
			want: []string{`welcome.yaml:3:1: template welcome: bad YAML: found unexpected end of stream`},
		},
		{
			name: "aliases",
			file: "locales:\n  zh: &zh\n    default: 你好\n  en: *zh\n",
			want: []string{`welcome.yaml:4:7: template welcome: anchors and aliases (*name) are not supported in templates: write the value out`},
		},
		{
			name: "duplicate key",
			file: "locales:\n  zh:\n    default: 你好\n    default: 您好\n",
			want: []string{`welcome.yaml:4:5: template welcome: zh.default: default is given twice`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := NewRegistry(WithChannels(testChannels)).Add("welcome.yaml", []byte(tc.file))
			var got []string
			var l ErrorList
			if errors.As(err, &l) {
				for _, e := range l {
					got = append(got, e.Error())
				}
			} else if err != nil {
				t.Fatalf("error is %T, not an ErrorList: %v", err, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDuplicateID(t *testing.T) {
	r := NewRegistry()
	if err := r.Add("a.yaml", []byte("id: hello\nlocales: {en: {default: hi}}\n")); err != nil {
		t.Fatal(err)
	}
	err := r.Add("b.yaml", []byte("id: hello\nlocales: {en: {default: hi}}\n"))
	want := "b.yaml:1:1: template hello: template id hello is already defined in a.yaml"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestRenderFallbacks(t *testing.T) {
	r := NewRegistry()
	file := `
locales:
  zh:
    default: 你好{{.Member.Name}}
    wecom:
      kind: news
      title: 你好
      url: https://example.com/{{.Member.PhoneTail}}
  en:
    default: Hi {{.Member.Name}}
`
	if err := r.Add("hello.yaml", []byte(file)); err != nil {
		t.Fatal(err)
	}
	data := &Data{Member: Member{Name: "Amy", PhoneTail: "1234"}}
	tests := []struct {
		locale, channel string
		want            *Message
	}{
		{"zh", "wecom", &Message{Kind: "news", Fields: map[string]string{"title": "你好", "url": "https://example.com/1234"}, Locale: "zh", Variant: "wecom"}},
		{"zh", "dingtalk", &Message{Kind: "text", Text: "你好Amy", Locale: "zh", Variant: "default"}},
		// A channel instance's key renders its kind's variant.
		{"zh", "wecom:acme", &Message{Kind: "news", Fields: map[string]string{"title": "你好", "url": "https://example.com/1234"}, Locale: "zh", Variant: "wecom"}},
		{"en-GB", "wecom", &Message{Kind: "text", Text: "Hi Amy", Locale: "en", Variant: "default"}},
		{"fr", "dingtalk", &Message{Kind: "text", Text: "你好Amy", Locale: "zh", Variant: "default"}},
	}
	for _, tc := range tests {
		got, err := r.Render("hello", tc.locale, tc.channel, data)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s/%s (-want +got):\n%s", tc.locale, tc.channel, diff)
		}
	}
	if _, err := r.Render("nope", "zh", "wecom", data); !errors.Is(err, ErrUnknownTemplate) {
		t.Errorf("unknown template: got %v", err)
	}
	tmpl, _ := r.Lookup("hello")
	if !tmpl.CanRender("dingtalk") || !tmpl.CanRender("webhook") {
		t.Error("CanRender is false with a default variant")
	}
}

func TestRenderErrors(t *testing.T) {
	r := NewRegistry()
	file := `
locales:
  en:
    wecom:
      kind: news
      title: "{{.Member.Name}}"
      url: "{{.Brand.Name}}"
`
	if err := r.Add("news.yaml", []byte(file)); err != nil {
		t.Fatal(err)
	}
	tmpl, _ := r.Lookup("news")
	if tmpl.CanRender("dingtalk") {
		t.Error("CanRender(dingtalk) without a dingtalk or default variant")
	}
	_, err := r.Render("news", "en", "dingtalk", &Data{})
	if !errors.Is(err, ErrNoVariant) {
		t.Errorf("no variant: got %v", err)
	}
	_, err = r.Render("news", "en", "wecom", &Data{Brand: Brand{Name: "x"}})
	if err == nil || err.Error() != "rendering news (en, wecom): title rendered empty" {
		t.Errorf("empty title: got %v", err)
	}
	_, err = r.Render("news", "en", "wecom", &Data{Member: Member{Name: "a"}, Brand: Brand{Name: "shop"}})
	if err == nil || err.Error() != `rendering news (en, wecom): url is not an http(s) link: "shop"` {
		t.Errorf("bad url: got %v", err)
	}
}

func TestLoadFS(t *testing.T) {
	fromFS, err := LoadFS(os.DirFS("../configs/templates"))
	if err != nil {
		t.Fatal(err)
	}
	fromDir, err := LoadDir("../configs/templates")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fromDir.IDs(), fromFS.IDs()); diff != "" {
		t.Errorf("ids (-dir +fs):\n%s", diff)
	}
	// Errors of several files are all reported.
	_, err = LoadFS(fstest.MapFS{
		"a.yaml":    {Data: []byte("locales: {en: {default: '{{.X}}'}}\n")},
		"b.yml":     {Data: []byte("locales: {en: {wecom: {kind: nws}}}\n")},
		"notes.txt": {Data: []byte("not a template")},
	})
	want := "a.yaml:1:29: template a: en.default: .X: Data has no field X; it has Member, Guide, Store, Order, Workflow, Brand, Coupon, Stores, Members, Tasks, Handoff, Handoffs, Stats, Orders, Ranks, Brands, MemberCode, Live, Share, TimeZone\n" +
		`b.yml:1:30: template b: en.wecom.kind: unknown kind "nws" (did you mean "news"?)`
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestRenderNilData(t *testing.T) {
	r, err := LoadDir("../configs/templates")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Render("recall", "en", "wecom", nil); err != nil {
		t.Errorf("nil data: %v", err)
	}
}

func TestUses(t *testing.T) {
	r, err := LoadDir("../configs/templates")
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"first_purchase_coupon": true, "win_back": true, "welcome": false, "recall": false} {
		tmpl, _ := r.Lookup(id)
		if got := tmpl.Uses("Coupon"); got != want {
			t.Errorf("%s uses Coupon: got %v, want %v", id, got, want)
		}
	}
}

func TestParseText(t *testing.T) {
	text, err := ParseText("task", "回访 {{.Member.Name}}（尾号{{.Member.PhoneTail}}）")
	if err != nil {
		t.Fatal(err)
	}
	got, err := text.Execute(&Data{Member: Member{Name: "王小美", PhoneTail: "5678"}})
	if err != nil || got != "回访 王小美（尾号5678）" {
		t.Errorf("got %q, %v", got, err)
	}
	_, err = ParseText("task", "回访\n{{.Member.Nmae}}")
	if err == nil || err.Error() != `2:11: .Member.Nmae: Member has no field Nmae (did you mean "Name"?)` {
		t.Errorf("got %v", err)
	}
}

func TestFuncs(t *testing.T) {
	at := time.Date(2024, 5, 1, 23, 30, 0, 0, time.UTC)
	tests := []struct {
		text string
		data Data
		want string
	}{
		{`{{money .Order.Total}}`, Data{Order: Order{Total: 12800}}, "¥128"},
		{`{{money .Order.Total}}`, Data{Order: Order{Total: 12850}}, "¥128.50"},
		{`{{money .Order.Total}}`, Data{Order: Order{Total: -305}}, "-¥3.05"},
		{`{{.Order.Total}}`, Data{Order: Order{Total: 99}}, "0.99"},
		{`{{date "2006-01-02 15:04" .Order.PurchasedAt}}`, Data{Order: Order{PurchasedAt: at}}, "2024-05-01 23:30"},
		{`{{date "2006-01-02 15:04" .Order.PurchasedAt}}`, Data{Order: Order{PurchasedAt: at}, TimeZone: "Asia/Shanghai"}, "2024-05-02 07:30"},
		{`{{date "Jan 2 15:04" .Order.PurchasedAt "America/New_York"}}`, Data{Order: Order{PurchasedAt: at}, TimeZone: "Asia/Shanghai"}, "May 1 19:30"},
		{`{{date "1月2日" .Coupon.ExpiresAt | default "长期有效"}}`, Data{}, "长期有效"},
		{`{{.Member.Name | default "会员"}}`, Data{}, "会员"},
		{`{{.Member.Name | default "会员"}}`, Data{Member: Member{Name: "Amy"}}, "Amy"},
		{`{{.Member.Points | default 0}}`, Data{Member: Member{Points: 3}}, "3"},
		{`{{truncate 5 .Store.Address}}`, Data{Store: Store{Address: "上海市静安区南京西路"}}, "上海市静…"},
		{`{{truncate 5 .Store.Address}}`, Data{Store: Store{Address: "上海市"}}, "上海市"},
		{`{{join "、" .Order.ItemNames}}`, Data{Order: Order{Items: []Item{{Name: "a"}, {Name: "b"}}}}, "a、b"},
		{`{{upper .Coupon.Code}}`, Data{Coupon: Coupon{Code: "abc"}}, "ABC"},
	}
	for _, tc := range tests {
		text, err := ParseText("t", tc.text)
		if err != nil {
			t.Fatalf("%s: %v", tc.text, err)
		}
		got, err := text.Execute(&tc.data)
		if err != nil {
			t.Fatalf("%s: %v", tc.text, err)
		}
		if got != tc.want {
			t.Errorf("%s = %q, want %q", tc.text, got, tc.want)
		}
	}
	long, err := ParseText("t", `{{range 100000}}{{$.Member.Name}}{{end}}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := long.Execute(&Data{Member: Member{Name: "0123456789"}}); !errors.Is(err, errTooLong) {
		t.Errorf("a runaway range: got %v", err)
	}
	if _, err := (&Data{TimeZone: "Mars/Base"}).localize(); err == nil || !strings.Contains(err.Error(), "Mars/Base") {
		t.Errorf("unknown zone: got %v", err)
	}
}

// TestChannelKinds: with the channels' kinds given, a variant whose kind
// its channel cannot send is an error at its kind; DingTalk's news and
// image variants and a webhook variant load; without channels, any
// channel and kind of the language pass.
func TestChannelKinds(t *testing.T) {
	const file = "locales:\n  zh:\n    default: 你好\n    dingtalk:\n      kind: news\n      title: 新品\n      url: https://shop.example.com/n\n" +
		"    webhook:\n      kind: image\n      picurl: https://shop.example.com/p.png\n"
	r := NewRegistry(WithChannels(testChannels))
	if err := r.Add("news.yaml", []byte(file)); err != nil {
		t.Fatal(err)
	}
	tmpl, _ := r.Lookup("news")
	for ch, want := range map[string][]string{"dingtalk": {"news"}, "webhook": {"image"}, "wecom": {"text"}} {
		if got := tmpl.Kinds(ch); !slices.Equal(got, want) {
			t.Errorf("Kinds(%s) = %v, want %v", ch, got, want)
		}
	}
	m, err := r.Render("news", "zh", "dingtalk", sampleData())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&Message{Kind: "news", Fields: map[string]string{"title": "新品", "url": "https://shop.example.com/n"}, Locale: "zh", Variant: "dingtalk"}, m); diff != "" {
		t.Errorf("dingtalk news (-want +got):\n%s", diff)
	}

	bad := "locales:\n  zh:\n    dingtalk:\n      kind: miniprogram\n      title: t\n      appid: wx1\n      page: p\n      pic_media_id: m\n" +
		"    wecom:\n      kind: image\n      picurl: https://shop.example.com/p.png\n"
	want := "bad.yaml:4:13: template bad: zh.dingtalk.kind: dingtalk cannot send miniprogram messages; it sends text, markdown, news, action_card, image\n" +
		"bad.yaml:10:13: template bad: zh.wecom.kind: wecom cannot send image messages; it sends text, news, miniprogram"
	if err := NewRegistry(WithChannels(testChannels)).Add("bad.yaml", []byte(bad)); err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
	if err := NewRegistry().Add("bad.yaml", []byte(bad)); err != nil {
		t.Errorf("without channels: %v", err)
	}
	unknown := "locales:\n  zh:\n    default: hi\n    feishu: hi\n"
	want = `unknown.yaml:4:5: template unknown: zh.feishu: unknown field "feishu"; the fields here are default, dingtalk, webhook and wecom`
	if err := NewRegistry(WithChannels(testChannels)).Add("unknown.yaml", []byte(unknown)); err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

// TestRenderMiniProgramCover: a miniprogram's cover is its picurl or its
// pic_media_id, whichever the variant has; one that renders empty is an
// error, not a message without a cover.
func TestRenderMiniProgramCover(t *testing.T) {
	r := NewRegistry(WithChannels(testChannels))
	file := "id: reorder\nlocales:\n  zh:\n    wecom:\n      kind: miniprogram\n      title: 再来一单\n      appid: wx1\n      page: pages/reorder\n" +
		"      picurl: \"{{if .Member.Name}}https://shop.example.com/c.png{{end}}\"\n"
	if err := r.Add("reorder.yaml", []byte(file)); err != nil {
		t.Fatal(err)
	}
	m, err := r.Render("reorder", "zh", "wecom", &Data{Member: Member{Name: "周"}})
	if err != nil || m.Fields["picurl"] != "https://shop.example.com/c.png" || m.Fields["pic_media_id"] != "" {
		t.Fatalf("rendered %+v, %v", m, err)
	}
	_, err = r.Render("reorder", "zh", "wecom", &Data{})
	if err == nil || !strings.Contains(err.Error(), "pic_media_id or picurl rendered empty") {
		t.Errorf("an empty cover rendered: %v", err)
	}
}
