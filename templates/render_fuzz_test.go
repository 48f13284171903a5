package templates

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzRender feeds arbitrary template files to Registry.Add and renders
// what it accepts for an arbitrary locale, channel, member name and time
// zone. Properties:
//
//   - nothing panics;
//   - a file Add refuses yields an ErrorList whose every entry has the
//     file, a line and column and a message, and adds no template;
//   - rendering is deterministic, and returns either an error and no
//     message, or a message that a channel can send: a kind of the
//     channel's own variant (text for the default variant), in one of the
//     template's locales, with every required field set, every link
//     http(s), no field the kind lacks, every field trimmed and within
//     MaxTextBytes;
//   - bad input is an error, not a message: an unknown time zone, a
//     required field rendering empty, a link that is not http(s), a text
//     over MaxTextBytes.
//
// Seeds: the shipped templates (configs/templates) for every channel, and
// testdata/fuzz/FuzzRender.
func FuzzRender(f *testing.F) {
	files, _ := filepath.Glob("../configs/templates/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, ch := range []string{"wecom", "dingtalk", "webhook"} {
			f.Add(data, "zh-CN", ch, "王小美", "Asia/Shanghai")
		}
	}
	f.Fuzz(func(t *testing.T, file []byte, locale, channel, name, tz string) {
		r := NewRegistry(WithChannels(testChannels))
		if err := r.Add("fuzz.yaml", file); err != nil {
			var l ErrorList
			if !errors.As(err, &l) || len(l) == 0 {
				t.Fatalf("error %T is not a non-empty ErrorList: %v", err, err)
			}
			for _, e := range l {
				if e.File != "fuzz.yaml" || e.Line < 1 || e.Column < 1 || e.Msg == "" {
					t.Fatalf("error without a file, position or message: %#v", e)
				}
			}
			if ids := r.IDs(); len(ids) != 0 {
				t.Fatalf("a file with errors added templates %v", ids)
			}
			return
		}
		ids := r.IDs()
		if len(ids) != 1 {
			t.Fatalf("one file added templates %v", ids)
		}
		tmpl, _ := r.Lookup(ids[0])
		data := sampleData()
		data.Member.Name = name
		data.TimeZone = tz
		m, err := tmpl.Render(locale, channel, data)
		m2, err2 := tmpl.Render(locale, channel, data)
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() || !cmp.Equal(m, m2) {
			t.Fatalf("two renders differ: %+v, %v; %+v, %v", m, err, m2, err2)
		}
		_, zoneErr := loadZone(tz)
		if tz != "" && zoneErr != nil && err == nil {
			t.Fatalf("rendered with the unknown time zone %q", tz)
		}
		if err != nil {
			if m != nil {
				t.Fatalf("Render returned %+v with error %v", m, err)
			}
			return
		}
		spec, ok := kinds[m.Kind]
		if !ok {
			t.Fatalf("rendered unknown kind %q", m.Kind)
		}
		switch m.Variant {
		case DefaultVariant:
			if m.Kind != KindText {
				t.Fatalf("the default variant rendered kind %s", m.Kind)
			}
		case channel:
			if !slices.Contains(testChannels[channel], m.Kind) {
				t.Fatalf("%s's variant rendered kind %s, which it cannot send", channel, m.Kind)
			}
		default:
			t.Fatalf("rendered variant %q for channel %q", m.Variant, channel)
		}
		if !slices.Contains(tmpl.Locales(), m.Locale) {
			t.Fatalf("rendered locale %q, not one of %v", m.Locale, tmpl.Locales())
		}
		for k := range m.Fields {
			if !slices.ContainsFunc(spec.fields, func(f fieldSpec) bool { return f.name == k && k != "text" }) {
				t.Fatalf("a %s message has field %q", m.Kind, k)
			}
		}
		if !slices.ContainsFunc(spec.fields, func(f fieldSpec) bool { return f.name == "text" }) && m.Text != "" {
			t.Fatalf("a %s message has a text", m.Kind)
		}
		for _, f := range spec.fields {
			v := m.Fields[f.name]
			if f.name == "text" {
				v = m.Text
			}
			switch {
			case f.required && v == "":
				t.Fatalf("required %s rendered empty", f.name)
			case f.url && v != "" && !validURL(v):
				t.Fatalf("link %s = %q", f.name, v)
			case len(v) > MaxTextBytes:
				t.Fatalf("%s is %d bytes", f.name, len(v))
			case v != strings.TrimSpace(v):
				t.Fatalf("%s not trimmed: %q", f.name, v)
			}
		}
	})
}
