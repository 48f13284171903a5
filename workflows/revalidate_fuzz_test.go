package workflows

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/scrmgw/scrmgw/templates/yamlcheck"
)

// FuzzLoadRevalidate checks that validation is a property of the
// workflow, not of the bytes it happened to be written in. For arbitrary
// files:
//
//   - errors point inside the file: every line is at most the file's
//     line count, counting \r\n, \n and a lone \r as YAML does (+1 for
//     an error at its end);
//   - a workflow Load accepts re-validates: loaded again under another
//     name it is accepted with the same version; loaded without the
//     template registry (structure only) it is accepted too, as template
//     checks only add errors; and re-emitted by a YAML encoder (what an
//     editor or `yq` would write back) it is accepted again, with the same
//     name, trigger, brand and steps (ids, kinds and transitions), when
//     the encoder kept the values (yaml.v3 does not always).
//
// Seeds: the shipped workflows and testdata/fuzz/FuzzLoadRevalidate.
func FuzzLoadRevalidate(f *testing.F) {
	reg := testTemplates(f)
	files, _ := filepath.Glob("../configs/workflows/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	opts := Options{Templates: reg}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := Load("fuzz.yaml", data, opts)
		if err != nil {
			var l ErrorList
			if !errors.As(err, &l) {
				t.Fatalf("error %T is not an ErrorList: %v", err, err)
			}
			// YAML breaks lines at \r\n, \n and a lone \r alike.
			lines := strings.Count(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") +
				strings.Count(strings.ReplaceAll(string(data), "\r\n", ""), "\r") + 1
			for _, e := range l {
				if e.Line > lines+1 {
					t.Fatalf("error at line %d of a %d-line file: %v", e.Line, lines, e)
				}
			}
			return
		}
		again, err := Load("other.yaml", data, opts)
		if err != nil || again.Version != w.Version || again.File != "other.yaml" {
			t.Fatalf("accepted as fuzz.yaml, not as other.yaml: %v", err)
		}
		if _, err := Load("fuzz.yaml", data, Options{}); err != nil {
			t.Fatalf("accepted with templates, refused without: %v", err)
		}

		doc, err := parse(data)
		if err != nil || doc == nil {
			t.Fatalf("Load accepted a file the parser refuses: %v", err)
		}
		out, err := marshal(doc)
		if err != nil {
			return // not every node the parser accepts can be encoded
		}
		// The encoder has bugs of its own (a literal block starting with
		// an empty line comes out unparsable): hold Load to the
		// re-encoded file only when it says the same thing.
		doc2, err := parse(out)
		if err != nil || doc2 == nil || !sameValues(doc, doc2) {
			return
		}
		w2, err := Load("fuzz.yaml", out, opts)
		if err != nil {
			t.Fatalf("accepted, then refused once re-encoded:\n%s\n---\n%s\n---\n%v", data, out, err)
		}
		if diff := cmp.Diff(shape(w), shape(w2)); diff != "" {
			t.Fatalf("re-encoding changed the workflow (-before +after):\n%s\n%s\n---\n%s", diff, data, out)
		}
	})
}

// parse returns the root node of a workflow file as Load reads it.
func parse(data []byte) (*yaml.Node, error) {
	c := yamlcheck.Checker{File: "fuzz.yaml", Noun: "workflow"}
	root := c.Parse(data)
	return root, c.Errs.Err()
}

// marshal encodes n, turning an encoder panic into an error.
func marshal(n *yaml.Node) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("encoding: %v", r)
		}
	}()
	return yaml.Marshal(n)
}

// sameValues reports whether two YAML trees hold the same values, styles
// and positions aside.
func sameValues(a, b *yaml.Node) bool {
	if a.Kind != b.Kind || a.ShortTag() != b.ShortTag() || a.Value != b.Value || len(a.Content) != len(b.Content) {
		return false
	}
	for i := range a.Content {
		if !sameValues(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}

// workflowShape is what must survive re-encoding.
type workflowShape struct {
	Name, Brand, Event string
	Schedule           bool
	Goals              int
	Steps              []string
}

func shape(w *Workflow) workflowShape {
	s := workflowShape{Name: w.Name, Brand: w.Entry.Brand, Event: w.Trigger.Event, Schedule: w.Trigger.Schedule != nil, Goals: len(w.Goals)}
	for _, st := range w.Steps {
		line := fmt.Sprintf("%s %s", st.ID, st.Kind)
		for _, tr := range st.Transitions() {
			line += fmt.Sprintf(" %s→%s", tr.Label, tr.To)
		}
		s.Steps = append(s.Steps, line)
	}
	return s
}
