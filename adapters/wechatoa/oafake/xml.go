package oafake

import (
	"fmt"
	"strings"
	"time"
)

// gh is the account's original id, WeChat's ToUserName of callbacks.
const gh = "gh_7f083739789a"

func cdata(s string) string {
	return "<![CDATA[" + strings.ReplaceAll(s, "]]>", "]]]]><![CDATA[>") + "]]>"
}

// Text is a follower's text message.
type Text struct {
	From    string
	MsgID   int64
	Content string
}

// XML is the message as WeChat sends it.
func (m Text) XML(_ string, at time.Time) []byte {
	return []byte(fmt.Sprintf("<xml><ToUserName>%s</ToUserName><FromUserName>%s</FromUserName><CreateTime>%d</CreateTime><MsgType>%s</MsgType><Content>%s</Content><MsgId>%d</MsgId></xml>",
		cdata(gh), cdata(m.From), at.Unix(), cdata("text"), cdata(m.Content), m.MsgID))
}

// Event is an event message (subscribe, unsubscribe, SCAN, CLICK,
// LOCATION).
type Event struct {
	From, Event, EventKey, Ticket string
	Latitude, Longitude           string
}

// XML is the event as WeChat sends it.
func (e Event) XML(_ string, at time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "<xml><ToUserName>%s</ToUserName><FromUserName>%s</FromUserName><CreateTime>%d</CreateTime><MsgType>%s</MsgType><Event>%s</Event>",
		cdata(gh), cdata(e.From), at.Unix(), cdata("event"), cdata(e.Event))
	if e.EventKey != "" || e.Event == "subscribe" {
		fmt.Fprintf(&b, "<EventKey>%s</EventKey>", cdata(e.EventKey))
	}
	if e.Ticket != "" {
		fmt.Fprintf(&b, "<Ticket>%s</Ticket>", cdata(e.Ticket))
	}
	if e.Latitude != "" {
		fmt.Fprintf(&b, "<Latitude>%s</Latitude><Longitude>%s</Longitude><Precision>30.000000</Precision>", e.Latitude, e.Longitude)
	}
	b.WriteString("</xml>")
	return []byte(b.String())
}

// Location is a follower's location message (shared from the chat's "+"
// menu).
type Location struct {
	From     string
	MsgID    int64
	Lat, Lng float64
	Label    string
}

// XML is the message as WeChat sends it.
func (m Location) XML(_ string, at time.Time) []byte {
	return []byte(fmt.Sprintf("<xml><ToUserName>%s</ToUserName><FromUserName>%s</FromUserName><CreateTime>%d</CreateTime><MsgType>%s</MsgType><Location_X>%g</Location_X><Location_Y>%g</Location_Y><Scale>15</Scale><Label>%s</Label><MsgId>%d</MsgId></xml>",
		cdata(gh), cdata(m.From), at.Unix(), cdata("location"), m.Lat, m.Lng, cdata(m.Label), m.MsgID))
}
