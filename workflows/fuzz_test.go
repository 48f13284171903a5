package workflows

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds Load arbitrary files. Load must never panic; an error
// must be an ErrorList whose every entry has the file, a position and a
// message; the same input must give the same result; and a workflow it
// accepts must be executable: every transition names a step or End, every
// step has its kind's fields, and the version is the content hash.
// Seeds: the shipped workflows and testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
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
		_, err2 := Load("fuzz.yaml", data, opts)
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("two loads differ:\n%v\n---\n%v", err, err2)
		}
		if err != nil {
			var l ErrorList
			if !errors.As(err, &l) || len(l) == 0 {
				t.Fatalf("error %T is not a non-empty ErrorList: %v", err, err)
			}
			for _, e := range l {
				if e.File != "fuzz.yaml" || e.Line < 1 || e.Column < 1 || e.Msg == "" {
					t.Fatalf("error without a position or message: %#v", e)
				}
			}
			if w != nil {
				t.Fatal("a workflow returned with errors")
			}
			return
		}
		if w.Version != VersionOf(data) || w.Name == "" || w.Entry.Brand == "" || len(w.Steps) == 0 {
			t.Fatalf("incomplete workflow: %+v", w)
		}
		if _, ok := w.Step(w.Start()); !ok {
			t.Fatal("the first step is not found by id")
		}
		for _, s := range w.Steps {
			if !kindSet(s) {
				t.Fatalf("step %s of kind %q lacks its fields", s.ID, s.Kind)
			}
			for _, tr := range s.Transitions() {
				if tr.To == End {
					continue
				}
				if _, ok := w.Step(tr.To); !ok {
					t.Fatalf("step %s: %s leads to unknown step %q", s.ID, tr.Label, tr.To)
				}
			}
		}
	})
}

// kindSet reports whether the field of the step's kind is set.
func kindSet(s *Step) bool {
	switch s.Kind {
	case KindAssignGuide:
		return s.AssignGuide != nil
	case KindSend:
		return s.Send != nil && s.Send.Template != ""
	case KindGuideTask:
		return s.GuideTask != nil && s.GuideTask.Title != nil
	case KindWait:
		return s.Wait != nil && (s.Wait.For > 0) != (s.Wait.Until != nil)
	case KindWaitFor:
		return s.WaitFor != nil && s.WaitFor.Timeout > 0 && s.WaitFor.Event != ""
	case KindIf:
		return s.If != nil && s.If.Cond != nil
	case KindSwitch:
		return s.Switch != nil && s.Switch.Value != nil && len(s.Switch.Cases) > 0
	case KindTag, KindUntag:
		return s.Tag != nil && len(s.Tag.Tags) > 0
	case KindAwardPoints:
		return s.AwardPoints != nil && s.AwardPoints.Points > 0
	case KindWebhook:
		return s.Webhook != nil && s.Webhook.URL != ""
	case KindEnd:
		return s.End != nil
	}
	return false
}
