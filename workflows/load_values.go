package workflows

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scrmgw/scrmgw/templates/yamlcheck"
)

// matching returns a scalar that must match re, reporting one that does
// not as a bad what ("store id"), with use saying what it may hold. The
// value is returned either way, so later checks still see it.
func (d *decoder) matching(n *yaml.Node, path, what string, re *regexp.Regexp, use string) (string, bool) {
	s, ok := d.Str(n, path, "a "+what)
	if ok && !re.MatchString(s) {
		d.Errorf(n, path, "bad %s %q: use %s", what, s, use)
	}
	return s, ok
}

// names returns a scalar or a list of scalars.
func (d *decoder) names(n *yaml.Node, path, what string, re *regexp.Regexp) []string {
	var nodes []*yaml.Node
	switch n.Kind {
	case yaml.SequenceNode:
		nodes = n.Content
	default:
		nodes = []*yaml.Node{n}
	}
	var out []string
	for i, c := range nodes {
		p := path
		if n.Kind == yaml.SequenceNode {
			p = fmt.Sprintf("%s[%d]", path, i)
		}
		s, ok := d.Str(c, p, what)
		if !ok {
			continue
		}
		if re != nil && !re.MatchString(s) {
			d.Errorf(c, p, "bad %s %q: use letters, digits, _ and - only", what, s)
			continue
		}
		out = append(out, s)
	}
	if len(out) == 0 && n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		d.Errorf(n, path, "expected at least one %s, got an empty list", what)
	}
	return out
}

func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := d.Str(n, path, "a duration such as 3d, 72h or 1h30m")
	if !ok {
		return 0, false
	}
	v, err := ParseDuration(strings.TrimSpace(s))
	if err != nil {
		d.Errorf(n, path, "%v", err)
		return 0, false
	}
	if v == 0 {
		d.Errorf(n, path, "duration %q is zero: it must be longer", s)
		return 0, false
	}
	return v, true
}

// expr compiles an expression, reporting errors at their position inside
// the YAML value when it can be known.
func (d *decoder) expr(n *yaml.Node, path string, want result) *Expr {
	src, ok := d.Str(n, path, "an expression")
	if !ok {
		return nil
	}
	if strings.TrimSpace(src) == "" {
		d.Errorf(n, path, "empty expression")
		return nil
	}
	p, ferr := compileExpr(src, want)
	if ferr != nil {
		d.ErrorIn(n, max(ferr.Line, 1), ferr.Column+1, path, "%s", ferr.Message)
		return nil
	}
	return &Expr{Source: src, Pos: Pos{n.Line, n.Column}, program: p}
}

func (d *decoder) zone(n *yaml.Node, path string) (*time.Location, string, bool) {
	s, ok := d.Str(n, path, "a time zone such as Asia/Shanghai")
	if !ok {
		return nil, "", false
	}
	loc, err := loadZone(s)
	if err != nil {
		d.Errorf(n, path, "%v", err)
		return nil, "", false
	}
	return loc, s, true
}

func (d *decoder) event(n *yaml.Node, path string, events []string) (string, bool) {
	s, ok := d.Str(n, path, "an event such as purchase.completed")
	if !ok {
		return "", false
	}
	if !slices.Contains(events, s) && !isCustomEvent(s) {
		if slices.Contains(allEvents, s) {
			d.Errorf(n, path, "%s cannot start a run; triggers use %s", s, yamlcheck.Enumerate(events, "or"))
		} else if sug := yamlcheck.DidYouMean(s, events); sug != "" {
			d.Errorf(n, path, "unknown event %q%s", s, sug)
		} else {
			d.Errorf(n, path, "unknown event %q; events are %s, or x.<name> for a brand's own", s, yamlcheck.Enumerate(events, "and"))
		}
		return "", false
	}
	return s, true
}
