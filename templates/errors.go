package templates

import (
	"errors"

	"github.com/scrmgw/scrmgw/templates/yamlcheck"
)

// Sentinel errors of Render. Callers use errors.Is.
var (
	// ErrUnknownTemplate means no template has the requested id.
	ErrUnknownTemplate = errors.New("unknown template")
	// ErrNoVariant means the template has neither a variant for the
	// requested channel nor a default one.
	ErrNoVariant = errors.New("no variant for channel")
)

// Error is one problem found in a template, at a position in its file;
// it formats as "file:line:col: template id: path: message". File is
// empty for a text checked by ParseText, whose Line and Column count
// inside the text; Subject is "template <id>" when the id is known; Path
// locates the value in the file: zh.wecom.title. Workflows report with
// the same type.
type Error = yamlcheck.Error

// ErrorList is every problem found while loading templates, in file and
// position order. It is returned as an error only when it is not empty.
type ErrorList = yamlcheck.ErrorList
