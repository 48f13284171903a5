package events

import "testing"

func TestMoney(t *testing.T) {
	for in, want := range map[string]Money{"0": 0, "1": 100, "199.5": 19950, "199.05": 19905, "0.01": 1, "-3.2": -320} {
		if got, err := ParseMoney(in); err != nil || got != want {
			t.Errorf("ParseMoney(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1.234", "abc", "1e3", ".5", "1.2.3", "+1"} {
		if _, err := ParseMoney(in); err == nil {
			t.Errorf("ParseMoney(%q) accepted", in)
		}
	}
	if s := Money(19905).String(); s != "199.05" {
		t.Errorf("String = %s", s)
	}
}
