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
		{"scale without a database", []string{"scale"}, 2, nil, "--pg is required"},
		{"scale, unknown size", []string{"scale", "--pg", "postgres://x", "--size", "huge"}, 2, nil, `want small, console or full, got "huge"`},
		{"scale, bulk over members", []string{"scale", "--pg", "postgres://x", "--members", "10", "--runs", "5", "--bulk", "11"}, 2, nil, "at most 10 bulk members"},
		{"scale, trigger without Redis", []string{"scale", "--pg", "postgres://x", "--trigger"}, 2, nil, "--redis with --trigger"},
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
