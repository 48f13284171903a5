package workflows

import (
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/templates/yamlcheck"
)

func (sf *stepFields) assignGuide(val *yaml.Node) *AssignGuide {
	d := sf.d
	a := &AssignGuide{Strategy: AssignNearest, Fallback: AssignNone, KeepCurrent: true}
	// online_pool is the former spelling of pool.
	canon := func(s string) string {
		if s == AssignOnlinePool {
			return AssignPool
		}
		return s
	}
	if !yamlcheck.IsNull(val) {
		s, _ := d.OneOf(val, yamlcheck.JoinPath(sf.path, "assign_guide"), "assignment", []string{AssignNearest, AssignStore, AssignPool, AssignOnlinePool})
		a.Strategy = canon(s)
	}
	if n, path, ok := sf.get("store_id"); ok {
		a.StoreID, _ = d.matching(n, path, "store id", storeIDRE, "letters, digits, _, - and .")
		if a.Strategy != AssignStore {
			d.Errorf(n, path, "store_id is for assign_guide: store, not %s", a.Strategy)
		}
	}
	if n, path, ok := sf.get("max_distance_km"); ok {
		v, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || err != nil || !(v > 0 && v <= 20000) {
			d.Errorf(n, path, "max_distance_km must be a number of kilometres above 0, got %s", yamlcheck.Describe(n))
		} else {
			a.MaxDistanceKm = v
		}
		if a.Strategy != AssignNearest && !(a.Strategy == AssignStore && sf.has("fallback", AssignNearest)) {
			d.Errorf(n, path, "max_distance_km is for the nearest assignment (assign_guide: nearest, or fallback: nearest), not %s", a.Strategy)
		}
	}
	if n, path, ok := sf.get("fallback"); ok {
		options := map[string][]string{
			AssignNearest: {AssignPool, AssignOnlinePool, AssignNone},
			AssignStore:   {AssignNearest, AssignPool, AssignOnlinePool, AssignNone},
			AssignPool:    {AssignNone},
		}[a.Strategy]
		all := []string{AssignNearest, AssignPool, AssignOnlinePool, AssignNone}
		if s, ok := d.OneOf(n, path, "fallback", all); ok {
			if slices.Contains(options, s) {
				a.Fallback = canon(s)
			} else {
				d.Errorf(n, path, "fallback %s does not apply to assign_guide: %s; use %s", s, a.Strategy, yamlcheck.Enumerate(slices.DeleteFunc(slices.Clone(options), func(o string) bool { return o == AssignOnlinePool }), "or"))
			}
		}
	}
	if n, path, ok := sf.get("keep_current"); ok {
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.Errorf(n, path, "keep_current must be true or false, got %s", yamlcheck.Describe(n))
		}
		a.KeepCurrent = b
	}
	return a
}

var storeIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// has reports whether the step has field k with the scalar value v.
func (sf *stepFields) has(k, v string) bool {
	p, ok := sf.f[k]
	return ok && p.Val.Kind == yaml.ScalarNode && (p.Val.Value == v)
}

var couponRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

func (sf *stepFields) send(val *yaml.Node) *Send {
	d := sf.d
	s := &Send{Channel: ChannelMember, Via: ViaBrand, Priority: PriorityNormal}
	channels := append([]string{ChannelMember}, d.opts.Channels...)
	if n, path, ok := sf.get("channel"); ok {
		if len(d.opts.Channels) > 0 {
			s.Channel, _ = d.OneOf(n, path, "channel", channels)
		} else if c, ok := d.Str(n, path, "a channel"); ok {
			s.Channel = c
		}
	}
	if n, path, ok := sf.get("via"); ok {
		s.Via, _ = d.OneOf(n, path, "via", []string{ViaBrand, ViaGuide})
	}
	if n, path, ok := sf.get("priority"); ok {
		s.Priority, _ = d.OneOf(n, path, "priority", []string{PriorityNormal, PriorityHigh})
	}
	if n, path, ok := sf.get("when_capped"); ok {
		if w, ok := d.OneOf(n, path, "cap action", []string{string(CapDelay), string(CapSkip)}); ok {
			s.WhenCapped = CapAction(w)
		}
	}
	if n, path, ok := sf.get("coupon"); ok {
		s.Coupon, _ = d.matching(n, path, "coupon batch id", couponRE, "letters, digits, _ and -")
	}
	if n, path, ok := sf.get("valid_until"); ok {
		s.ValidUntil = d.expr(n, path, resultTime)
	}
	path := yamlcheck.JoinPath(sf.path, "send")
	id, ok := d.Str(val, path, "a template id")
	if !ok {
		return s
	}
	s.Template = id
	if d.opts.Templates == nil {
		return s
	}
	t, ok := d.template(val, path, id)
	if !ok {
		return s
	}
	targets := []string{s.Channel}
	if s.Channel == ChannelMember {
		targets = d.opts.Channels
	}
	for _, c := range targets {
		if !t.CanRender(c) {
			d.Errorf(val, path, "template %q has neither a %s variant nor a default one, so it cannot be sent on %s", id, c, c)
			continue
		}
		sends, ok := d.opts.MemberKinds[c]
		if !ok {
			continue
		}
		for _, k := range t.Kinds(c) {
			if !slices.Contains(sends, k) {
				d.Errorf(val, path, "template %q renders a %s message on %s, which %s cannot send to a member; it sends %s", id, k, c, c, strings.Join(sends, ", "))
			}
		}
	}
	if t.Uses("Coupon") && s.Coupon == "" {
		d.Errorf(val, path, "template %q shows a coupon (.Coupon) but this step issues none: add coupon: with the coupon batch", id)
	}
	return s
}

func (sf *stepFields) guideTask(val *yaml.Node) *GuideTask {
	d := sf.d
	g := &GuideTask{DueIn: Day}
	g.Title, g.TitleSource = sf.text(val, yamlcheck.JoinPath(sf.path, "guide_task"), "a task title")
	if n, path, ok := sf.get("note"); ok {
		g.Note, _ = sf.text(n, path, "a note")
	}
	if n, path, ok := sf.get("due_in"); ok {
		if v, ok := d.duration(n, path); ok {
			g.DueIn = v
		}
	}
	return g
}

// text parses an inline template text, such as a guide task's title.
func (sf *stepFields) text(n *yaml.Node, path, what string) (*templates.Text, string) {
	d := sf.d
	s, ok := d.Str(n, path, what)
	if !ok {
		return nil, ""
	}
	if strings.TrimSpace(s) == "" {
		d.Errorf(n, path, "empty %s", what)
		return nil, s
	}
	t, err := templates.ParseText(path, s)
	if err != nil {
		d.ErrorsIn(n, path, err)
		return nil, s
	}
	return t, s
}

func (sf *stepFields) wait(val *yaml.Node) *Wait {
	d := sf.d
	path := yamlcheck.JoinPath(sf.path, "wait")
	w := &Wait{}
	if val.Kind != yaml.MappingNode {
		w.For, _ = d.duration(val, path)
		return w
	}
	f := d.Fields(val, path, "a duration, or a mapping with for or until", []string{"for", "until"})
	p1, hasFor := f["for"]
	p2, hasUntil := f["until"]
	switch {
	case hasFor && hasUntil:
		d.Errorf(p2.Key, path+".until", "a wait is for a duration or until a time, not both")
	case hasFor:
		w.For, _ = d.duration(p1.Val, path+".for")
	case hasUntil:
		w.Until = d.expr(p2.Val, path+".until", resultTime)
	default:
		if f != nil {
			d.Errorf(val, path, "missing for or until: wait: 3d, or wait: {until: order.purchased_at + days(30)}")
		}
	}
	return w
}

func (sf *stepFields) waitFor(val *yaml.Node) *WaitFor {
	d := sf.d
	w := &WaitFor{}
	w.Event, _ = d.event(val, yamlcheck.JoinPath(sf.path, "wait_for"), allEvents)
	if n, path, ok := sf.get("filter"); ok {
		w.Filter = d.expr(n, path, resultBool)
	}
	if n, path, ok := sf.get("timeout"); ok {
		w.Timeout, _ = d.duration(n, path)
	} else {
		d.Errorf(sf.n, sf.path, "missing timeout: how long to wait for %s, e.g. timeout: 7d", w.Event)
	}
	sf.target("on_event", &w.OnEvent)
	sf.target("on_timeout", &w.OnTimeout)
	return w
}

func (sf *stepFields) ifStep(val *yaml.Node) *If {
	st := &If{Cond: sf.d.expr(val, yamlcheck.JoinPath(sf.path, "if"), resultBool)}
	then := sf.target("then", &st.Then)
	els := sf.target("else", &st.Else)
	if !then && !els {
		sf.d.Errorf(sf.n, sf.path, "an if needs then or else: the step to go to when the condition holds, or when it does not (the other goes on to the next step)")
	}
	return st
}

func (sf *stepFields) switchStep(val *yaml.Node) *Switch {
	d := sf.d
	st := &Switch{Value: d.expr(val, yamlcheck.JoinPath(sf.path, "switch"), resultValue)}
	var kind reflect.Kind
	if st.Value != nil {
		if t := st.Value.program.Node().Type(); t != nil {
			kind = t.Kind()
		}
	}
	if n, path, ok := sf.get("cases"); ok {
		pairs, ok := d.Pairs(n, path, "a mapping of values to step ids, like gold: vip_offer")
		if ok && len(pairs) == 0 {
			d.Errorf(n, path, "no cases: map values to step ids, like gold: vip_offer")
		}
		st.Cases = make([]Case, len(pairs))
		for i, p := range pairs {
			st.Cases[i].Label = p.Key.Value
			d.checkCase(p.Key, yamlcheck.JoinPath(path, p.Key.Value), kind)
			cp := yamlcheck.JoinPath(path, p.Key.Value)
			if s, ok := d.Str(p.Val, cp, "a step id, or end"); ok {
				st.Cases[i].To = s
				d.refs = append(d.refs, ref{node: p.Val, path: cp, target: &st.Cases[i].To})
			} else {
				st.Cases[i].To = End
			}
		}
	} else {
		d.Errorf(sf.n, sf.path, "missing cases: map values to step ids, like gold: vip_offer")
	}
	sf.target("default", &st.Default)
	return st
}

// checkCase reports a case that can never equal a switch value of the
// given kind.
func (d *decoder) checkCase(key *yaml.Node, path string, kind reflect.Kind) {
	v := key.Value
	switch kind {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			d.Errorf(key, path, "case %q is not a whole number, but the switch value is one", v)
		}
	case reflect.Float32, reflect.Float64:
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			d.Errorf(key, path, "case %q is not a number, but the switch value is one", v)
		}
	case reflect.Bool:
		if _, err := strconv.ParseBool(v); err != nil {
			d.Errorf(key, path, "case %q is not true or false, but the switch value is", v)
		}
	}
}

func (sf *stepFields) awardPoints(val *yaml.Node) *AwardPoints {
	d := sf.d
	path := yamlcheck.JoinPath(sf.path, "award_points")
	a := &AwardPoints{}
	if s, ok := d.Str(val, path, "a number of points"); ok {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 1 || v > 1_000_000 {
			d.Errorf(val, path, "points must be a whole number from 1 to 1000000, got %q", s)
		}
		a.Points = v
	}
	if n, path, ok := sf.get("reason"); ok {
		a.Reason, _ = d.Str(n, path, "a reason")
	}
	return a
}

var secretNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

func (sf *stepFields) webhook(val *yaml.Node) *Webhook {
	d := sf.d
	path := yamlcheck.JoinPath(sf.path, "webhook")
	h := &Webhook{Event: "workflow.step", Secret: "default", Timeout: 10 * time.Second}
	if s, ok := d.Str(val, path, "an https URL"); ok {
		u, err := url.Parse(s)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			d.Errorf(val, path, "bad webhook URL %q: write a full https:// URL", s)
		case u.Scheme == "http" && u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1":
			d.Errorf(val, path, "webhook URL %q must use https: the request carries member data", s)
		case u.User != nil:
			d.Errorf(val, path, "webhook URL must not carry a user or password: requests are signed with secret instead")
		}
		h.URL = s
	}
	if n, p, ok := sf.get("event"); ok {
		h.Event, _ = d.Str(n, p, "an event type")
	}
	if n, p, ok := sf.get("secret"); ok {
		if s, ok := d.Str(n, p, "the name of a signing secret"); ok {
			if !secretNameRE.MatchString(s) {
				d.Errorf(n, p, "secret names a signing secret configured on the gateway (such as crm); never write the secret itself in a workflow")
			}
			h.Secret = s
		}
	}
	if n, p, ok := sf.get("timeout"); ok {
		if v, ok := d.duration(n, p); ok {
			if v > 30*time.Second {
				d.Errorf(n, p, "webhook timeout must be at most 30s, got %s", formatDuration(v))
			}
			h.Timeout = v
		}
	}
	return h
}

func (sf *stepFields) sendGroups(val *yaml.Node) *SendGroups {
	d := sf.d
	g := &SendGroups{To: GroupsOfGuide}
	if n, path, ok := sf.get("to"); ok {
		g.To, _ = d.OneOf(n, path, "send_groups target", []string{GroupsOfGuide, GroupsOfStore})
	}
	path := yamlcheck.JoinPath(sf.path, "send_groups")
	id, ok := d.Str(val, path, "a template id")
	if !ok {
		return g
	}
	g.Template = id
	if d.opts.Templates == nil {
		return g
	}
	t, ok := d.template(val, path, id)
	if !ok {
		return g
	}
	// A group sees the message: nothing of the one member whose run
	// sends it may show.
	for _, f := range []string{"Member", "Order", "Coupon", "MemberCode"} {
		if t.Uses(f) {
			d.Errorf(val, path, "template %q shows .%s, but a message to customer groups is read by everyone in them: it may show the store, the guide, the brand and a live session, nothing of one member", id, f)
		}
	}
	if len(d.opts.Channels) == 0 || d.opts.GroupKinds == nil {
		return g
	}
	var targets []string
	for _, c := range d.opts.Channels {
		if len(d.opts.GroupKinds[c]) > 0 {
			targets = append(targets, c)
		}
	}
	if len(targets) == 0 {
		d.Errorf(val, path, "none of the gateway's channels (%s) has customer groups to send to (WeCom does)", strings.Join(d.opts.Channels, ", "))
		return g
	}
	for _, c := range targets {
		if !t.CanRender(c) {
			d.Errorf(val, path, "template %q has neither a %s variant nor a default one, so it cannot be sent to groups on %s", id, c, c)
			continue
		}
		sends := d.opts.GroupKinds[c]
		for _, k := range t.Kinds(c) {
			if !slices.Contains(sends, k) {
				d.Errorf(val, path, "template %q renders a %s message on %s, which %s cannot send to a customer group; it sends %s", id, k, c, c, strings.Join(sends, ", "))
			}
		}
	}
	return g
}

// template is the template id names, or an error at val (with the
// nearest id, or the list of them) when there is none.
func (d *decoder) template(val *yaml.Node, path, id string) (*templates.Template, bool) {
	t, ok := d.opts.Templates.Lookup(id)
	if !ok {
		if sug := yamlcheck.DidYouMean(id, d.opts.Templates.IDs()); sug != "" {
			d.Errorf(val, path, "unknown template %q%s", id, sug)
		} else {
			d.Errorf(val, path, "unknown template %q; the templates are %s", id, yamlcheck.Enumerate(d.opts.Templates.IDs(), "and"))
		}
	}
	return t, ok
}
