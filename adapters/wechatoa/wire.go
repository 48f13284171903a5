package wechatoa

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"

	"github.com/silenceper/wechat/v2/officialaccount/message"
)

// Message is a callback's message or event (silenceper's MixMessage: the
// union of WeChat's XML shapes).
type Message = message.MixMessage

// Message types and events the channel acts on.
const (
	MsgTypeText     = "text"
	MsgTypeImage    = "image"
	MsgTypeVoice    = "voice"
	MsgTypeLocation = "location"
	MsgTypeEvent    = "event"

	EventSubscribe   = "subscribe"
	EventUnsubscribe = "unsubscribe"
	EventScan        = "SCAN"
	EventLocation    = "LOCATION"
	EventClick       = "CLICK"
)

// ScenePrefix starts the EventKey of a subscribe through a parametric QR
// code (qrscene_<scene_str>).
const ScenePrefix = "qrscene_"

// maxMessageBytes bounds a callback's plaintext XML: WeChat's are a few
// kilobytes.
const maxMessageBytes = 64 << 10

// ParseMessage parses a callback's plaintext XML. It refuses bodies
// without a sender or a type.
func ParseMessage(data []byte) (*Message, error) {
	if len(data) > maxMessageBytes {
		return nil, fmt.Errorf("message of %d bytes: too large", len(data))
	}
	var m Message
	if err := xml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parsing message: %w", err)
	}
	if m.FromUserName == "" || m.MsgType == "" {
		return nil, fmt.Errorf("message without FromUserName or MsgType")
	}
	return &m, nil
}

// DedupKey identifies a delivery across WeChat's retries: the MsgId of a
// message, FromUserName+CreateTime (and the event) of an event.
func DedupKey(m *Message) string {
	if m.MsgType != MsgTypeEvent && m.MsgID != 0 {
		return "msg:" + strconv.FormatInt(m.MsgID, 10)
	}
	return "ev:" + string(m.FromUserName) + ":" + strconv.FormatInt(m.CreateTime, 10) + ":" + strings.ToLower(string(m.Event))
}

// Scene is the scene of a parametric QR code a subscribe or SCAN event
// carries ("" for none): the EventKey without qrscene_.
func Scene(m *Message) string {
	switch string(m.Event) {
	case EventSubscribe:
		return strings.TrimPrefix(m.EventKey, ScenePrefix)
	case EventScan:
		return m.EventKey
	}
	return ""
}
