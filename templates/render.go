package templates

import (
	"fmt"
	"slices"
	"strings"
)

// Message is a rendered template, in the shape a channel sends: it maps
// onto adapters.Outbound's Kind, Text and Fields.
type Message struct {
	// Kind is text, news, miniprogram, markdown or action_card.
	Kind string `json:"kind"`
	// Text is the kind's text field (text, markdown and action_card);
	// empty for news and miniprogram.
	Text string `json:"text,omitempty"`
	// Fields holds the kind's other fields by their wire names: title,
	// description, url, picurl, appid, page, pic_media_id, single_title,
	// single_url. An optional field that rendered empty is left out.
	Fields map[string]string `json:"fields,omitempty"`
	// Locale and Variant say what was rendered: the locale after fallback,
	// and the channel's own variant or "default".
	Locale  string `json:"locale"`
	Variant string `json:"variant"`
}

// Render renders template id for a member who reads locale, on channel;
// see Template.Render.
func (r *Registry) Render(id, locale, channel string, data *Data) (*Message, error) {
	t, ok := r.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("rendering %s: %w", id, ErrUnknownTemplate)
	}
	return t.Render(locale, channel, data)
}

// Render renders the template. The locale falls back from the exact tag
// (zh-TW) to its language (zh) and then to the template's first locale;
// the channel's own variant is used when there is one, else the default
// variant. Times in data are shown in data.TimeZone. Every field is
// trimmed of surrounding blank space; a required field that renders empty
// and a link that is not http(s) are errors.
//
// channel is a channel kind (wecom) or the key of one of its instances
// (wecom:acme, see adapters.InstanceKey): every instance of a kind uses
// the kind's variant.
func (t *Template) Render(locale, channel string, data *Data) (*Message, error) {
	l := t.locale(locale)
	if kind, _, ok := strings.Cut(channel, ":"); ok {
		channel = kind
	}
	key := channel
	v := l.variants[channel]
	if v == nil {
		key, v = DefaultVariant, l.variants[DefaultVariant]
	}
	if v == nil {
		return nil, fmt.Errorf("rendering %s (%s, %s): %w", t.ID, l.name, channel, ErrNoVariant)
	}
	if data == nil {
		data = &Data{}
	}
	d, err := data.localize()
	if err != nil {
		return nil, fmt.Errorf("rendering %s (%s, %s): %w", t.ID, l.name, channel, err)
	}
	m := &Message{Kind: v.kind, Locale: l.name, Variant: key}
	for _, f := range v.fields {
		s, err := f.text.execute(d)
		if err != nil {
			return nil, fmt.Errorf("rendering %s (%s, %s) %s: %w", t.ID, l.name, channel, f.spec.name, err)
		}
		switch {
		case s == "" && f.spec.required:
			return nil, fmt.Errorf("rendering %s (%s, %s): %s rendered empty", t.ID, l.name, channel, f.spec.name)
		case s != "" && f.spec.url && !validURL(s):
			return nil, fmt.Errorf("rendering %s (%s, %s): %s is not an http(s) link: %q", t.ID, l.name, channel, f.spec.name, s)
		case f.spec.name == "text":
			m.Text = s
		case s != "":
			if m.Fields == nil {
				m.Fields = make(map[string]string)
			}
			m.Fields[f.spec.name] = s
		}
	}
	for _, group := range kinds[v.kind].oneOf {
		if !slices.ContainsFunc(group, func(f string) bool { return m.Fields[f] != "" }) {
			return nil, fmt.Errorf("rendering %s (%s, %s): %s rendered empty", t.ID, l.name, channel, strings.Join(group, " or "))
		}
	}
	return m, nil
}

func (t *Template) locale(name string) *localeSet {
	base, _, _ := strings.Cut(name, "-")
	base, _, _ = strings.Cut(base, "_")
	var byBase *localeSet
	for _, l := range t.locales {
		if l.name == name {
			return l
		}
		if byBase == nil && l.name == base {
			byBase = l
		}
	}
	if byBase != nil {
		return byBase
	}
	return t.locales[0]
}
