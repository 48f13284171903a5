package workflows

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/templates"
)

var yamlBlockRE = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocExamples loads every complete workflow (a block starting with
// name:) and template (starting with id:) of docs/workflows.md, and
// compiles the expressions of its expression examples, so the reference
// never shows something that does not load.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/workflows.md")
	if err != nil {
		t.Fatal(err)
	}
	reg := testTemplates(t)
	var workflows, tmpls, exprs int
	for _, m := range yamlBlockRE.FindAllStringSubmatch(string(doc), -1) {
		block := m[1]
		switch {
		case strings.HasPrefix(block, "name:"):
			workflows++
			if _, err := Load("docs.yaml", []byte(block), Options{Templates: reg}); err != nil {
				t.Errorf("workflow example:\n%s\n%v", block, err)
			}
		case strings.HasPrefix(block, "id:"):
			tmpls++
			if err := templates.NewRegistry().Add("docs.yaml", []byte(block)); err != nil {
				t.Errorf("template example:\n%s\n%v", block, err)
			}
		default:
			for _, line := range strings.Split(block, "\n") {
				k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
				if !ok || strings.HasPrefix(k, "#") {
					continue
				}
				v, _, _ = strings.Cut(v, "  #")
				want, ok := map[string]result{"filter": resultBool, "if": resultBool, "until": resultTime}[k]
				if !ok {
					continue
				}
				exprs++
				if _, err := compileExpr(strings.TrimSpace(v), want); err != nil {
					t.Errorf("expression example %q: %v", v, err.Message)
				}
			}
		}
	}
	if workflows == 0 || tmpls == 0 || exprs < 5 {
		t.Errorf("found %d workflow, %d template and %d expression examples", workflows, tmpls, exprs)
	}
}
