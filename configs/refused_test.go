package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRefusedLimitKeys: the refusal limit's keys load from YAML and the
// environment, an empty list trusts no proxy, and bad values name the key.
func TestRefusedLimitKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scrmgw.yaml")
	yaml := "http:\n  refused_rate: 2.5\n  refused_burst: 7\n  trusted_proxies: []\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.RefusedRate != 2.5 || cfg.HTTP.RefusedBurst != 7 || len(cfg.HTTP.TrustedProxies) != 0 {
		t.Errorf("loaded %+v", cfg.HTTP)
	}
	cfg, err = Load("", []string{"SCRMGW_HTTP_REFUSED_RATE=0", "SCRMGW_HTTP_TRUSTED_PROXIES=10.1.0.0/16, 192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"10.1.0.0/16", "192.0.2.7"}, cfg.HTTP.TrustedProxies); cfg.HTTP.RefusedRate != 0 || diff != "" {
		t.Errorf("from the environment: rate %v, proxies (-want +got):\n%s", cfg.HTTP.RefusedRate, diff)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"http:\n  refused_rate: -1\n", "http.refused_rate: want 0 (off) or a positive number"},
		{"http:\n  refused_burst: 0\n", "http.refused_burst: must be at least 1"},
		{"http:\n  trusted_proxies: [10.0.0.0/8, proxy.internal]\n", `http.trusted_proxies[1]: want an IP or a CIDR such as 10.0.0.0/8, got "proxy.internal"`},
	} {
		if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%q) = %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
