package workflows

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/templates"
)

// TestSameWordsAsTemplates holds a template file and a workflow file
// with the same problem side by side: both reach the user in the same
// words (package yamlcheck's), each at its own position and path.
func TestSameWordsAsTemplates(t *testing.T) {
	const locales = "locales:\n  zh:\n    default: 你好\n"
	const step = "  - id: welcome\n    send: welcome\n"
	tests := []struct {
		name     string
		template string
		workflow string
		// msg is the words both say, NOUN standing for template or
		// workflow.
		msg          string
		wantTemplate string
		wantWorkflow string
	}{
		{
			name:         "unknown field with a suggestion",
			template:     "descripton: 欢迎\n" + locales,
			workflow:     "descripton: 欢迎\n" + head + step,
			msg:          `unknown field "descripton" (did you mean "description"?)`,
			wantTemplate: `welcome.yaml:1:1: template welcome: descripton: unknown field "descripton" (did you mean "description"?)`,
			wantWorkflow: `recall.yaml:1:1: descripton: unknown field "descripton" (did you mean "description"?)`,
		},
		{
			name:         "a field given twice",
			template:     "description: a\ndescription: b\n" + locales,
			workflow:     "description: a\ndescription: b\n" + head + step,
			msg:          "description is given twice",
			wantTemplate: "welcome.yaml:2:1: template welcome: description: description is given twice",
			wantWorkflow: "recall.yaml:2:1: description: description is given twice",
		},
		{
			name:         "a mapping where a text goes",
			template:     "description: {zh: a}\n" + locales,
			workflow:     "description: {zh: a}\n" + head + step,
			msg:          "expected a text, got a mapping (key: value lines)",
			wantTemplate: "welcome.yaml:1:14: template welcome: description: expected a text, got a mapping (key: value lines)",
			wantWorkflow: "recall.yaml:1:14: description: expected a text, got a mapping (key: value lines)",
		},
		{
			name:         "bad YAML",
			template:     "description: a: b\n" + locales,
			workflow:     "description: a: b\n" + head + step,
			msg:          "bad YAML: mapping values are not allowed in this context",
			wantTemplate: "welcome.yaml:1:1: template welcome: bad YAML: mapping values are not allowed in this context",
			wantWorkflow: "recall.yaml:1:1: bad YAML: mapping values are not allowed in this context",
		},
		{
			name:         "an alias",
			template:     "description: &d a\nid: *d\n" + locales,
			workflow:     "description: &d a\n" + head + "  - id: *d\n    send: welcome\n",
			msg:          "anchors and aliases (*name) are not supported in NOUNs: write the value out",
			wantTemplate: "welcome.yaml:2:5: template welcome: anchors and aliases (*name) are not supported in templates: write the value out",
			wantWorkflow: "recall.yaml:9:9: anchors and aliases (*name) are not supported in workflows: write the value out",
		},
		{
			name:         "a second document",
			template:     locales + "---\n" + locales,
			workflow:     head + step + "---\n" + head + step,
			msg:          "bad YAML: a file holds one NOUN: remove the second document (---)",
			wantTemplate: "welcome.yaml:4:1: template welcome: bad YAML: a file holds one template: remove the second document (---)",
			wantWorkflow: "recall.yaml:10:1: bad YAML: a file holds one workflow: remove the second document (---)",
		},
		{
			name:         "a typo in a template text",
			template:     "locales:\n  zh:\n    default: 你好 {{.Member.Nmae}}\n",
			workflow:     head + "  - guide_task: 回访 {{.Member.Nmae}}\n    due_in: 2h\n",
			msg:          `.Member.Nmae: Member has no field Nmae (did you mean "Name"?)`,
			wantTemplate: `welcome.yaml:3:27: template welcome: zh.default: .Member.Nmae: Member has no field Nmae (did you mean "Name"?)`,
			wantWorkflow: `recall.yaml:8:30: steps[0].guide_task: .Member.Nmae: Member has no field Nmae (did you mean "Name"?)`,
		},
	}
	reg := testTemplates(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			terr := templates.NewRegistry().Add("welcome.yaml", []byte(tc.template))
			_, werr := Load("recall.yaml", []byte(tc.workflow), Options{Templates: reg})
			for _, c := range []struct {
				noun string
				err  error
				want string
			}{{"template", terr, tc.wantTemplate}, {"workflow", werr, tc.wantWorkflow}} {
				var l ErrorList
				if !errors.As(c.err, &l) {
					t.Fatalf("%s: error is %T, not an ErrorList: %v", c.noun, c.err, c.err)
				}
				var got []string
				for _, e := range l {
					got = append(got, e.Error())
				}
				if diff := cmp.Diff([]string{c.want}, got); diff != "" {
					t.Errorf("%s errors (-want +got):\n%s", c.noun, diff)
					continue
				}
				if msg := strings.ReplaceAll(tc.msg, "NOUN", c.noun); l[0].Msg != msg {
					t.Errorf("%s says %q, want %q", c.noun, l[0].Msg, msg)
				}
			}
		})
	}
}
