package workflows

import "github.com/scrmgw/scrmgw/templates/yamlcheck"

// Pos is a position in a workflow file: 1-based line and column, the
// column counting characters.
type Pos struct {
	Line   int
	Column int
}

// Error is one problem of a workflow file, at the position of the value
// (or key) at fault; it formats as "file:line:col: path: message", the
// form editors and CI logs link to. Path locates the value in the
// workflow: steps[1].channel, indexes counting from 0. Templates report
// with the same type.
type Error = yamlcheck.Error

// ErrorList is every problem found in a workflow file, in position
// order. Load returns one whenever it finds any problem, so a marketer
// fixes them all in one pass.
type ErrorList = yamlcheck.ErrorList
