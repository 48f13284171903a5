package templates

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Message kinds, as adapters.Outbound.Kind names them.
const (
	KindText        = "text"
	KindNews        = "news"
	KindMiniProgram = "miniprogram"
	KindMarkdown    = "markdown"
	KindActionCard  = "action_card"
	KindTextCard    = "textcard"
	KindImage       = "image"
	KindFile        = "file"
)

// DefaultVariant is the variant key used on a channel that has no variant
// of its own. It must be a text message, which every channel can send.
const DefaultVariant = "default"

// kindSpec says which fields a kind has.
type kindSpec struct {
	fields []fieldSpec
	// oneOf lists groups of fields of which a message has exactly one
	// (not required on their own).
	oneOf [][]string
}

type fieldSpec struct {
	name     string
	required bool
	url      bool
}

// kinds are the message kinds of the template language and their fields.
var kinds = map[string]kindSpec{
	KindText: {fields: []fieldSpec{{name: "text", required: true}}},
	KindNews: {fields: []fieldSpec{
		{name: "title", required: true}, {name: "description"},
		{name: "url", required: true, url: true}, {name: "picurl", url: true},
	}},
	KindMiniProgram: {fields: []fieldSpec{
		{name: "title", required: true}, {name: "appid", required: true},
		{name: "page", required: true},
		// The cover: a media id the channel knows, or a link it uploads.
		{name: "pic_media_id"}, {name: "picurl", url: true},
	}, oneOf: [][]string{{"pic_media_id", "picurl"}}},
	KindMarkdown: {fields: []fieldSpec{{name: "title", required: true}, {name: "text", required: true}}},
	KindActionCard: {fields: []fieldSpec{
		{name: "title", required: true}, {name: "text", required: true},
		{name: "single_title", required: true}, {name: "single_url", required: true, url: true},
	}},
	KindTextCard: {fields: []fieldSpec{
		{name: "title", required: true}, {name: "text", required: true},
		{name: "url", required: true, url: true}, {name: "btntxt"},
	}},
	KindImage: {fields: []fieldSpec{{name: "picurl", required: true, url: true}}},
	KindFile:  {fields: []fieldSpec{{name: "url", required: true, url: true}, {name: "filename"}}},
}

// kindNames lists the kinds of the language in a stable order.
var kindNames = []string{KindText, KindMarkdown, KindNews, KindMiniProgram, KindActionCard, KindTextCard, KindImage, KindFile}

// Channels says which message kinds each channel sends (to anyone: a
// member or a guide), by channel name: the wiring fills it from the
// channels' specs (adapters.Spec MemberKinds and GuideKinds).
type Channels map[string][]string

// Option configures a Registry.
type Option func(*Registry)

// WithChannels makes loading check every variant against the channels:
// a variant key must be default or a channel's name, and a channel's
// variant must be of a kind the channel sends. Without it (or with an
// empty Channels), a variant may name any channel and be of any kind of
// the language: checks a caller that knows no channels cannot make.
func WithChannels(c Channels) Option {
	return func(r *Registry) {
		if len(c) > 0 {
			r.channels = c
		}
	}
}

// Template is one message template: per locale, a variant per channel and
// a default variant.
type Template struct {
	// ID names the template in workflows (send: welcome).
	ID string
	// Description says what the template is for.
	Description string
	// File is the file the template was loaded from.
	File    string
	locales []*localeSet
}

type localeSet struct {
	name     string
	variants map[string]*variant
}

type variant struct {
	kind   string
	path   string
	fields []textField
}

type textField struct {
	spec fieldSpec
	text *Text
}

// Locales lists the template's locales in file order; the first is the
// fallback for a locale the template does not have.
func (t *Template) Locales() []string {
	names := make([]string, len(t.locales))
	for i, l := range t.locales {
		names[i] = l.name
	}
	return names
}

// CanRender reports whether the template renders on channel in every
// locale: with a variant for it or a default one.
func (t *Template) CanRender(channel string) bool {
	for _, l := range t.locales {
		if l.variants[channel] == nil && l.variants[DefaultVariant] == nil {
			return false
		}
	}
	return true
}

// Kinds lists the message kinds the template renders on channel, over
// its locales (the channel's own variant, else the default one), in
// order; nil when it cannot render there.
func (t *Template) Kinds(channel string) []string {
	var ks []string
	for _, l := range t.locales {
		v := l.variants[channel]
		if v == nil {
			v = l.variants[DefaultVariant]
		}
		if v == nil {
			return nil
		}
		if !slices.Contains(ks, v.kind) {
			ks = append(ks, v.kind)
		}
	}
	slices.Sort(ks)
	return ks
}

// Uses reports whether any variant reads the given field of Data, such
// as "Coupon".
func (t *Template) Uses(field string) bool {
	for _, l := range t.locales {
		for _, v := range l.variants {
			for _, f := range v.fields {
				if f.text.Uses(field) {
					return true
				}
			}
		}
	}
	return false
}

// Registry holds loaded templates by id. It is safe for concurrent use.
type Registry struct {
	mu        sync.RWMutex
	templates map[string]*Template
	channels  Channels
}

// NewRegistry returns an empty registry.
func NewRegistry(opts ...Option) *Registry {
	r := &Registry{templates: make(map[string]*Template)}
	for _, o := range opts {
		o(r)
	}
	return r
}

// LoadDir loads every *.yaml and *.yml file of dir (not its
// subdirectories) into a new registry. It reports the problems of all
// files, as an ErrorList.
func LoadDir(dir string, opts ...Option) (*Registry, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("loading templates: %w", err)
	}
	r := NewRegistry(opts...)
	var errs ErrorList
	for _, e := range entries {
		if e.IsDir() || !isYAML(e.Name()) {
			continue
		}
		name := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("loading templates: %w", err)
		}
		errs = appendErrors(errs, r.Add(name, data))
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return r, nil
}

// LoadFS is LoadDir for the root of a file system, such as an embed.FS.
func LoadFS(fsys fs.FS, opts ...Option) (*Registry, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("loading templates: %w", err)
	}
	r := NewRegistry(opts...)
	var errs ErrorList
	for _, e := range entries {
		if e.IsDir() || !isYAML(e.Name()) {
			continue
		}
		data, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("loading templates: %w", err)
		}
		errs = appendErrors(errs, r.Add(e.Name(), data))
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return r, nil
}

func isYAML(name string) bool {
	ext := path.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}

func appendErrors(errs ErrorList, err error) ErrorList {
	if err == nil {
		return errs
	}
	var l ErrorList
	if errors.As(err, &l) {
		return append(errs, l...)
	}
	return append(errs, &Error{Line: 1, Column: 1, Msg: err.Error()})
}

// Add parses one template file and adds its template. filename names the
// file in errors and gives the template its id when the file sets none
// (welcome.yaml → welcome). Every problem of the file is reported, as an
// ErrorList of errors carrying the file, line and column.
func (r *Registry) Add(filename string, data []byte) error {
	d := &fileDecoder{file: filename, lines: strings.Split(string(data), "\n"), channels: r.channels}
	t := d.decode(data)
	if t != nil {
		r.mu.Lock()
		if prev, ok := r.templates[t.ID]; ok {
			d.errs = append(d.errs, &Error{File: filename, Line: 1, Column: 1, Template: t.ID,
				Msg: fmt.Sprintf("template id %s is already defined in %s", t.ID, prev.File)})
		} else if len(d.errs) == 0 {
			r.templates[t.ID] = t
		}
		r.mu.Unlock()
	}
	return d.errs.err()
}

// Lookup returns the template with the given id.
func (r *Registry) Lookup(id string) (*Template, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.templates[id]
	return t, ok
}

// IDs lists the ids of the registry's templates in order.
func (r *Registry) IDs() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return sortedKeys(r.templates)
}

var (
	idRE     = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	localeRE = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)
)

// fileDecoder decodes one template file strictly from its YAML nodes,
// collecting every problem with its position.
type fileDecoder struct {
	file     string
	lines    []string
	id       string
	errs     ErrorList
	channels Channels
}

func (d *fileDecoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errorAt(n.Line, n.Column, path, format, args...)
}

func (d *fileDecoder) errorAt(line, col int, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: max(line, 1), Column: max(col, 1), Template: d.id, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *fileDecoder) decode(data []byte) (t *Template) {
	d.id = strings.TrimSuffix(path.Base(filepath.ToSlash(d.file)), path.Ext(d.file))
	var doc yaml.Node
	if err := unmarshal(data, &doc); err != nil {
		line, msg := 1, strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			fmt.Sscan(m[1], &line)
			msg = m[2]
		}
		d.errorAt(line, 1, "", "%s", msg)
		return nil
	}
	if len(doc.Content) == 0 {
		d.errorAt(1, 1, "", "empty file: a template needs locales")
		return nil
	}
	root := doc.Content[0]
	if aliases(root, d) {
		return nil
	}
	t = &Template{File: d.file}
	var locales *yaml.Node
	for _, kv := range d.mapping(root, "", []string{"id", "description", "locales"}) {
		key, val := kv[0], kv[1]
		switch key.Value {
		case "id":
			if s, ok := d.scalar(val, "id"); ok {
				if !idRE.MatchString(s) {
					d.errorf(val, "id", "bad template id %q: use lowercase letters, digits and _, starting with a letter", s)
				} else {
					d.id = s
				}
			}
		case "description":
			t.Description, _ = d.scalar(val, "description")
		case "locales":
			locales = val
		}
	}
	t.ID = d.id
	if !idRE.MatchString(t.ID) {
		d.errorAt(1, 1, "", "the file name %s is not a template id: set id, with lowercase letters, digits and _", path.Base(d.file))
	}
	if locales == nil {
		d.errorf(root, "", "missing locales: a template needs at least one locale, e.g. zh")
		return t
	}
	for _, kv := range d.mapping(locales, "locales", nil) {
		key, val := kv[0], kv[1]
		if !localeRE.MatchString(key.Value) {
			d.errorf(key, key.Value, "bad locale %q: use a language tag such as zh, en or zh-TW", key.Value)
			continue
		}
		t.locales = append(t.locales, d.localeSet(key.Value, val))
	}
	if locales.Kind == yaml.MappingNode && len(locales.Content) == 0 {
		d.errorf(locales, "locales", "no locales: add at least one, e.g. zh")
	}
	return t
}

// unmarshal parses YAML, turning a panic of the parser into an error.
func unmarshal(data []byte, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot parse the file: %v", r)
		}
	}()
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		data = data[3:]
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(n); err != nil {
		if err.Error() == "EOF" {
			return nil
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return fmt.Errorf("yaml: line %d: a file holds one template: remove the second document (---)", extra.Line)
	}
	return nil
}

// aliases reports YAML aliases, which template files do not support.
func aliases(n *yaml.Node, d *fileDecoder) bool {
	found := false
	if n.Kind == yaml.AliasNode {
		d.errorf(n, "", "anchors and aliases (*name) are not supported: write the value out")
		return true
	}
	for _, c := range n.Content {
		found = aliases(c, d) || found
	}
	return found
}

// mapping returns the key/value pairs of a mapping node, reporting a node
// that is not a mapping, duplicate keys and, when known is not nil, keys
// not in known.
func (d *fileDecoder) mapping(n *yaml.Node, p string, known []string) [][2]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, p, "expected a mapping (key: value lines), got %s", nodeKind(n))
		return nil
	}
	var pairs [][2]*yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		kp := joinPath(p, key.Value)
		if seen[key.Value] {
			d.errorf(key, kp, "duplicate key %s", key.Value)
			continue
		}
		seen[key.Value] = true
		if known != nil && !slices.Contains(known, key.Value) {
			if s := suggest(key.Value, known); s != "" {
				d.errorf(key, kp, "unknown field %s (did you mean %s?)", key.Value, s)
			} else {
				d.errorf(key, kp, "unknown field %s; the fields are %s", key.Value, strings.Join(known, ", "))
			}
			continue
		}
		pairs = append(pairs, [2]*yaml.Node{key, val})
	}
	return pairs
}

func (d *fileDecoder) scalar(n *yaml.Node, p string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, p, "expected a text, got %s", nodeKind(n))
		return "", false
	}
	return n.Value, true
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an alias"
}

func joinPath(p, key string) string {
	if p == "" {
		return key
	}
	return p + "." + key
}

func (d *fileDecoder) localeSet(name string, n *yaml.Node) *localeSet {
	l := &localeSet{name: name, variants: make(map[string]*variant)}
	var keys []string // nil: any channel
	if d.channels != nil {
		keys = append([]string{DefaultVariant}, sortedKeys(d.channels)...)
	}
	for _, kv := range d.mapping(n, name, keys) {
		key, val := kv[0], kv[1]
		if v := d.variant(joinPath(name, key.Value), key.Value, val); v != nil {
			l.variants[key.Value] = v
		}
	}
	if len(l.variants) == 0 && n.Kind == yaml.MappingNode && len(n.Content) == 0 {
		d.errorf(n, name, "no variants: add default (a text used on every channel) or one per channel")
	}
	return l
}

// variant decodes one variant: a plain text (default: 你好) or a mapping
// with kind and the kind's fields.
func (d *fileDecoder) variant(p, channel string, n *yaml.Node) *variant {
	v := &variant{kind: KindText, path: p}
	var fields [][2]*yaml.Node
	scalar := false
	switch n.Kind {
	case yaml.ScalarNode:
		scalar = true
		key := &yaml.Node{Kind: yaml.ScalarNode, Value: "text", Line: n.Line, Column: n.Column}
		fields = [][2]*yaml.Node{{key, n}}
	case yaml.MappingNode:
		// Any field of the language passes here: one the kind lacks, or
		// a kind the channel cannot send, is reported once, at the kind.
		var allowed []string
		for _, k := range kindNames {
			for _, f := range kinds[k].fields {
				if !slices.Contains(allowed, f.name) {
					allowed = append(allowed, f.name)
				}
			}
		}
		for _, kv := range d.mapping(n, p, append([]string{"kind"}, allowed...)) {
			if kv[0].Value == "kind" {
				s, _ := d.scalar(kv[1], joinPath(p, "kind"))
				v.kind = s
				if _, ok := kinds[s]; !ok {
					d.unknownKind(kv[1], joinPath(p, "kind"), channel, s)
					return nil
				}
				if channel == DefaultVariant && s != KindText {
					d.errorf(kv[1], joinPath(p, "kind"), "the default variant must be kind text: it is sent on channels that take nothing else")
					return nil
				}
				if sends, known := d.channels[channel]; known && !slices.Contains(sends, s) {
					d.errorf(kv[1], joinPath(p, "kind"), "%s cannot send %s messages; it sends %s", channel, s, strings.Join(d.kindsOf(channel), ", "))
					return nil
				}
				continue
			}
			fields = append(fields, kv)
		}
	default:
		d.errorf(n, p, "expected a text or a mapping with kind and its fields, got %s", nodeKind(n))
		return nil
	}
	spec := kinds[v.kind]
	for _, kv := range fields {
		key, val := kv[0], kv[1]
		fp := joinPath(p, key.Value)
		if scalar {
			fp = p
		}
		i := slices.IndexFunc(spec.fields, func(f fieldSpec) bool { return f.name == key.Value })
		if i < 0 {
			d.errorf(key, fp, "a %s message has no %s; %s", v.kind, key.Value, d.kindWithField(channel, key.Value))
			continue
		}
		s, ok := d.scalar(val, fp)
		if !ok {
			continue
		}
		text, err := ParseText(d.id+"/"+fp, s)
		if err != nil {
			d.textErrors(val, fp, err)
			continue
		}
		if lit, ok := text.static(); ok && spec.fields[i].url && lit != "" && !validURL(lit) {
			d.errorf(val, fp, "%s must be an http:// or https:// link, got %q", key.Value, lit)
		}
		v.fields = append(v.fields, textField{spec: spec.fields[i], text: text})
	}
	for _, f := range spec.fields {
		if f.required && !slices.ContainsFunc(v.fields, func(tf textField) bool { return tf.spec.name == f.name }) &&
			!slices.ContainsFunc(fields, func(kv [2]*yaml.Node) bool { return kv[0].Value == f.name }) {
			d.errorf(n, p, "a %s message needs %s", v.kind, f.name)
		}
	}
	for _, group := range spec.oneOf {
		var given []*yaml.Node
		for _, kv := range fields {
			if slices.Contains(group, kv[0].Value) {
				given = append(given, kv[0])
			}
		}
		switch {
		case len(given) == 0:
			d.errorf(n, p, "a %s message needs one of %s", v.kind, strings.Join(group, ", "))
		case len(given) > 1:
			d.errorf(given[1], joinPath(p, given[1].Value), "a %s message takes one of %s, not both: %s is given too", v.kind, strings.Join(group, ", "), given[0].Value)
		}
	}
	return v
}

// kindsOf lists the kinds of the language a variant for channel may
// have: those the channel sends, when the channels are known, else all.
func (d *fileDecoder) kindsOf(channel string) []string {
	sends, known := d.channels[channel]
	if !known {
		return kindNames
	}
	var ks []string
	for _, k := range kindNames {
		if slices.Contains(sends, k) {
			ks = append(ks, k)
		}
	}
	return ks
}

func (d *fileDecoder) unknownKind(n *yaml.Node, p, channel, kind string) {
	options := d.kindsOf(channel)
	if channel == DefaultVariant {
		options = []string{KindText}
	}
	if s := suggest(kind, options); s != "" {
		d.errorf(n, p, "unknown kind %s (did you mean %s?)", kind, s)
		return
	}
	if _, known := d.channels[channel]; known || channel == DefaultVariant {
		d.errorf(n, p, "unknown kind %s; %s sends %s", kind, channel, strings.Join(options, ", "))
		return
	}
	d.errorf(n, p, "unknown kind %s; the kinds are %s", kind, strings.Join(options, ", "))
}

// kindWithField words which kind of the channel has a field.
func (d *fileDecoder) kindWithField(channel, field string) string {
	for _, k := range d.kindsOf(channel) {
		for _, f := range kinds[k].fields {
			if f.name == field {
				return fmt.Sprintf("set kind: %s to use it", k)
			}
		}
	}
	return "check the spelling"
}

// textErrors maps the errors ParseText found inside the value of n to
// positions in the file.
func (d *fileDecoder) textErrors(n *yaml.Node, p string, err error) {
	var l ErrorList
	if !errors.As(err, &l) {
		d.errorf(n, p, "%v", err)
		return
	}
	for _, e := range l {
		line, col := scalarPosition(n, d.lines, e.Line, e.Column)
		d.errorAt(line, col, p, "%s", e.Msg)
	}
}

// scalarPosition maps a 1-based line and column inside the value of the
// scalar n to a position in the file. It is exact for plain and quoted
// one-line values and for literal blocks (|); for other multi-line values
// it gives the value's start.
func scalarPosition(n *yaml.Node, lines []string, line, col int) (int, int) {
	switch n.Style {
	case yaml.LiteralStyle:
		// The value starts on the line after the | indicator, at the
		// block's indentation: that of its first non-blank line.
		indent := 0
		for i := n.Line; i < len(lines); i++ {
			if s := strings.TrimRight(lines[i], " \r"); s != "" {
				indent = len(s) - len(strings.TrimLeft(s, " "))
				break
			}
		}
		return n.Line + line, indent + col
	case yaml.FoldedStyle:
		return n.Line, n.Column
	}
	if line != 1 || strings.Contains(n.Value, "\n") || n.Line-1 >= len(lines) {
		return n.Line, n.Column
	}
	off := 0
	if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
		off = 1
	}
	return n.Line, n.Column + off + col - 1
}

func validURL(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}
