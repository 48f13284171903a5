package adapters

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// sameAsMarshal fails unless AppendJSON gives json.Marshal's bytes, or
// both refuse in.
func sameAsMarshal(t *testing.T, in *Inbound) {
	t.Helper()
	want, werr := json.Marshal(in)
	got, gerr := in.AppendJSON(nil)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("json.Marshal error %v, AppendJSON error %v", werr, gerr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON:\n%s\njson.Marshal:\n%s", got, want)
	}
}

func TestInboundAppendJSON(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	cases := map[string]*Inbound{
		"zero": {},
		"wecom text": {Channel: "wecom", DedupKey: "wecom:msg:123", From: PartyGuide, SenderID: "li", Kind: "text",
			Text: "你好 <b>&\"quoted\"\\ \n\t\r\b\f\x01\x1f", At: time.Date(2026, 11, 26, 9, 30, 0, 123456789, shanghai)},
		"event with attrs": {Channel: "wecom", DedupKey: "k", Kind: "event", Event: "contact.added",
			Attrs: map[string]string{"state": "s1", "welcome_code": "w", "": "empty key", "z<": "&>"}, ReplyTo: map[string]string{}},
		"location":             {Kind: "location", Location: &Location{Lat: 31.2304, Lng: -121.4737, Label: "上海"}},
		"tiny and huge floats": {Location: &Location{Lat: 1e-7, Lng: 1e21}},
		"negative exponents":   {Location: &Location{Lat: -1.5e-9, Lng: 0}},
		"bad utf-8 and separators": {Text: "a\xffb\xe2\x80c\u2028d\u2029e😀",
			ReplyTo: map[string]string{"session_webhook": "https://oapi.dingtalk.com/robot/sendBySession?session=x&y=1"}},
		"utc": {At: time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC)},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) { sameAsMarshal(t, in) })
	}
	// What json.Marshal refuses, AppendJSON refuses.
	for name, in := range map[string]*Inbound{
		"NaN":         {Location: &Location{Lat: math.NaN()}},
		"infinity":    {Location: &Location{Lng: math.Inf(-1)}},
		"year 10000":  {At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"year before": {At: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := in.AppendJSON(nil); err == nil {
				t.Fatal("AppendJSON accepted what json.Marshal refuses")
			}
			sameAsMarshal(t, in)
		})
	}
}

func FuzzInboundAppendJSON(f *testing.F) {
	f.Add("wecom", "text", "你好 <&>", "state", "s\x00", 31.2, 121.4, int64(1764140000), int64(5))
	f.Add("", "", "\xff\xfe\u2028", "", "", 1e-7, -1e22, int64(0), int64(0))
	f.Fuzz(func(t *testing.T, channel, kind, text, key, val string, lat, lng float64, sec, nsec int64) {
		in := &Inbound{Channel: channel, DedupKey: text + key, Kind: kind, Text: text, SenderID: val,
			Attrs: map[string]string{key: val, val: text}, At: time.Unix(sec%(1<<36), nsec%1e9).UTC()}
		if lat != 0 || lng != 0 {
			in.Location = &Location{Lat: lat, Lng: lng, Label: val}
		}
		if len(key)%2 == 1 {
			in.ReplyTo = map[string]string{}
		}
		sameAsMarshal(t, in)
	})
}
