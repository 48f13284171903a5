package templates

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/scrmgw/scrmgw/templates/yamlcheck"
)

var (
	dataType     = reflect.TypeFor[Data]()
	timeType     = reflect.TypeFor[time.Time]()
	moneyType    = reflect.TypeFor[Money]()
	stringType   = reflect.TypeFor[string]()
	boolType     = reflect.TypeFor[bool]()
	intType      = reflect.TypeFor[int]()
	stringerType = reflect.TypeFor[fmt.Stringer]()
	errorType    = reflect.TypeFor[error]()
)

// numberConst stands for the type of a number written in the template
// ({{truncate 20 .Store.Address}}): text/template converts it to whatever
// numeric type the function takes.
type numberConst struct{}

var numberConstType = reflect.TypeFor[numberConst]()

// checker walks a parsed template and checks every field, method,
// variable and function use against the Go types it will be executed
// with: Data at the root, the element type inside range, the pipeline's
// type inside with. A nil reflect.Type means "not known statically" (the
// result of default or index into an interface) and is not checked
// further; everything the marketer's data structs lead to is.
type checker struct {
	text string
	errs []textError
	vars []variable
	// uses records the Data fields the template reads ($.Coupon, .Order).
	uses map[string]bool
}

type variable struct {
	name string
	typ  reflect.Type
}

// textError is a problem at a byte offset of the template text.
type textError struct {
	pos int
	msg string
}

func (c *checker) errorf(n parse.Node, format string, args ...any) {
	c.errs = append(c.errs, textError{pos: int(n.Position()), msg: fmt.Sprintf(format, args...)})
}

// identErrorf reports an error at the i-th name of a field chain such as
// .Order.PurchasedAt.Fromat, whose node position is not that name's.
func (c *checker) identErrorf(n parse.Node, idents []string, i int, format string, args ...any) {
	src := n.String()
	pos := int(n.Position())
	start := strings.LastIndex(c.text[:min(len(c.text), pos+len(src))], src)
	if start < 0 {
		c.errorf(n, format, args...)
		return
	}
	off := start + len(src) - len(strings.Join(idents[i:], "."))
	c.errs = append(c.errs, textError{pos: off, msg: fmt.Sprintf(format, args...)})
}

// check walks the tree of t, executed with *Data.
func check(t *template.Template, text string) *checker {
	c := &checker{text: text, uses: make(map[string]bool)}
	c.vars = []variable{{name: "$", typ: dataType}}
	c.list(t.Tree.Root, dataType)
	return c
}

func (c *checker) list(l *parse.ListNode, dot reflect.Type) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		c.node(n, dot)
	}
}

func (c *checker) node(n parse.Node, dot reflect.Type) {
	switch n := n.(type) {
	case *parse.ActionNode:
		t := c.pipe(n.Pipe, dot)
		if len(n.Pipe.Decl) == 0 {
			c.printable(n, t)
		}
	case *parse.IfNode:
		mark := len(c.vars)
		c.pipe(n.Pipe, dot)
		c.list(n.List, dot)
		c.list(n.ElseList, dot)
		c.vars = c.vars[:mark]
	case *parse.WithNode:
		mark := len(c.vars)
		t := c.pipe(n.Pipe, dot)
		c.list(n.List, t)
		c.list(n.ElseList, dot)
		c.vars = c.vars[:mark]
	case *parse.RangeNode:
		mark := len(c.vars)
		c.rangeNode(n, dot)
		c.vars = c.vars[:mark]
	case *parse.TemplateNode:
		c.errorf(n, "{{template}} and {{block}} are not supported in message templates: write the text out")
	}
}

// printable reports actions whose value would print as Go debug output.
func (c *checker) printable(n *parse.ActionNode, t reflect.Type) {
	if t == nil {
		return
	}
	b := deref(t)
	if b != timeType && (t.Implements(stringerType) || t.Implements(errorType)) {
		return
	}
	switch {
	case b == timeType:
		c.errorf(n, "%s prints a raw time: format it with date, e.g. {{date \"2006-01-02\" %s}}", n, pipeSource(n.Pipe))
	case b.Kind() == reflect.Struct:
		c.errorf(n, "%s prints a whole %s: pick one of its fields (%s)", n, typeName(b), strings.Join(memberNames(b), ", "))
	case b.Kind() == reflect.Slice || b.Kind() == reflect.Array || b.Kind() == reflect.Map:
		c.errorf(n, "%s prints a whole list: go through it with range, or join a list of texts with join", n)
	}
}

func pipeSource(p *parse.PipeNode) string {
	s := p.String()
	if len(p.Cmds) > 1 {
		s = "(" + s + ")"
	}
	return s
}

// pipe checks a pipeline and declares its variables; it returns the
// pipeline's type.
func (c *checker) pipe(p *parse.PipeNode, dot reflect.Type) reflect.Type {
	t := c.pipeValue(p, dot)
	c.declare(p, t)
	return t
}

func (c *checker) pipeValue(p *parse.PipeNode, dot reflect.Type) reflect.Type {
	if p == nil {
		return nil
	}
	var t reflect.Type
	for i, cmd := range p.Cmds {
		t = c.command(cmd, dot, t, i > 0)
	}
	return t
}

func (c *checker) declare(p *parse.PipeNode, t reflect.Type, types ...reflect.Type) {
	if t == numberConstType {
		t = intType
	}
	for i, v := range p.Decl {
		vt := t
		if types != nil {
			vt = types[i]
		}
		name := v.Ident[0]
		if p.IsAssign {
			for j := len(c.vars) - 1; j >= 0; j-- {
				if c.vars[j].name == name {
					if c.vars[j].typ != vt {
						// Reassigned with another type: stop checking it.
						c.vars[j].typ = nil
					}
					break
				}
			}
			continue
		}
		c.vars = append(c.vars, variable{name: name, typ: vt})
	}
}

func (c *checker) rangeNode(n *parse.RangeNode, dot reflect.Type) {
	t := c.pipeValue(n.Pipe, dot)
	var key, elem reflect.Type
	if t == numberConstType {
		t = intType
	}
	if t != nil {
		b := t
		for b.Kind() == reflect.Pointer {
			b = b.Elem()
		}
		switch b.Kind() {
		case reflect.Slice, reflect.Array:
			key, elem = intType, b.Elem()
		case reflect.Map:
			key, elem = b.Key(), b.Elem()
		case reflect.Chan:
			elem = b.Elem()
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			elem = b
		case reflect.Func, reflect.Interface:
		default:
			c.errorf(n, "cannot range over %s, which is %s: range goes through a list such as .Order.Items", n.Pipe, describe(t))
		}
	}
	switch len(n.Pipe.Decl) {
	case 1:
		c.declare(n.Pipe, nil, elem)
	case 2:
		c.declare(n.Pipe, nil, key, elem)
	}
	c.list(n.List, elem)
	c.list(n.ElseList, dot)
}

// command checks one command of a pipeline. final is the type of the
// previous command's result, passed as the last argument when hasFinal.
func (c *checker) command(cmd *parse.CommandNode, dot, final reflect.Type, hasFinal bool) reflect.Type {
	args := cmd.Args[1:]
	switch n := cmd.Args[0].(type) {
	case *parse.FieldNode:
		return c.fields(n, ".", dot, n.Ident, args, dot, final, hasFinal)
	case *parse.ChainNode:
		base := c.arg(n.Node, dot)
		return c.fields(n, n.Node.String(), base, n.Field, args, dot, final, hasFinal)
	case *parse.VariableNode:
		v := c.lookup(n.Ident[0])
		if len(n.Ident) == 1 {
			c.noArgs(n, args, hasFinal)
			return v
		}
		return c.fields(n, n.Ident[0], v, n.Ident[1:], args, dot, final, hasFinal)
	case *parse.IdentifierNode:
		return c.call(n, args, dot, final, hasFinal)
	default:
		c.noArgs(n, args, hasFinal)
		return c.arg(n, dot)
	}
}

func (c *checker) noArgs(n parse.Node, args []parse.Node, hasFinal bool) {
	if len(args) > 0 || hasFinal {
		c.errorf(n, "%s is not a function: nothing can be passed to it", n)
	}
}

func (c *checker) lookup(name string) reflect.Type {
	for i := len(c.vars) - 1; i >= 0; i-- {
		if c.vars[i].name == name {
			return c.vars[i].typ
		}
	}
	return nil
}

// arg returns the type of an argument.
func (c *checker) arg(n parse.Node, dot reflect.Type) reflect.Type {
	switch n := n.(type) {
	case *parse.DotNode:
		return dot
	case *parse.FieldNode:
		return c.fields(n, ".", dot, n.Ident, nil, dot, nil, false)
	case *parse.ChainNode:
		return c.fields(n, n.Node.String(), c.arg(n.Node, dot), n.Field, nil, dot, nil, false)
	case *parse.VariableNode:
		v := c.lookup(n.Ident[0])
		if len(n.Ident) == 1 {
			return v
		}
		return c.fields(n, n.Ident[0], v, n.Ident[1:], nil, dot, nil, false)
	case *parse.PipeNode:
		return c.pipe(n, dot)
	case *parse.IdentifierNode:
		return c.call(n, nil, dot, nil, false)
	case *parse.StringNode:
		return stringType
	case *parse.NumberNode:
		return numberConstType
	case *parse.BoolNode:
		return boolType
	}
	return nil
}

// fields resolves a chain of field and method names (.Member.Name,
// $item.Qty, .Order.PurchasedAt.Year) starting from typ. Only the last
// name can be a method given arguments.
func (c *checker) fields(n parse.Node, head string, typ reflect.Type, idents []string, args []parse.Node, dot, final reflect.Type, hasFinal bool) reflect.Type {
	for i, name := range idents {
		if typ == nil {
			return nil
		}
		last := i == len(idents)-1
		path := strings.TrimSuffix(head, ".") + "." + strings.Join(idents[:i+1], ".")
		b := typ
		for b.Kind() == reflect.Pointer {
			b = b.Elem()
		}
		if b == dataType {
			c.uses[name] = true
		}
		if m, ok := method(typ, name); ok {
			var argTypes []reflect.Type
			if last {
				argTypes = c.argTypes(args, dot, final, hasFinal)
			}
			c.checkArgs(n, path, m, 1, argTypes)
			typ = result(m)
			continue
		}
		switch b.Kind() {
		case reflect.Struct:
			f, ok := b.FieldByName(name)
			if !ok || !f.IsExported() {
				c.unknownField(n, idents, i, path, b, name)
				return nil
			}
			typ = f.Type
		case reflect.Map:
			if b.Key().Kind() != reflect.String {
				c.identErrorf(n, idents, i, "%s: %s is a map without text keys; use index", path, describe(b))
				return nil
			}
			typ = b.Elem()
		case reflect.Interface:
			return nil
		default:
			owner := strings.TrimSuffix(path, "."+name)
			if owner == "" {
				owner = "dot (.)"
			}
			c.identErrorf(n, idents, i, "%s: %s is %s, which has no field %s", path, owner, describe(typ), name)
			return nil
		}
		if last {
			c.noArgs(n, args, hasFinal)
		}
	}
	return typ
}

func (c *checker) unknownField(n parse.Node, idents []string, i int, path string, t reflect.Type, name string) {
	names := memberNames(t)
	if s := yamlcheck.DidYouMean(name, names); s != "" {
		c.identErrorf(n, idents, i, "%s: %s has no field %s%s", path, typeName(t), name, s)
		return
	}
	if t.PkgPath() == dataType.PkgPath() {
		c.identErrorf(n, idents, i, "%s: %s has no field %s; it has %s", path, typeName(t), name, strings.Join(names, ", "))
		return
	}
	c.identErrorf(n, idents, i, "%s: %s has no field %s", path, typeName(t), name)
}

// method finds an exported method of t or *t.
func method(t reflect.Type, name string) (reflect.Type, bool) {
	if m, ok := t.MethodByName(name); ok {
		return m.Type, true
	}
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface {
		if m, ok := reflect.PointerTo(t).MethodByName(name); ok {
			return m.Type, true
		}
	}
	return nil, false
}

func result(ft reflect.Type) reflect.Type {
	if ft.NumOut() == 0 {
		return nil
	}
	t := ft.Out(0)
	if t.Kind() == reflect.Interface && t.NumMethod() == 0 {
		return nil
	}
	return t
}

func (c *checker) argTypes(args []parse.Node, dot, final reflect.Type, hasFinal bool) []reflect.Type {
	types := make([]reflect.Type, 0, len(args)+1)
	for _, a := range args {
		types = append(types, c.arg(a, dot))
	}
	if hasFinal {
		types = append(types, final)
	}
	return types
}

// checkArgs checks the argument count and types of a call of a function
// of type ft, skipping its first skip parameters (a method's receiver).
func (c *checker) checkArgs(n parse.Node, name string, ft reflect.Type, skip int, args []reflect.Type) {
	in := ft.NumIn() - skip
	if ft.IsVariadic() {
		if len(args) < in-1 {
			c.errorf(n, "%s needs at least %s, got %d", name, plural(in-1, "argument"), len(args))
			return
		}
	} else if len(args) != in {
		c.errorf(n, "%s takes %s, got %d", name, plural(in, "argument"), len(args))
		return
	}
	for i, a := range args {
		var p reflect.Type
		if ft.IsVariadic() && i >= in-1 {
			p = ft.In(ft.NumIn() - 1).Elem()
		} else {
			p = ft.In(skip + i)
		}
		if !assignable(a, p) {
			c.errorf(n, "argument %d of %s must be %s, not %s", i+1, name, describe(p), describe(a))
		}
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func assignable(a, p reflect.Type) bool {
	switch {
	case a == nil:
		return true
	case a == numberConstType:
		return isNumber(p) || p.Kind() == reflect.Interface && p.NumMethod() == 0
	case p.Kind() == reflect.Interface:
		return a.Implements(p)
	}
	return a.AssignableTo(p) || reflect.PointerTo(a).AssignableTo(p)
}

func isNumber(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// call checks a function call: one of funcs by its signature, or a
// text/template builtin by its rules.
func (c *checker) call(n *parse.IdentifierNode, args []parse.Node, dot, final reflect.Type, hasFinal bool) reflect.Type {
	name := n.Ident
	types := c.argTypes(args, dot, final, hasFinal)
	if fn, ok := funcs[name]; ok {
		ft := reflect.TypeOf(fn)
		c.checkArgs(n, name, ft, 0, types)
		if name == "date" {
			c.checkDate(n, args)
		}
		return result(ft)
	}
	count := func(min, max int) bool {
		if len(types) < min || max >= 0 && len(types) > max {
			switch {
			case min == max:
				c.errorf(n, "%s takes %s, got %d", name, plural(min, "argument"), len(types))
			default:
				c.errorf(n, "%s needs at least %s, got %d", name, plural(min, "argument"), len(types))
			}
			return false
		}
		return true
	}
	switch name {
	case "not":
		count(1, 1)
		return boolType
	case "eq":
		if count(2, -1) {
			for _, t := range types[1:] {
				c.comparable(n, name, types[0], t, false)
			}
		}
		return boolType
	case "ne", "lt", "le", "gt", "ge":
		if count(2, 2) {
			c.comparable(n, name, types[0], types[1], name != "ne")
		}
		return boolType
	case "len":
		if count(1, 1) && types[0] != nil {
			switch deref(types[0]).Kind() {
			case reflect.String, reflect.Slice, reflect.Array, reflect.Map, reflect.Chan:
			default:
				c.errorf(n, "len needs a list or a text, not %s", describe(types[0]))
			}
		}
		return intType
	case "index":
		if !count(1, -1) {
			return nil
		}
		t := types[0]
		for range types[1:] {
			if t == nil {
				return nil
			}
			switch b := deref(t); b.Kind() {
			case reflect.Slice, reflect.Array, reflect.Map:
				t = b.Elem()
			case reflect.String:
				t = reflect.TypeFor[byte]()
			case reflect.Interface:
				return nil
			default:
				c.errorf(n, "index needs a list or a map, not %s", describe(t))
				return nil
			}
		}
		return t
	case "slice":
		if count(1, 4) {
			return types[0]
		}
		return nil
	case "printf":
		if count(1, -1) && !assignable(types[0], stringType) {
			c.errorf(n, "argument 1 of printf must be text (the format), not %s", describe(types[0]))
		}
		return stringType
	case "print", "println", "html", "js", "urlquery":
		return stringType
	case "and", "or":
		if !count(1, -1) {
			return nil
		}
		for _, t := range types[1:] {
			if t != types[0] {
				return nil
			}
		}
		return types[0]
	}
	return nil
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// comparable reports comparisons text/template refuses at run time, such
// as text with a number.
func (c *checker) comparable(n parse.Node, name string, a, b reflect.Type, ordered bool) {
	ca, cb := class(a), class(b)
	if ca == "" || cb == "" {
		return
	}
	if ca != cb {
		c.errorf(n, "%s compares %s with %s: they can never be equal", name, describe(a), describe(b))
		return
	}
	if ordered && ca != "number" && ca != "text" {
		c.errorf(n, "%s needs numbers or texts, not %s", name, describe(a))
	}
}

// class groups the types text/template compares with each other. "" is
// a type the check does not know.
func class(t reflect.Type) string {
	if t == nil {
		return ""
	}
	if t == numberConstType {
		return "number"
	}
	switch {
	case isNumber(t):
		return "number"
	case t.Kind() == reflect.String:
		return "text"
	case t.Kind() == reflect.Bool:
		return "bool"
	case t.Kind() == reflect.Interface:
		return ""
	}
	return "other:" + t.String()
}

// sampleTime formats differently from every layout element, so a layout
// that formats to itself has none.
var sampleTime = time.Date(1999, 12, 31, 23, 59, 58, 0, time.UTC)

// checkDate checks the constant arguments of date: a layout with no
// layout element in it ("YYYY-MM-DD") and an unknown zone.
func (c *checker) checkDate(n parse.Node, args []parse.Node) {
	if len(args) > 0 {
		if s, ok := args[0].(*parse.StringNode); ok && sampleTime.Format(s.Text) == s.Text {
			c.errorf(n, "date layout %s has nothing to fill in: write Go's reference time Mon Jan 2 15:04:05 2006 the way you want it shown, e.g. \"2006-01-02\" or \"1月2日\"", s.Quoted)
		}
	}
	if len(args) > 2 {
		if s, ok := args[2].(*parse.StringNode); ok {
			if _, err := loadZone(s.Text); err != nil {
				c.errorf(n, "date: %v", err)
			}
		}
	}
}

// describe names a type the way a marketer thinks of it
// (yamlcheck.DescribeType), a template's records by their names.
func describe(t reflect.Type) string {
	return yamlcheck.DescribeType(t, func(t reflect.Type) (string, bool) {
		switch {
		case t == numberConstType:
			return "a number", true
		case t == moneyType:
			return "money (an amount such as .Order.Total)", true
		case t.Kind() == reflect.Struct && t.PkgPath() == dataType.PkgPath():
			return t.Name(), true
		}
		return "", false
	})
}

func typeName(t reflect.Type) string {
	if t.PkgPath() == dataType.PkgPath() {
		return t.Name()
	}
	if t == timeType {
		return "a time"
	}
	return t.String()
}

// memberNames lists the exported fields and methods of a struct type.
func memberNames(t reflect.Type) []string {
	var names []string
	if t.Kind() == reflect.Struct {
		for f := range t.Fields() {
			if f.IsExported() {
				names = append(names, f.Name)
			}
		}
	}
	for m := range t.Methods() {
		if m.Name != "String" {
			names = append(names, m.Name)
		}
	}
	return names
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
