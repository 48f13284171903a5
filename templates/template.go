package templates

import (
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

	"github.com/scrmgw/scrmgw/templates/yamlcheck"
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
// files, as an ErrorList, each naming its file by its path.
func LoadDir(dir string, opts ...Option) (*Registry, error) {
	return load(os.DirFS(dir), dir, opts...)
}

// LoadFS is LoadDir for the root of a file system, such as an embed.FS;
// errors name files by their names there.
func LoadFS(fsys fs.FS, opts ...Option) (*Registry, error) {
	return load(fsys, "", opts...)
}

// load loads the YAML files of the root of fsys, naming each in errors
// by its name joined to dir.
func load(fsys fs.FS, dir string, opts ...Option) (*Registry, error) {
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
		name := e.Name()
		if dir != "" {
			name = filepath.Join(dir, name)
		}
		errs = appendErrors(errs, r.Add(name, data))
	}
	if err := errs.Err(); err != nil {
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
	d := &fileDecoder{Checker: yamlcheck.Checker{File: filename, Noun: "template"}, channels: r.channels}
	t := d.decode(data)
	if t != nil {
		r.mu.Lock()
		if prev, ok := r.templates[t.ID]; ok {
			d.ErrorAt(1, 1, "", "template id %s is already defined in %s", t.ID, prev.File)
		} else if len(d.Errs) == 0 {
			r.templates[t.ID] = t
		}
		r.mu.Unlock()
	}
	return d.Errs.Err()
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
	yamlcheck.Checker
	id       string
	channels Channels
}

// setID names the template in the errors reported from now on.
func (d *fileDecoder) setID(id string) {
	d.id = id
	d.Subject = "template " + id
}

func (d *fileDecoder) decode(data []byte) (t *Template) {
	d.setID(strings.TrimSuffix(path.Base(filepath.ToSlash(d.File)), path.Ext(d.File)))
	root := d.Parse(data)
	if root == nil {
		if len(d.Errs) == 0 {
			d.ErrorAt(1, 1, "", "empty file: a template needs locales")
		}
		return nil
	}
	t = &Template{File: d.File}
	var locales *yaml.Node
	for _, kv := range d.Mapping(root, "", "a template: a mapping with id, description and locales", []string{"id", "description", "locales"}) {
		key, val := kv.Key, kv.Val
		switch key.Value {
		case "id":
			if s, ok := d.Str(val, "id", "a text"); ok {
				if !idRE.MatchString(s) {
					d.Errorf(val, "id", "bad template id %q: use lowercase letters, digits and _, starting with a letter", s)
				} else {
					d.setID(s)
				}
			}
		case "description":
			t.Description, _ = d.Str(val, "description", "a text")
		case "locales":
			locales = val
		}
	}
	t.ID = d.id
	if !idRE.MatchString(t.ID) {
		d.ErrorAt(1, 1, "", "the file name %s is not a template id: set id, with lowercase letters, digits and _", path.Base(d.File))
	}
	if locales == nil {
		d.Errorf(root, "", "missing locales: a template needs at least one locale, e.g. zh")
		return t
	}
	for _, kv := range d.Mapping(locales, "locales", "a mapping (key: value lines)", nil) {
		key, val := kv.Key, kv.Val
		if !localeRE.MatchString(key.Value) {
			d.Errorf(key, key.Value, "bad locale %q: use a language tag such as zh, en or zh-TW", key.Value)
			continue
		}
		t.locales = append(t.locales, d.localeSet(key.Value, val))
	}
	if locales.Kind == yaml.MappingNode && len(locales.Content) == 0 {
		d.Errorf(locales, "locales", "no locales: add at least one, e.g. zh")
	}
	return t
}

func (d *fileDecoder) localeSet(name string, n *yaml.Node) *localeSet {
	l := &localeSet{name: name, variants: make(map[string]*variant)}
	var keys []string // nil: any channel
	if d.channels != nil {
		keys = append([]string{DefaultVariant}, sortedKeys(d.channels)...)
	}
	for _, kv := range d.Mapping(n, name, "a mapping (key: value lines)", keys) {
		key, val := kv.Key, kv.Val
		if v := d.variant(yamlcheck.JoinPath(name, key.Value), key.Value, val); v != nil {
			l.variants[key.Value] = v
		}
	}
	if len(l.variants) == 0 && n.Kind == yaml.MappingNode && len(n.Content) == 0 {
		d.Errorf(n, name, "no variants: add default (a text used on every channel) or one per channel")
	}
	return l
}

// variant decodes one variant: a plain text (default: 你好) or a mapping
// with kind and the kind's fields.
func (d *fileDecoder) variant(p, channel string, n *yaml.Node) *variant {
	v := &variant{kind: KindText, path: p}
	var fields []yamlcheck.Pair
	scalar := false
	switch n.Kind {
	case yaml.ScalarNode:
		scalar = true
		key := &yaml.Node{Kind: yaml.ScalarNode, Value: "text", Line: n.Line, Column: n.Column}
		fields = []yamlcheck.Pair{{Key: key, Val: n}}
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
		for _, kv := range d.Mapping(n, p, "a mapping (key: value lines)", append([]string{"kind"}, allowed...)) {
			if kv.Key.Value == "kind" {
				s, _ := d.Str(kv.Val, yamlcheck.JoinPath(p, "kind"), "a text")
				v.kind = s
				if _, ok := kinds[s]; !ok {
					d.unknownKind(kv.Val, yamlcheck.JoinPath(p, "kind"), channel, s)
					return nil
				}
				if channel == DefaultVariant && s != KindText {
					d.Errorf(kv.Val, yamlcheck.JoinPath(p, "kind"), "the default variant must be kind text: it is sent on channels that take nothing else")
					return nil
				}
				if sends, known := d.channels[channel]; known && !slices.Contains(sends, s) {
					d.Errorf(kv.Val, yamlcheck.JoinPath(p, "kind"), "%s cannot send %s messages; it sends %s", channel, s, strings.Join(d.kindsOf(channel), ", "))
					return nil
				}
				continue
			}
			fields = append(fields, kv)
		}
	default:
		d.Errorf(n, p, "expected a text or a mapping with kind and its fields, got %s", yamlcheck.Describe(n))
		return nil
	}
	spec := kinds[v.kind]
	for _, kv := range fields {
		key, val := kv.Key, kv.Val
		fp := yamlcheck.JoinPath(p, key.Value)
		if scalar {
			fp = p
		}
		i := slices.IndexFunc(spec.fields, func(f fieldSpec) bool { return f.name == key.Value })
		if i < 0 {
			d.Errorf(key, fp, "a %s message has no %s; %s", v.kind, key.Value, d.kindWithField(channel, key.Value))
			continue
		}
		s, ok := d.Str(val, fp, "a text")
		if !ok {
			continue
		}
		text, err := ParseText(d.id+"/"+fp, s)
		if err != nil {
			d.ErrorsIn(val, fp, err)
			continue
		}
		if lit, ok := text.static(); ok && spec.fields[i].url && lit != "" && !validURL(lit) {
			d.Errorf(val, fp, "%s must be an http:// or https:// link, got %q", key.Value, lit)
		}
		v.fields = append(v.fields, textField{spec: spec.fields[i], text: text})
	}
	for _, f := range spec.fields {
		if f.required && !slices.ContainsFunc(v.fields, func(tf textField) bool { return tf.spec.name == f.name }) &&
			!slices.ContainsFunc(fields, func(kv yamlcheck.Pair) bool { return kv.Key.Value == f.name }) {
			d.Errorf(n, p, "a %s message needs %s", v.kind, f.name)
		}
	}
	for _, group := range spec.oneOf {
		var given []*yaml.Node
		for _, kv := range fields {
			if slices.Contains(group, kv.Key.Value) {
				given = append(given, kv.Key)
			}
		}
		switch {
		case len(given) == 0:
			d.Errorf(n, p, "a %s message needs one of %s", v.kind, strings.Join(group, ", "))
		case len(given) > 1:
			d.Errorf(given[1], yamlcheck.JoinPath(p, given[1].Value), "a %s message takes one of %s, not both: %s is given too", v.kind, strings.Join(group, ", "), given[0].Value)
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
	if s := yamlcheck.DidYouMean(kind, options); s != "" {
		d.Errorf(n, p, "unknown kind %q%s", kind, s)
		return
	}
	if _, known := d.channels[channel]; known || channel == DefaultVariant {
		d.Errorf(n, p, "unknown kind %q; %s sends %s", kind, channel, strings.Join(options, ", "))
		return
	}
	d.Errorf(n, p, "unknown kind %q; the kinds are %s", kind, strings.Join(options, ", "))
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

func validURL(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}
