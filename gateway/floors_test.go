package gateway_test

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/scrmgw/scrmgw/"

// TestFloors holds the code to the import rules of this package's doc
// (and the README's architecture section): a package imports only
// packages on floors below its own, or its own sub-packages; only the
// wiring imports configs and the channel packages (gateway/api's one
// exception named there); no production package imports test support;
// every package outside cmd, configs and deploy is on a floor.
func TestFloors(t *testing.T) {
	floors := docFloors(t)
	if len(floors) < 8 {
		t.Fatalf("read %d floors from doc.go; the floor list's format changed?", len(floors))
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \",\"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	floorOf := func(pkg string) (root string, floor int) {
		for name, f := range floors {
			if (pkg == name || strings.HasPrefix(pkg, name+"/")) && len(name) > len(root) {
				root, floor = name, f
			}
		}
		return root, floor
	}
	// configs, and every channel package (adapters/<kind>), whichever
	// channels there are.
	wiringOnly := []string{"configs"}
	channelPkg := regexp.MustCompile(`^adapters/[^/]+`)
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, "|")
		pkg = strings.TrimPrefix(pkg, module)
		if testSupport(pkg) || strings.HasPrefix(pkg, "cmd/scrmgw-") {
			continue // test support, and the load and bench harnesses, which drive the fakes
		}
		root, floor := floorOf(pkg)
		if root == "" && !strings.HasPrefix(pkg, "cmd/") && !strings.HasPrefix(pkg, "configs") && pkg != "gateway" && pkg != "deploy" {
			t.Errorf("%s is on no floor of doc.go: add it to the floor list (and the README's architecture section)", pkg)
		}
		for _, imp := range strings.Split(imports, ",") {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			imp = strings.TrimPrefix(imp, module)
			if testSupport(imp) {
				t.Errorf("%s imports %s, which is test support", pkg, imp)
				continue
			}
			if root == "" || strings.HasPrefix(pkg, "cmd/") || strings.HasPrefix(pkg, "configs") {
				continue // not on a floor: cmd's wiring and tools, configs
			}
			only := wiringOnly
			if ch := channelPkg.FindString(imp); ch != "" {
				only = append(only, ch)
			}
			for _, w := range only {
				if (imp == w || strings.HasPrefix(imp, w+"/")) && !strings.HasPrefix(pkg, w) &&
					!(pkg == "gateway/api" && imp == "adapters/webhook") {
					t.Errorf("%s imports %s: only the wiring (cmd/scrmgw/internal/app) may", pkg, imp)
				}
			}
			iroot, ifloor := floorOf(imp)
			if iroot == "" || iroot == root {
				continue
			}
			checked++
			if ifloor <= floor {
				t.Errorf("%s (floor %d) imports %s (floor %d): a package imports only floors below its own", pkg, floor, imp, ifloor)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("checked only %d imports between floors; go list's output changed?", checked)
	}
}

// testSupport reports whether pkg exists only for tests (fakes, test rigs).
func testSupport(pkg string) bool {
	last := pkg[strings.LastIndex(pkg, "/")+1:]
	return strings.HasSuffix(last, "test") || strings.HasSuffix(last, "fake")
}

// docFloors reads the floor list of doc.go: "//\tN  a, b (c), d".
func docFloors(t *testing.T) map[string]int {
	f, err := os.Open("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^//\t(\d+)  (.+)$`)
	paren := regexp.MustCompile(`\(([^)]*)\)`)
	floors := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		// A parenthesis either names sub-packages (store (store/geo)) or
		// says what a package is; only package paths count.
		text := paren.ReplaceAllStringFunc(m[2], func(s string) string {
			if strings.Contains(s, "/") && !strings.Contains(s, " ") {
				return ", " + strings.Trim(s, "()")
			}
			return ""
		})
		for _, name := range strings.Split(text, ",") {
			if name = strings.TrimSpace(name); name != "" {
				floors[name] = n
			}
		}
	}
	return floors
}
