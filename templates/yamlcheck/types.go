package yamlcheck

import (
	"reflect"
	"time"
)

// DescribeType names a value's type the way a marketer thinks of it: "text",
// "a number", "true or false", "a time", "a duration", "a list of
// texts", "a list", "a map", "a value". named names the caller's own
// types first (a template's records and money, a workflow's event or
// member), and reports whether it did; a struct neither knows is its Go
// name. A pointer is what it points to.
func DescribeType(t reflect.Type, named func(reflect.Type) (string, bool)) string {
	if t == nil {
		return "a value"
	}
	if named != nil {
		if s, ok := named(t); ok {
			return s
		}
	}
	switch t {
	case reflect.TypeFor[time.Time]():
		return "a time"
	case reflect.TypeFor[time.Duration]():
		return "a duration"
	}
	switch t.Kind() {
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return "a list of texts"
		}
		return "a list"
	case reflect.Map:
		return "a map"
	case reflect.Pointer:
		return DescribeType(t.Elem(), named)
	case reflect.Interface:
		return "a value"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}
