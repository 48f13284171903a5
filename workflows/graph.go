package workflows

import (
	"fmt"
	"slices"

	"github.com/scrmgw/scrmgw/templates/yamlcheck"
)

// graph checks the workflow's steps as a graph: every step is reachable
// from the first, and every loop waits, so a run can neither hide steps
// nor spin forever. It runs once transitions are resolved.
func (d *decoder) graph(w *Workflow) {
	if len(w.Steps) == 0 || slices.ContainsFunc(w.Steps, func(s *Step) bool { return s.Kind == "" }) {
		return // a step could not be decoded: its transitions are unknown
	}
	index := make(map[string]int, len(w.Steps))
	for i, s := range w.Steps {
		index[s.ID] = i
	}
	edges := make([][]int, len(w.Steps))
	for i, s := range w.Steps {
		for _, t := range s.Transitions() {
			if j, ok := index[t.To]; ok && !slices.Contains(edges[i], j) {
				edges[i] = append(edges[i], j)
			}
		}
	}

	// Reachability, unless a transition names an unknown step: the step
	// it meant would be reported too.
	if !d.unknownStep {
		seen := make([]bool, len(w.Steps))
		stack := []int{0}
		seen[0] = true
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, j := range edges[i] {
				if !seen[j] {
					seen[j] = true
					stack = append(stack, j)
				}
			}
		}
		for i, s := range w.Steps {
			if !seen[i] {
				d.ErrorAt(s.Pos.Line, s.Pos.Column, fmt.Sprintf("steps[%d]", i), "step %q is unreachable: no step leads to it (check the next, then, else and other transitions before it)", s.ID)
			}
		}
	}

	// Loops that never wait.
	for _, scc := range components(edges) {
		if len(scc) == 1 && !slices.Contains(edges[scc[0]], scc[0]) {
			continue
		}
		waits := slices.ContainsFunc(scc, func(i int) bool {
			k := w.Steps[i].Kind
			return k == KindWait || k == KindWaitFor
		})
		if waits {
			continue
		}
		slices.Sort(scc)
		ids := make([]string, len(scc))
		for i, j := range scc {
			ids[i] = fmt.Sprintf("%q", w.Steps[j].ID)
		}
		first := w.Steps[scc[0]]
		what := "step " + ids[0] + " leads back to itself"
		if len(ids) > 1 {
			what = "steps " + yamlcheck.Enumerate(ids, "and") + " lead back to each other"
		}
		d.ErrorAt(first.Pos.Line, first.Pos.Column, fmt.Sprintf("steps[%d]", scc[0]), "%s without a wait: a run would loop forever; put a wait or wait_for in the loop", what)
	}
}

// components returns the strongly connected components of a graph
// (Tarjan's algorithm, iterative so a long workflow cannot exhaust the
// stack).
func components(edges [][]int) [][]int {
	n := len(edges)
	index := make([]int, n)
	low := make([]int, n)
	on := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var (
		stack  []int
		result [][]int
		next   int
	)
	type frame struct{ v, e int }
	for root := range n {
		if index[root] >= 0 {
			continue
		}
		call := []frame{{root, 0}}
		index[root], low[root] = next, next
		next++
		stack = append(stack, root)
		on[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			if f.e < len(edges[f.v]) {
				w := edges[f.v][f.e]
				f.e++
				if index[w] < 0 {
					index[w], low[w] = next, next
					next++
					stack = append(stack, w)
					on[w] = true
					call = append(call, frame{w, 0})
				} else if on[w] {
					low[f.v] = min(low[f.v], index[w])
				}
				continue
			}
			v := f.v
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].v
				low[p] = min(low[p], low[v])
			}
			if low[v] == index[v] {
				var scc []int
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					on[w] = false
					scc = append(scc, w)
					if w == v {
						break
					}
				}
				result = append(result, scc)
			}
		}
	}
	return result
}
