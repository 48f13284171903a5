package templates

import (
	"strconv"
	"strings"
	"time"
)

// Data is everything a template can use: {{.Member.Name}},
// {{.Order.Total}}, {{range .Order.Items}}{{.Name}}{{end}}. A part that does
// not apply to a message (no order for a welcome) is its zero value, never
// missing, so a template never fails at send time on absent data; use
// default, if or with to word around empty values.
type Data struct {
	Member   Member
	Guide    Guide
	Store    Store
	Order    Order
	Workflow Workflow
	Brand    Brand
	Coupon   Coupon
	// Stores are the stores a bot lists, nearest first.
	Stores []Store
	// Members are the members a guide's bot lists.
	Members []Member
	// Tasks are the guide tasks a guide's bot lists.
	Tasks []Task
	// Handoff is the conversation a member was handed to their guide in;
	// Handoffs are a guide's open ones, when the bot lists them.
	Handoff  Handoff
	Handoffs []Handoff
	// Stats are a guide's figures ("my stats", the daily digest).
	Stats Stats
	// Orders are the member's recent orders ("my orders"), newest first.
	Orders []Order
	// Ranks are a guide's places on leaderboards ("leaderboard"): their
	// store's, then their brand's.
	Ranks []Rank
	// Brands are the brands a message lists (the other brands of a
	// member's store, for cross-brand offers).
	Brands []Brand
	// MemberCode is the member's code for the till ("member code").
	MemberCode MemberCode
	// Live is the live session a message invites to or reminds of (a
	// run started by live.scheduled).
	Live Live
	// Share is a guide's share link ("分享 SKU" to the guide bot).
	Share Share
	// TimeZone is the IANA name of the zone times are shown in (the
	// member's, or their store's): Render converts every time in Data to
	// it before rendering. Empty leaves times in their own location.
	TimeZone string
}

// Member is the person the message is for.
type Member struct {
	Name  string
	Level string
	// Points is the member's points balance with the brand.
	Points int64
	// PhoneTail is the last four digits of the phone number.
	PhoneTail string
}

// MemberCode is the code a member shows at the till: 18 digits for a QR
// code or barcode, or read out; it rotates every minute.
type MemberCode struct {
	Code string
	// ValidUntil is when the code stops scanning.
	ValidUntil time.Time
	// URL is a short-lived link to the member's code page (QR code and
	// barcode, refreshing itself), and PictureURL a picture for a link
	// card to it; both empty when the gateway has no http.public_url.
	URL, PictureURL string
}

// Grouped writes the code in groups of four digits, for reading out:
// {{.MemberCode.Grouped}} ("9712 3456 7890 1234 56").
func (c MemberCode) Grouped() string {
	var b strings.Builder
	for i, r := range c.Code {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Guide is the member's shopping guide.
type Guide struct {
	Name string
	// Store is the name of the guide's store.
	Store string
}

// Store is the member's store (their guide's, or the nearest).
type Store struct {
	Name         string
	Address      string
	OpeningHours string
	// DistanceKm is the member's distance to the store, when known.
	DistanceKm float64
}

// Order is the order the message is about: the one that triggered the
// workflow, or the member's last.
type Order struct {
	ID          string
	Total       Money
	Items       []Item
	PurchasedAt time.Time
	// Store is the name of the store of purchase (or credited), when
	// there is one.
	Store string
	// Refunded is how much of the order was refunded.
	Refunded Money
}

// ItemNames lists the names of the order's items, for
// {{join "、" .Order.ItemNames}}.
func (o Order) ItemNames() []string {
	names := make([]string, len(o.Items))
	for i, it := range o.Items {
		names[i] = it.Name
	}
	return names
}

// Item is one line of an order.
type Item struct {
	SKU  string
	Name string
	Qty  int
}

// Task is a guide's task: follow up a member.
type Task struct {
	// ID is the number a guide completes it by ("done 12").
	ID    int64
	Title string
	// Member is the member's name.
	Member string
	Due    time.Time
	// Overdue says the task is past its due time and still open.
	Overdue bool
}

// Handoff is a member's conversation handed to their guide.
type Handoff struct {
	// ID is the number a guide addresses it by ("#12 text").
	ID int64
	// Member is the member's name.
	Member string
	// Text is the message being passed on.
	Text string
	// Reason is why it opened (asked, unanswered) or ended (guide, idle,
	// unsubscribed).
	Reason string
	// Recent are the member's latest messages before it, oldest first.
	Recent []Line
}

// Line is one message of a conversation, with its time already written
// in the reader's zone ("15:04").
type Line struct {
	At   string
	Text string
}

// Stats are a guide's figures.
type Stats struct {
	// Date is the day they are for, written in the guide's zone.
	Date string
	// MembersBound are the guide's members; NewMembers those bound in
	// the period.
	MembersBound int64
	NewMembers   int64
	// OpenTasks and DueTasks (of them, due by the end of the day);
	// TasksDone completed in the period.
	OpenTasks int64
	DueTasks  int64
	TasksDone int64
	// NudgesConverted counts the period's workflow runs converted with
	// the guide (their task, or their member).
	NudgesConverted int64
	// Points are the guide's own points earned in the period (the
	// guide points ledger).
	Points int64
	// OpenHandoffs are the conversations handed to the guide still open.
	OpenHandoffs int64
}

// Rank is a guide's place on one leaderboard.
type Rank struct {
	// Board names the leaderboard: the store's or the brand's name.
	Board string
	// Place is the guide's rank (1 is first), 0 when they have no points
	// on the board yet; Of counts the guides ranked.
	Place  int
	Of     int
	Points int64
	// Top are the board's first places.
	Top []Placing
}

// Placing is one guide on a leaderboard.
type Placing struct {
	Place  int
	Name   string
	Points int64
}

// Workflow says which workflow and step sent the message.
type Workflow struct {
	Name string
	Step string
}

// Brand is the brand the message is sent for.
type Brand struct {
	Name string
}

// Live is a store's live session (门店直播).
type Live struct {
	Title string
	// URL is the live platform's page of the session.
	URL      string
	StartsAt time.Time
	EndsAt   time.Time
}

// Share is a guide's share link for a product their store carries.
type Share struct {
	SKU     string
	Product string
	// Price is the store's price.
	Price   Money
	InStock bool
	// URL is the product's page on the shop with the link's token.
	URL       string
	ExpiresAt time.Time
}

// Coupon is a coupon issued to the member for this message.
type Coupon struct {
	Code      string
	Value     Money
	ExpiresAt time.Time
}

// Money is an amount in fen (分, 1/100 yuan). It prints as yuan with two
// decimals, or none when they are zero: 128, 128.50.
type Money int64

// String formats m in yuan: "128", "128.50", "-3.20".
func (m Money) String() string {
	sign := ""
	v := int64(m)
	if v < 0 {
		sign, v = "-", -v
	}
	s := sign + strconv.FormatInt(v/100, 10)
	if c := v % 100; c != 0 {
		s += "." + strconv.FormatInt(c/10, 10) + strconv.FormatInt(c%10, 10)
	}
	return s
}

// localize returns a copy of d with every time moved to d.TimeZone.
func (d *Data) localize() (*Data, error) {
	c := *d
	if d.TimeZone == "" {
		return &c, nil
	}
	loc, err := loadZone(d.TimeZone)
	if err != nil {
		return nil, err
	}
	c.Order.PurchasedAt = inZone(c.Order.PurchasedAt, loc)
	c.Coupon.ExpiresAt = inZone(c.Coupon.ExpiresAt, loc)
	c.MemberCode.ValidUntil = inZone(c.MemberCode.ValidUntil, loc)
	c.Live.StartsAt = inZone(c.Live.StartsAt, loc)
	c.Live.EndsAt = inZone(c.Live.EndsAt, loc)
	c.Share.ExpiresAt = inZone(c.Share.ExpiresAt, loc)
	if len(d.Orders) > 0 {
		c.Orders = make([]Order, len(d.Orders))
		for i, o := range d.Orders {
			o.PurchasedAt = inZone(o.PurchasedAt, loc)
			c.Orders[i] = o
		}
	}
	if len(d.Tasks) > 0 {
		c.Tasks = make([]Task, len(d.Tasks))
		for i, t := range d.Tasks {
			t.Due = inZone(t.Due, loc)
			c.Tasks[i] = t
		}
	}
	return &c, nil
}

func inZone(t time.Time, loc *time.Location) time.Time {
	if t.IsZero() {
		return t
	}
	return t.In(loc)
}
