package workflows

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/templates/yamlcheck"
)

// Env is what expressions see: filters, if and switch, wait until and the
// filters of goals and wait_for. Names are snake_case: member.last_purchase_at,
// order.items, event.tag. The engine fills it; a part that does not apply
// (no order for member.joined) is its zero value.
type Env struct {
	// Event is the event being matched: the trigger's for a trigger
	// filter and for steps, the awaited one for goal and wait_for filters.
	// A schedule trigger's event has type "schedule".
	Event Event `expr:"event"`
	// Member is the member, as they are now.
	Member Member `expr:"member"`
	// Order is the event's order for purchase events, else the member's
	// last order.
	Order events.Order `expr:"order"`
	// Run is the workflow run the expression is evaluated in; zero for a
	// trigger filter.
	Run Run `expr:"run"`
	// Live is the live session of a live.* event: the trigger's for
	// steps (a run started by live.scheduled), the event's own for
	// filters of live events; zero otherwise.
	Live Live `expr:"live"`
	// Now is the current time (the virtual clock in a dry run).
	Now time.Time `expr:"now"`
}

// Event is an event of the event log, as expressions see it.
type Event struct {
	Type string    `expr:"type"`
	At   time.Time `expr:"at"`
	// Channel is the channel a message or contact event came on.
	Channel string `expr:"channel"`
	// StoreID is the store of a purchase or a visit.
	StoreID string `expr:"store_id"`
	// Tag is the tag of member.tagged.
	Tag string `expr:"tag"`
	// Text is the text of message.received.
	Text string `expr:"text"`
	// Attrs holds the event's other fields: event.attrs.state.
	Attrs map[string]string `expr:"attrs"`
}

// Member is a member with their standing in the workflow's brand.
type Member struct {
	ID     int64    `expr:"id"`
	Name   string   `expr:"name"`
	Level  string   `expr:"level"`
	Points int64    `expr:"points"`
	Tags   []string `expr:"tags"`
	// Channel is the channel the member is reached on: wecom, dingtalk.
	Channel  string    `expr:"channel"`
	JoinedAt time.Time `expr:"joined_at"`
	// LastPurchaseAt is zero when the member never bought.
	LastPurchaseAt time.Time `expr:"last_purchase_at"`
	// Orders counts the member's orders with the brand.
	Orders int `expr:"orders"`
	// TotalSpent is in yuan.
	TotalSpent float64 `expr:"total_spent"`
	GuideID    string  `expr:"guide_id"`
	StoreID    string  `expr:"store_id"`
	// TimeZone is the member's IANA zone, when known.
	TimeZone string `expr:"time_zone"`
}

// Live is a store's live session, as expressions see it.
type Live struct {
	// ID is the session's id as the brand scheduled it.
	ID    string `expr:"id" json:"id"`
	Title string `expr:"title" json:"title"`
	URL   string `expr:"url" json:"url"`
	// StoreID is the session's store; empty for a brand's session.
	StoreID  string    `expr:"store_id" json:"store_id,omitempty"`
	StartsAt time.Time `expr:"starts_at" json:"starts_at"`
	EndsAt   time.Time `expr:"ends_at" json:"ends_at"`
}

// Run is a workflow run, as expressions see it.
type Run struct {
	StartedAt time.Time `expr:"started_at"`
	// Step is the id of the step being evaluated.
	Step string `expr:"step"`
	// Sent counts the messages the run has sent.
	Sent int `expr:"sent"`
}

// exprFuncs are the functions expressions can call besides expr's
// builtins (with now disabled: now is Env.Now, the run's clock).
var exprFuncs = []expr.Option{
	durationFunc("days", Day),
	durationFunc("weeks", Week),
	durationFunc("hours", time.Hour),
	durationFunc("minutes", time.Minute),
}

var exprFuncNames = []string{"days", "weeks", "hours", "minutes"}

func durationFunc(name string, unit time.Duration) expr.Option {
	return expr.Function(name, func(params ...any) (any, error) {
		switch n := params[0].(type) {
		case int:
			return time.Duration(n) * unit, nil
		case float64:
			return time.Duration(n * float64(unit)), nil
		}
		return nil, fmt.Errorf("%s needs a number, got %T", name, params[0])
	}, new(func(int) time.Duration), new(func(float64) time.Duration))
}

// Expr is a compiled expression. It is safe for concurrent use.
type Expr struct {
	// Source is the expression as written.
	Source string
	// Pos is where it starts in the file.
	Pos     Pos
	program *vm.Program
}

// Eval evaluates the expression in env.
func (e *Expr) Eval(env *Env) (any, error) {
	v, err := expr.Run(e.program, env)
	if err != nil {
		return nil, fmt.Errorf("evaluating %q: %w", e.Source, err)
	}
	return v, nil
}

// Bool evaluates a condition. A nil *Expr (no filter) is true.
func (e *Expr) Bool(env *Env) (bool, error) {
	if e == nil {
		return true, nil
	}
	v, err := e.Eval(env)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("evaluating %q: got %T, not true or false", e.Source, v)
	}
	return b, nil
}

// Time evaluates a time expression, such as a wait's until.
func (e *Expr) Time(env *Env) (time.Time, error) {
	v, err := e.Eval(env)
	if err != nil {
		return time.Time{}, err
	}
	t, ok := v.(time.Time)
	if !ok {
		return time.Time{}, fmt.Errorf("evaluating %q: got %T, not a time", e.Source, v)
	}
	return t, nil
}

// result is the kind of value an expression must give.
type result int

const (
	resultBool  result = iota // a condition
	resultTime                // a point in time
	resultValue               // a text, number or true/false to switch on
)

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
)

// compileExpr compiles src against Env and checks the type of its result.
// The error's position is inside src: a 1-based line and a 0-based column.
func compileExpr(src string, want result) (*vm.Program, *file.Error) {
	opts := append([]expr.Option{expr.Env(Env{}), expr.DisableBuiltin("now")}, exprFuncs...)
	p, err := expr.Compile(src, opts...)
	if err != nil {
		if fe, ok := err.(*file.Error); ok {
			fe.Message = exprMessage(fe.Message)
			return nil, fe
		}
		return nil, &file.Error{Line: 1, Message: exprMessage(err.Error())}
	}
	t := p.Node().Type()
	if t == nil || t.Kind() == reflect.Interface {
		return p, nil // known only when it runs
	}
	var msg string
	switch want {
	case resultBool:
		if t.Kind() != reflect.Bool {
			msg = fmt.Sprintf("this must be a condition (true or false), but it gives %s", describe(t))
		}
	case resultTime:
		if t != timeType {
			msg = fmt.Sprintf("this must give a time (e.g. order.purchased_at + days(30)), but it gives %s", describe(t))
		}
	case resultValue:
		switch t.Kind() {
		case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		default:
			msg = fmt.Sprintf("switch needs a text, a number or true/false to compare with its cases, but this gives %s", describe(t))
		}
	}
	if msg != "" {
		return nil, &file.Error{Line: 1, Message: msg}
	}
	return p, nil
}

// describe names a type the way a marketer thinks of it
// (yamlcheck.DescribeType), the environment's records as expressions reach
// them.
func describe(t reflect.Type) string {
	return yamlcheck.DescribeType(t, func(t reflect.Type) (string, bool) {
		if t.Kind() != reflect.Struct || t == timeType {
			return "", false
		}
		if n, ok := envTypeNames[t]; ok {
			return "a whole " + n, true
		}
		return "a record", true
	})
}

// envTypeNames names Env's struct types the way expressions reach them.
var envTypeNames = map[reflect.Type]string{
	reflect.TypeFor[Event]():        "event",
	reflect.TypeFor[Member]():       "member",
	reflect.TypeFor[events.Order](): "order",
	reflect.TypeFor[events.Item]():  "order item",
	reflect.TypeFor[Run]():          "run",
	reflect.TypeFor[Live]():         "live session",
	reflect.TypeFor[Env]():          "environment",
}

var (
	noFieldRE     = regexp.MustCompile(`^type ([\w.]+) has no field (\w+)$`)
	unknownNameRE = regexp.MustCompile(`^unknown name (\w+)$`)
	unknownFuncRE = regexp.MustCompile(`^unknown func (\w+)$`)
)

// exprMessage rewords expr's compile errors for marketers, with "did you
// mean" for misspelt names.
func exprMessage(msg string) string {
	if m := noFieldRE.FindStringSubmatch(msg); m != nil {
		for t, name := range envTypeNames {
			if t.String() == m[1] {
				fields := exprFields(t)
				if s := yamlcheck.DidYouMean(m[2], fields); s != "" {
					return fmt.Sprintf("%s has no field %s%s", name, m[2], s)
				}
				return fmt.Sprintf("%s has no field %s; it has %s", name, m[2], strings.Join(fields, ", "))
			}
		}
	}
	if m := unknownNameRE.FindStringSubmatch(msg); m != nil {
		names := append(exprFields(reflect.TypeFor[Env]()), exprFuncNames...)
		if s := yamlcheck.DidYouMean(m[1], names); s != "" {
			return fmt.Sprintf("unknown name %s%s", m[1], s)
		}
		return fmt.Sprintf("unknown name %s; expressions start from %s", m[1], yamlcheck.Enumerate(exprFields(reflect.TypeFor[Env]()), "or"))
	}
	if m := unknownFuncRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("unknown function %s%s", m[1], yamlcheck.DidYouMean(m[1], exprFuncNames))
	}
	if m := mismatchRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s cannot compare %s with %s", m[1], typeWord(m[2]), typeWord(m[3]))
	}
	switch msg {
	case "time.Time is not callable":
		return "a time is not a function: write now, not now()"
	case "unexpected token EOF":
		return "the expression ends too early"
	}
	return strings.ReplaceAll(msg, "workflows.", "")
}

var mismatchRE = regexp.MustCompile(`^invalid operation: (\S+) \(mismatched types ([\w.\[\]]+) and ([\w.\[\]]+)\)$`)

// typeWord names a Go type from an expr message for marketers.
func typeWord(t string) string {
	switch t {
	case "string":
		return "text"
	case "bool":
		return "true or false"
	case "time.Time":
		return "a time"
	case "time.Duration":
		return "a duration"
	case "int", "int64", "int32", "float64", "float32", "uint", "uint64":
		return "a number"
	}
	if strings.HasPrefix(t, "[]") {
		return "a list"
	}
	return t
}

// exprFields lists the expression names of a struct's fields.
func exprFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if tag := f.Tag.Get("expr"); tag != "" {
			names = append(names, tag)
		}
	}
	return names
}
