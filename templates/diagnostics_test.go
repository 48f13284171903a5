package templates

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestYAMLProblemsInSharedWords checks that the problems of a template
// file's YAML reach the user in the words of package yamlcheck, the
// ones workflow files use too (workflows.TestSameWordsAsTemplates holds
// the two side by side).
func TestYAMLProblemsInSharedWords(t *testing.T) {
	const locales = "locales:\n  zh:\n    default: 你好 {{.Member.Name}}\n"
	tests := []struct {
		name string
		file string
		want string
	}{
		{"unknown field with a suggestion", "descripton: 欢迎\n" + locales,
			`welcome.yaml:1:1: template welcome: descripton: unknown field "descripton" (did you mean "description"?)`},
		{"a field given twice", "description: a\ndescription: b\n" + locales,
			`welcome.yaml:2:1: template welcome: description: description is given twice`},
		{"a mapping where a text goes", "description: {zh: a}\n" + locales,
			`welcome.yaml:1:14: template welcome: description: expected a text, got a mapping (key: value lines)`},
		{"an empty value", "description:\n" + locales,
			`welcome.yaml:1:13: template welcome: description: expected a text, got nothing`},
		{"bad YAML", "description: a: b\n" + locales,
			`welcome.yaml:1:1: template welcome: bad YAML: mapping values are not allowed in this context`},
		{"an alias", "description: &d a\nid: *d\n" + locales,
			`welcome.yaml:2:5: template welcome: anchors and aliases (*name) are not supported in templates: write the value out`},
		{"a second document", locales + "---\n" + locales,
			`welcome.yaml:4:1: template welcome: bad YAML: a file holds one template: remove the second document (---)`},
		{"a typo in the text", "locales:\n  zh:\n    default: 你好 {{.Member.Nmae}}\n",
			`welcome.yaml:3:27: template welcome: zh.default: .Member.Nmae: Member has no field Nmae (did you mean "Name"?)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := NewRegistry(WithChannels(testChannels)).Add("welcome.yaml", []byte(tc.file))
			var l ErrorList
			if !errors.As(err, &l) {
				t.Fatalf("error is %T, not an ErrorList: %v", err, err)
			}
			var got []string
			for _, e := range l {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff([]string{tc.want}, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
