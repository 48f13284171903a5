// Package events is the vocabulary of the event log and the schema of the
// events the brand's systems post: the event types (one constant each),
// the data of each commerce type (member sign-ups, purchases, refunds,
// visits, tags) with its validation, and the order as logged events carry
// it to workflows. It imports nothing of scrmgw, so the webhook channel's
// wiring, the commerce ingester, the API, the importer, the store and the
// workflow language all share it.
package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The event types the brand's systems post, each with a schema
// (docs/events.md). A brand's own types start with "x." and only need
// data.member.
const (
	TypeMemberSignedUp    = "member.signed_up"
	TypeMemberUpdated     = "member.updated"
	TypeMemberTagged      = "member.tagged"
	TypeMemberUntagged    = "member.untagged"
	TypePurchaseCompleted = "purchase.completed"
	TypePurchaseRefunded  = "purchase.refunded"
	TypeStoreVisited      = "store.visited"
	// TypeCouponRedeemed: the till took a coupon against an order (the
	// POS posts it, or scrmgw logs it for POST /coupons/redeem).
	TypeCouponRedeemed = "coupon.redeemed"
	// TypeLiveJoined and TypeLiveLeft: a member entered or left a live
	// session's stream (the live platform posts them).
	TypeLiveJoined = "live.joined"
	TypeLiveLeft   = "live.left"
	// TypeLiveOrdered: a member ordered during a live session; the order
	// is recorded as a purchase credited to the session's store and the
	// member's guide.
	TypeLiveOrdered = "live.ordered"
)

// The event types scrmgw logs itself.
const (
	// TypeMemberJoined: a person became the brand's member (a WeCom
	// contact added, a bot enrolment, a sign-up).
	TypeMemberJoined = "member.joined"
	// TypeMemberLeft: a member deleted their guide's WeCom contact.
	TypeMemberLeft = "member.left"
	// TypeMessageReceived: a known member wrote to the brand.
	TypeMessageReceived = "message.received"
	// TypeGuideTaskCompleted: a guide completed a workflow run's task.
	TypeGuideTaskCompleted = "guide_task.completed"
	// TypeCouponUnredeemed: the order a coupon was redeemed on was
	// refunded in full; the coupon can be used again until it expires.
	TypeCouponUnredeemed = "coupon.unredeemed"
	// TypeLiveScheduled: a store's (or brand's) live session was
	// scheduled; logged for each member it is announced to (the store's
	// bound members), so workflows invite and remind them.
	TypeLiveScheduled = "live.scheduled"
	// TypeLiveCancelled: a live session was cancelled; logged for each
	// member it was announced to, so workflows stop inviting them
	// (exit: live.cancelled).
	TypeLiveCancelled = "live.cancelled"
)

// EventTypes are the CloudEvents types accepted, besides "x." types.
var EventTypes = []string{
	TypeMemberSignedUp, TypeMemberUpdated, TypeMemberTagged, TypeMemberUntagged,
	TypePurchaseCompleted, TypePurchaseRefunded, TypeStoreVisited, TypeCouponRedeemed,
	TypeLiveJoined, TypeLiveLeft, TypeLiveOrdered,
}

// KnownType reports whether t is accepted: a schema type or "x.<name>".
func KnownType(t string) bool {
	for _, k := range EventTypes {
		if t == k {
			return true
		}
	}
	return isCustomType(t)
}

func isCustomType(t string) bool {
	name, ok := strings.CutPrefix(t, "x.")
	if !ok || name == "" || len(t) > 64 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Money is an amount in fen (cents). In JSON it is yuan, as a number or a
// string with at most two decimals: 199, 199.5, "199.00".
type Money int64

// ParseMoney reads yuan with at most two decimals.
func ParseMoney(s string) (Money, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	whole, frac, _ := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	if whole == "" || len(frac) > 2 || strings.ContainsAny(whole+frac, "+-eE") {
		return 0, fmt.Errorf("want yuan with at most 2 decimals, got %q", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > math.MaxInt64/100-1 {
		return 0, fmt.Errorf("want yuan with at most 2 decimals, got %q", s)
	}
	f := int64(0)
	if frac != "" {
		if f, err = strconv.ParseInt((frac + "0")[:2], 10, 64); err != nil {
			return 0, fmt.Errorf("want yuan with at most 2 decimals, got %q", s)
		}
	}
	v := w*100 + f
	if neg {
		v = -v
	}
	return Money(v), nil
}

// UnmarshalJSON reads a number or a string of yuan.
func (m *Money) UnmarshalJSON(b []byte) error {
	s := string(b)
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := ParseMoney(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// MarshalJSON writes yuan as a number with two decimals.
func (m Money) MarshalJSON() ([]byte, error) { return []byte(m.String()), nil }

// String is yuan with two decimals.
func (m Money) String() string {
	sign, v := "", int64(m)
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// Location is a WGS-84 point.
type Location struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

// IdentityRef is a member's id on a channel: wecom (external_userid),
// wecom_unionid, dingtalk, or a system of the brand's.
type IdentityRef struct {
	Channel    string `json:"channel"`
	ExternalID string `json:"external_id"`
}

// MemberData is the data of member.signed_up and member.updated.
type MemberData struct {
	Member     MemberRef     `json:"member"`
	Name       string        `json:"name,omitempty"`
	HomeStore  string        `json:"home_store,omitempty"`
	Location   *Location     `json:"location,omitempty"`
	Identities []IdentityRef `json:"identities,omitempty"`
	Level      string        `json:"level,omitempty"`
	Tags       []string      `json:"tags,omitempty"`
	// TimeZone is the member's IANA zone (send rules with time_zone:
	// member use it).
	TimeZone string `json:"time_zone,omitempty"`
}

// PurchaseData is the data of purchase.completed.
type PurchaseData struct {
	Member  MemberRef `json:"member"`
	OrderID string    `json:"order_id"`
	// Store is the store of purchase (absent for online orders); Guide
	// the guide the POS credits with the sale.
	Store    string         `json:"store,omitempty"`
	Guide    string         `json:"guide,omitempty"`
	Channel  string         `json:"channel,omitempty"`
	Currency string         `json:"currency,omitempty"`
	PlacedAt *time.Time     `json:"placed_at,omitempty"`
	Items    []PurchaseItem `json:"items"`
	// ShareToken is the token of the guide's share link the order was
	// placed through (the shop passes it on): the order is credited to
	// the guide and store it names.
	ShareToken string `json:"share_token,omitempty"`
}

// LiveData is the data of live.joined and live.left: the member and the
// live session (its id as scheduled).
type LiveData struct {
	Member MemberRef `json:"member"`
	Live   string    `json:"live"`
}

// LiveOrderData is the data of live.ordered: a purchase placed during a
// live session.
type LiveOrderData struct {
	PurchaseData
	Live string `json:"live"`
}

// PurchaseItem is a line of a purchase.
type PurchaseItem struct {
	SKU      string `json:"sku"`
	Name     string `json:"name,omitempty"`
	Category string `json:"category,omitempty"`
	Qty      int    `json:"qty"`
	// Price is the unit price paid.
	Price Money `json:"price"`
	// ReplenishDays overrides the product catalogue's.
	ReplenishDays *int `json:"replenish_days,omitempty"`
}

// RefundData is the data of purchase.refunded.
type RefundData struct {
	Member     MemberRef    `json:"member"`
	OrderID    string       `json:"order_id"`
	RefundID   string       `json:"refund_id"`
	RefundedAt *time.Time   `json:"refunded_at,omitempty"`
	Items      []RefundLine `json:"items,omitempty"`
}

// RefundLine returns units of an order line, named by its line number
// (1-based) or SKU. No lines means the whole of what is left.
type RefundLine struct {
	Line int    `json:"line,omitempty"`
	SKU  string `json:"sku,omitempty"`
	Qty  int    `json:"qty"`
}

// VisitData is the data of store.visited.
type VisitData struct {
	Member MemberRef `json:"member"`
	Store  string    `json:"store"`
}

// CouponData is the data of coupon.redeemed: the coupon's code, the
// order it was taken against and the store of the till. The coupon names
// its member, so data.member is optional.
type CouponData struct {
	Member  MemberRef `json:"member,omitzero"`
	Code    string    `json:"code"`
	OrderID string    `json:"order_id"`
	Store   string    `json:"store,omitempty"`
}

// TagData is the data of member.tagged and member.untagged.
type TagData struct {
	Member MemberRef `json:"member"`
	Tag    string    `json:"tag"`
}

// MemberRef is how an event's data names its member: data.member.
type MemberRef struct {
	Phone    string `json:"phone,omitempty"`
	CRMID    string `json:"crm_id,omitempty"`
	MemberID int64  `json:"member_id,omitempty"`
}

// checker collects schema faults with their JSON paths.
type checker struct {
	faults []string
	// phone, when set, checks data.member.phone.
	phone func(string) error
	// shareToken, when set, checks data.share_token.
	shareToken func(string) error
}

// Checks are the checks of values the schema alone cannot judge.
type Checks struct {
	// Phone refuses member phone numbers it cannot read.
	Phone func(string) error
	// ShareToken refuses share link tokens that do not verify (tampered,
	// made up, expired).
	ShareToken func(string) error
}

func (c *checker) fault(path, format string, args ...any) {
	c.faults = append(c.faults, path+": "+fmt.Sprintf(format, args...))
}

// object returns v as an object, or records a fault.
func (c *checker) object(path string, v any, required bool) map[string]any {
	if v == nil {
		if required {
			c.fault(path, "is required")
		}
		return nil
	}
	o, ok := v.(map[string]any)
	if !ok {
		c.fault(path, "must be an object")
	}
	return o
}

func (c *checker) str(o map[string]any, path, key string, required bool, max int) string {
	v, ok := o[key]
	if !ok || v == nil {
		if required {
			c.fault(path+"."+key, "is required")
		}
		return ""
	}
	s, ok := v.(string)
	switch {
	case !ok:
		c.fault(path+"."+key, "must be a string")
	case required && strings.TrimSpace(s) == "":
		c.fault(path+"."+key, "must not be empty")
	case len(s) > max:
		c.fault(path+"."+key, "must be at most %d bytes", max)
	}
	return s
}

func (c *checker) integer(o map[string]any, path, key string, required bool, min, max int64) (int64, bool) {
	v, ok := o[key]
	if !ok || v == nil {
		if required {
			c.fault(path+"."+key, "is required")
		}
		return 0, false
	}
	n, ok := v.(json.Number)
	if !ok {
		c.fault(path+"."+key, "must be a number")
		return 0, false
	}
	i, err := n.Int64()
	if err != nil {
		c.fault(path+"."+key, "must be a whole number")
		return 0, false
	}
	if i < min {
		c.fault(path+"."+key, "must be >= %d", min)
		return 0, false
	}
	if i > max {
		c.fault(path+"."+key, "must be <= %d", max)
		return 0, false
	}
	return i, true
}

func (c *checker) money(o map[string]any, path, key string) {
	v, ok := o[key]
	if !ok || v == nil {
		c.fault(path+"."+key, "is required")
		return
	}
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		c.fault(path+"."+key, "must be an amount in yuan (number or string)")
		return
	}
	m, err := ParseMoney(s)
	if err != nil {
		c.fault(path+"."+key, "%v", err)
		return
	}
	if m < 0 {
		c.fault(path+"."+key, "must be >= 0")
	}
}

func (c *checker) timestamp(o map[string]any, path, key string) {
	v, ok := o[key]
	if !ok || v == nil {
		return
	}
	s, ok := v.(string)
	if _, err := time.Parse(time.RFC3339, s); !ok || err != nil {
		c.fault(path+"."+key, "want an RFC 3339 time such as 2026-11-25T10:00:00+08:00")
	}
}

func (c *checker) array(o map[string]any, path, key string, required bool, max int) []any {
	v, ok := o[key]
	if !ok || v == nil {
		if required {
			c.fault(path+"."+key, "is required")
		}
		return nil
	}
	a, ok := v.([]any)
	switch {
	case !ok:
		c.fault(path+"."+key, "must be an array")
	case required && len(a) == 0:
		c.fault(path+"."+key, "must not be empty")
	case len(a) > max:
		c.fault(path+"."+key, "at most %d entries", max)
	}
	return a
}

func (c *checker) member(data map[string]any, path string) {
	m := c.object(path+".member", data["member"], true)
	if m == nil {
		return
	}
	p := path + ".member"
	phone := c.str(m, p, "phone", false, 32)
	if phone != "" && c.phone != nil {
		if err := c.phone(phone); err != nil {
			c.fault(p+".phone", "%v", err)
		}
	}
	crm := c.str(m, p, "crm_id", false, 128)
	id, _ := c.integer(m, p, "member_id", false, 1, math.MaxInt64)
	if phone == "" && crm == "" && id == 0 {
		c.fault(p, "want phone, crm_id or member_id")
	}
}

// maxItems caps the lines of an order.
const maxItems = 500

// Check checks an event's type and its data against the type's schema.
// It returns every fault as "path: message": the path is "type" for an
// unknown type (the data is not checked then), else where the fault sits
// in the data ("data.items[0].qty"). phone, when set, refuses member
// phone numbers it cannot read.
func Check(typ string, data json.RawMessage, phone func(string) error) []string {
	return CheckWith(typ, data, Checks{Phone: phone})
}

// CheckWith is Check with the checks of c.
func CheckWith(typ string, data json.RawMessage, c Checks) []string {
	if !KnownType(typ) {
		return []string{fmt.Sprintf("type: %q is not one of %s, or a custom type x.<name>", typ, strings.Join(EventTypes, ", "))}
	}
	return checkData(typ, data, "data", c)
}

// checkData checks an event's data against its type's schema; path is
// where the data sits in the request ("data" or "events[3].data"). It
// returns every fault, each prefixed with its JSON path.
func checkData(typ string, raw json.RawMessage, path string, checks Checks) []string {
	c := &checker{phone: checks.Phone, shareToken: checks.ShareToken}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if len(raw) == 0 {
		c.fault(path, "is required")
		return c.faults
	}
	if err := dec.Decode(&v); err != nil {
		c.fault(path, "not valid JSON: %v", err)
		return c.faults
	}
	data := c.object(path, v, true)
	if data == nil {
		return c.faults
	}
	if typ != TypeCouponRedeemed || data["member"] != nil {
		c.member(data, path)
	}
	switch typ {
	case TypeMemberSignedUp, TypeMemberUpdated:
		c.str(data, path, "name", false, 200)
		c.str(data, path, "home_store", false, 64)
		c.str(data, path, "level", false, 32)
		if tz := c.str(data, path, "time_zone", false, 64); tz != "" {
			if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
				c.fault(path+".time_zone", "unknown time zone %q (want an IANA name such as Asia/Shanghai)", tz)
			}
		}
		if loc := c.object(path+".location", data["location"], false); loc != nil {
			p := path + ".location"
			lat, lok := loc["lat"].(json.Number)
			lng, gok := loc["lng"].(json.Number)
			la, _ := lat.Float64()
			ln, _ := lng.Float64()
			if !lok || !gok {
				c.fault(p, "want lat and lng numbers")
			} else if la < -90 || la > 90 || ln < -180 || ln > 180 {
				c.fault(p, "lat must be within ±90 and lng within ±180")
			}
		}
		for i, it := range c.array(data, path, "identities", false, 20) {
			p := fmt.Sprintf("%s.identities[%d]", path, i)
			if o := c.object(p, it, true); o != nil {
				c.str(o, p, "channel", true, 32)
				c.str(o, p, "external_id", true, 128)
			}
		}
		for i, t := range c.array(data, path, "tags", false, 100) {
			if s, ok := t.(string); !ok || s == "" || len(s) > 64 {
				c.fault(fmt.Sprintf("%s.tags[%d]", path, i), "must be a string of 1-64 bytes")
			}
		}
	case TypePurchaseCompleted, TypeLiveOrdered:
		if typ == TypeLiveOrdered {
			c.str(data, path, "live", true, 64)
		}
		if tok := c.str(data, path, "share_token", false, 512); tok != "" && c.shareToken != nil {
			if err := c.shareToken(tok); err != nil {
				c.fault(path+".share_token", "%v", err)
			}
		}
		c.str(data, path, "order_id", true, 100)
		c.str(data, path, "store", false, 64)
		c.str(data, path, "guide", false, 64)
		c.str(data, path, "channel", false, 32)
		if cur := c.str(data, path, "currency", false, 3); cur != "" && cur != "CNY" {
			c.fault(path+".currency", "only CNY is supported, got %q", cur)
		}
		c.timestamp(data, path, "placed_at")
		for i, it := range c.array(data, path, "items", true, maxItems) {
			p := fmt.Sprintf("%s.items[%d]", path, i)
			o := c.object(p, it, true)
			if o == nil {
				continue
			}
			c.str(o, p, "sku", true, 64)
			c.str(o, p, "name", false, 200)
			c.str(o, p, "category", false, 64)
			if _, ok := o["qty"]; !ok {
				c.fault(p+".qty", "is required")
			} else if n, ok := o["qty"].(json.Number); ok {
				if q, err := n.Int64(); err != nil {
					c.fault(p+".qty", "must be a whole number")
				} else if q <= 0 {
					c.fault(p+".qty", "must be > 0")
				} else if q > 100000 {
					c.fault(p+".qty", "must be <= 100000")
				}
			} else {
				c.fault(p+".qty", "must be a number")
			}
			c.money(o, p, "price")
			c.integer(o, p, "replenish_days", false, 0, 3650)
		}
	case TypePurchaseRefunded:
		c.str(data, path, "order_id", true, 100)
		c.str(data, path, "refund_id", true, 100)
		c.timestamp(data, path, "refunded_at")
		for i, it := range c.array(data, path, "items", false, maxItems) {
			p := fmt.Sprintf("%s.items[%d]", path, i)
			o := c.object(p, it, true)
			if o == nil {
				continue
			}
			line, _ := c.integer(o, p, "line", false, 1, maxItems)
			sku := c.str(o, p, "sku", false, 64)
			if line == 0 && sku == "" {
				c.fault(p, "want line or sku")
			}
			if q, ok := c.integer(o, p, "qty", true, 0, 100000); ok && q == 0 {
				c.fault(p+".qty", "must be > 0")
			}
		}
	case TypeStoreVisited:
		c.str(data, path, "store", true, 64)
	case TypeLiveJoined, TypeLiveLeft:
		c.str(data, path, "live", true, 64)
	case TypeCouponRedeemed:
		c.str(data, path, "code", true, 100)
		c.str(data, path, "order_id", true, 100)
		c.str(data, path, "store", false, 64)
	case TypeMemberTagged, TypeMemberUntagged:
		c.str(data, path, "tag", true, 64)
	}
	return c.faults
}
