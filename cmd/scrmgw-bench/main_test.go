package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string
		stderrIn string
	}{
		{"no command", nil, 2, nil, "Usage:"},
		{"unknown command", []string{"nearby"}, 2, nil, `unknown command "nearby"`},
		{"bad flag value", []string{"nearest", "--stores", "0"}, 2, nil, "must be positive"},
		{"stray argument", []string{"nearest", "x"}, 2, nil, `unexpected argument "x"`},
		{"nearest without PostGIS", []string{"nearest", "--stores", "3000", "--queries", "500", "--linear-queries", "50"}, 0,
			[]string{"geo.Index, in process", "linear scan, in process", "agrees with geo.Index on 50 of 50 lookups"}, "built geo.Index"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != tc.code {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			for _, want := range tc.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			if !strings.Contains(stderr.String(), tc.stderrIn) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderrIn, stderr.String())
			}
		})
	}
}
