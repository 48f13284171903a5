package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/cmd/scrmgw/internal/app"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
)

// TestLiveCommand: `scrmgw live schedule` records a session from a file
// (the same again changes nothing; a session ending before it starts is
// refused with the field named, exit 2), and `scrmgw live funnel` prints
// its funnel.
func TestLiveCommand(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SCRMGW_DATA_DIR", dir)
	ctx := context.Background()
	cfg, err := configs.Load("", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	s, err := app.OpenStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBrand(ctx, &store.Brand{ID: "acme", Name: "ACME"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRetailStore(ctx, &store.RetailStore{ID: "sh-1", Name: "SH", BrandIDs: []string{"acme"}, Lat: 31, Lng: 121, Active: true}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"id":"live-1","store_id":"sh-1","title":"Spring","url":"https://live.example.com/1",
	  "starts_at":"2027-01-10T20:00:00+08:00","ends_at":"2027-01-10T21:00:00+08:00"}`)
	bad := write("bad.json", `{"id":"live-2","store_id":"sh-1","title":"Spring","url":"https://live.example.com/2",
	  "starts_at":"2027-01-10T20:00:00+08:00","ends_at":"2027-01-10T19:00:00+08:00"}`)
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"live", "schedule", "--brand", "acme", "--file", good}, 0, `"id": "live-1"`, ""},
		{[]string{"live", "schedule", "--brand", "acme", "--file", good}, 0, `"id": "live-1"`, "scheduled before; unchanged"},
		{[]string{"live", "schedule", "--brand", "acme", "--file", bad}, 2, "", "ends_at: must be after starts_at"},
		{[]string{"live", "schedule", "--file", good}, 2, "", "usage"},
		{[]string{"live", "funnel", "live-1", "--brand", "acme"}, 0, `"stores": []`, ""},
		{[]string{"live", "funnel", "live-9", "--brand", "acme"}, 1, "", `no live session "live-9"`},
		{[]string{"live", "edit", "live-1", "--brand", "acme", "--file", write("edit.json", `{"starts_at":"2027-01-11T20:00:00+08:00","ends_at":"2027-01-11T21:00:00+08:00"}`)},
			0, `"change": "rescheduled"`, ""},
		{[]string{"live", "edit", "live-1", "--brand", "acme", "--file", write("late.json", `{"ends_at":"2027-01-11T19:00:00+08:00"}`)}, 2, "", "ends_at: must be after starts_at"},
		{[]string{"live", "edit", "live-1", "--brand", "acme"}, 2, "", "usage"},
		{[]string{"live", "cancel", "live-1", "--brand", "acme"}, 0, `"change": "cancelled"`, ""},
		{[]string{"live", "cancel", "live-1", "--brand", "acme"}, 0, `"cancelled_at"`, "cancelled before; unchanged"},
		{[]string{"live", "edit", "live-1", "--brand", "acme", "--file", write("title.json", `{"title":"x"}`)}, 2, "", "is cancelled"},
		{[]string{"live", "cancel", "live-9", "--brand", "acme"}, 1, "", `no live session "live-9"`},
		{[]string{"live", "broadcast", "--brand", "acme"}, 2, "", "schedule"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("scrmgw %s: exit %d\nstdout %s\nstderr %s", strings.Join(tc.args, " "), code, out.String(), errb.String())
		}
	}
}
