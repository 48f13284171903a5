package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scrmgw/scrmgw/templates/yamlcheck"
)

// EnvPrefix starts every environment variable scrmgw reads.
const EnvPrefix = "SCRMGW_"

// Load returns the defaults, overlaid with the YAML file at path (when path
// is not empty) and then with SCRMGW_* variables from environ (os.Environ()
// form), and validates the result.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("reading config: %w", err)
		}
		if err := decodeYAML(filepath.Base(path), data, &cfg); err != nil {
			return cfg, err
		}
	}
	if err := applyEnv(environ, &cfg); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// decodeYAML decodes data onto cfg, reporting unknown keys and bad values
// with file:line:column and the key's path.
func decodeYAML(file string, data []byte, cfg *Config) error {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file keeps the defaults
		}
		return fmt.Errorf("%s: %w", file, err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	var errs []error
	decodeNode(file, "", doc.Content[0], reflect.ValueOf(cfg).Elem(), &errs)
	return errors.Join(errs...)
}

func decodeNode(file, key string, n *yaml.Node, v reflect.Value, errs *[]error) {
	fail := func(format string, args ...any) {
		name := key
		if name == "" {
			name = "(top level)"
		}
		*errs = append(*errs, fmt.Errorf("%s:%d:%d: %s: %s", file, n.Line, n.Column, name, fmt.Sprintf(format, args...)))
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // "key:" with nothing after it keeps the default
	}
	if v.Type() == reflect.TypeOf(time.Duration(0)) {
		d, err := time.ParseDuration(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			fail("want a duration such as 30s or 5m, got %q", n.Value)
			return
		}
		v.SetInt(int64(d))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			fail("want a mapping of keys")
			return
		}
		fields := structFields(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			idx, ok := fields[k.Value]
			sub := joinKey(key, k.Value)
			if !ok {
				msg := fmt.Sprintf("%s:%d:%d: %s: unknown key", file, k.Line, k.Column, sub)
				if s := suggest(k.Value, fields); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				*errs = append(*errs, errors.New(msg))
				continue
			}
			decodeNode(file, sub, val, v.Field(idx), errs)
		}
	case reflect.Map:
		// A map of instances (wecom.instances.acme): each entry starts
		// from the defaults of its section; or of strings
		// (wecom.kf_brands).
		if n.Kind != yaml.MappingNode || v.Type().Key().Kind() != reflect.String {
			fail("want a mapping of names")
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			entry := reflect.New(v.Type().Elem()).Elem()
			if old := v.MapIndex(reflect.ValueOf(k.Value)); old.IsValid() {
				entry.Set(old)
			} else if v.Type().Elem().Kind() == reflect.Struct {
				entry.Set(entryDefaults(v.Type().Elem()))
			}
			decodeNode(file, joinKey(key, k.Value), val, entry, errs)
			v.SetMapIndex(reflect.ValueOf(k.Value), entry)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			fail("want a list")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			decodeNode(file, fmt.Sprintf("%s[%d]", key, i), item, s.Index(i), errs)
		}
		v.Set(s)
	default:
		if n.Kind != yaml.ScalarNode {
			fail("want a single value")
			return
		}
		if err := setScalar(v, n.Value); err != nil {
			fail("%v", err)
		}
	}
}

func setScalar(v reflect.Value, s string) error {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int64:
		if v.Type() == reflect.TypeOf(time.Duration(0)) {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("want a duration such as 30s or 5m, got %q", s)
			}
			v.SetInt(int64(d))
			return nil
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", s)
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("want a number, got %q", s)
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		v.SetBool(b)
	case reflect.Slice:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	case reflect.Map:
		// A map of strings (wecom.kf_brands): "k=v,k=v".
		if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported type %s", v.Type())
		}
		m := reflect.MakeMap(v.Type())
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			k, val, ok := strings.Cut(p, "=")
			if !ok {
				return fmt.Errorf("want key=value pairs separated by commas, got %q", p)
			}
			m.SetMapIndex(reflect.ValueOf(strings.TrimSpace(k)).Convert(v.Type().Key()), reflect.ValueOf(strings.TrimSpace(val)).Convert(v.Type().Elem()))
		}
		v.Set(m)
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// structFields maps yaml keys to field indexes.
func structFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag != "" && tag != "-" {
			m[tag] = i
		}
	}
	return m
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// envVar is one configurable leaf: its key path and where it lives.
// A map of instances (wecom.instances) is one envVar with entry set: the
// leaves of each entry, named key.<name>.<leaf> ↔ name_<NAME>_<LEAF>.
type envVar struct {
	key    string
	name   string
	secret bool
	index  []int
	entry  []envVar
}

// EnvVars lists every key with its environment variable name, in order.
func EnvVars() []string {
	var out []string
	for _, e := range envVars(reflect.TypeOf(Config{}), "", nil) {
		if e.entry != nil {
			for _, l := range e.entry {
				out = append(out, e.key+".<name>."+l.key+" ↔ "+e.name+"_<NAME>_"+strings.TrimPrefix(l.name, EnvPrefix))
			}
			continue
		}
		out = append(out, e.key+" ↔ "+e.name)
	}
	return out
}

// entryDefaults is where a new entry of a map of instances starts: the
// defaults of the section (max_clock_skew, api_base, ...).
func entryDefaults(t reflect.Type) reflect.Value {
	d := reflect.ValueOf(Default())
	for i := 0; i < d.NumField(); i++ {
		if f := d.Field(i); f.Type() == t {
			return f
		}
	}
	return reflect.Zero(t)
}

// instanceEnv sets the leaf of a map entry an environment variable names
// (SCRMGW_WECOM_INSTANCES_ACME_SECRET): the instance is what precedes the
// longest leaf name the variable ends with, matched to an instance the
// file defines (acme-cn is ACME_CN), else taken lower-cased. It reports
// false when the variable names no such leaf.
func instanceEnv(root reflect.Value, m envVar, name, value string) (bool, error) {
	rest, ok := strings.CutPrefix(name, m.name+"_")
	if !ok {
		return false, nil
	}
	var leaf *envVar
	var inst string
	fromFile := false
	for i := range m.entry {
		l := &m.entry[i]
		if l.entry != nil {
			continue
		}
		plain := strings.TrimPrefix(l.name, EnvPrefix)
		for _, suffix := range []string{plain, plain + "_FILE"} {
			file := suffix != plain
			if file && !l.secret {
				continue
			}
			before, ok := strings.CutSuffix(rest, "_"+suffix)
			if !ok || before == "" || (leaf != nil && len(before) >= len(inst)) {
				continue
			}
			leaf, inst, fromFile = l, before, file
		}
	}
	if leaf == nil {
		return false, nil
	}
	if fromFile {
		data, err := os.ReadFile(value)
		if err != nil {
			return true, fmt.Errorf("%s: reading secret file: %w", name, err)
		}
		value = strings.TrimSpace(string(data))
	}
	mv := root.FieldByIndex(m.index)
	if mv.IsNil() {
		mv.Set(reflect.MakeMap(mv.Type()))
	}
	instName := strings.ToLower(inst)
	for _, k := range mv.MapKeys() {
		if strings.ToUpper(strings.ReplaceAll(k.String(), "-", "_")) == inst {
			instName = k.String()
		}
	}
	entry := reflect.New(mv.Type().Elem()).Elem()
	if old := mv.MapIndex(reflect.ValueOf(instName)); old.IsValid() {
		entry.Set(old)
	} else {
		entry.Set(entryDefaults(mv.Type().Elem()))
	}
	if err := setScalar(entry.FieldByIndex(leaf.index), value); err != nil {
		return true, fmt.Errorf("%s (%s.%s.%s): %w", name, m.key, instName, leaf.key, err)
	}
	mv.SetMapIndex(reflect.ValueOf(instName), entry)
	return true, nil
}

func envVars(t reflect.Type, prefix string, index []int) []envVar {
	return envVarsOf(t, prefix, index, false)
}

// envVarsOf lists the leaves of t; inEntry: t is an entry of a map of
// instances, whose own instances have no variables (they are refused).
func envVarsOf(t reflect.Type, prefix string, index []int, inEntry bool) []envVar {
	var out []envVar
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		key := joinKey(prefix, tag)
		idx := append(append([]int(nil), index...), i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			out = append(out, envVarsOf(f.Type, key, idx, inEntry)...)
			continue
		}
		if f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Struct {
			if inEntry {
				continue // an instance's own instances: refused, no variable
			}
			name := EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
			out = append(out, envVar{key: key, name: name, index: idx, entry: envVarsOf(f.Type.Elem(), "", nil, true)})
			continue
		}
		name := EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		out = append(out, envVar{key: key, name: name, secret: f.Tag.Get("secret") == "true", index: idx})
	}
	return out
}

// applyEnv overlays SCRMGW_* variables. A variable that names no key is an
// error (a typo would otherwise be silently ignored); SCRMGW_TEST_* and
// SCRMGW_BENCH_* are left to the test suites, SCRMGW_WEBHOOK_SECRET_<NAME>
// to workflow webhook steps.
func applyEnv(environ []string, cfg *Config) error {
	vars := envVars(reflect.TypeOf(*cfg), "", nil)
	byName := make(map[string]envVar, len(vars)*2)
	var maps []envVar
	for _, e := range vars {
		if e.entry != nil {
			maps = append(maps, e)
			continue
		}
		byName[e.name] = e
		if e.secret {
			byName[e.name+"_FILE"] = e
		}
	}
	root := reflect.ValueOf(cfg).Elem()
	var errs []error
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || strings.HasPrefix(name, EnvPrefix+"TEST_") ||
			strings.HasPrefix(name, EnvPrefix+"WEBHOOK_SECRET_") || strings.HasPrefix(name, EnvPrefix+"BENCH_") {
			continue
		}
		e, known := byName[name]
		if !known {
			set := false
			for _, m := range maps {
				ok, err := instanceEnv(root, m, name, value)
				if err != nil {
					errs = append(errs, err)
				}
				if set = ok; ok {
					break
				}
			}
			if set {
				continue
			}
			msg := fmt.Sprintf("%s: unknown environment variable", name)
			if s := suggest(name, namesOf(byName)); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			errs = append(errs, errors.New(msg))
			continue
		}
		if strings.HasSuffix(name, "_FILE") && name != e.name {
			data, err := os.ReadFile(value)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s (%s): reading secret file: %w", name, e.key, err))
				continue
			}
			value = strings.TrimSpace(string(data))
		}
		if err := setScalar(root.FieldByIndex(e.index), value); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", name, e.key, err))
		}
	}
	return errors.Join(errs...)
}

func namesOf(m map[string]envVar) map[string]int {
	out := make(map[string]int, len(m))
	for k := range m {
		out[k] = 0
	}
	return out
}

// suggest returns the candidate closest to s, if it is close enough to
// be a typo of it (yamlcheck.Suggest, which templates and workflows use).
func suggest(s string, candidates map[string]int) string {
	names := make([]string, 0, len(candidates))
	for c := range candidates {
		names = append(names, c)
	}
	sort.Strings(names)
	return yamlcheck.Suggest(s, names)
}
