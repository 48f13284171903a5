package dingtalkfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// Frame types of the stream protocol.
const (
	TypeSystem   = "SYSTEM"
	TypeEvent    = "EVENT"
	TypeCallback = "CALLBACK"
)

// Topics of the stream protocol.
const (
	// BotTopic is the CALLBACK topic of robot messages.
	BotTopic = "/v1.0/im/bot/messages/get"
	// CardTopic is the CALLBACK topic of interactive card callbacks.
	CardTopic = "/v1.0/card/instances/callback"
	// EventTopic is the only topic EVENT frames use; the event's kind is
	// in the eventType header.
	EventTopic = "*"
	// PingTopic and DisconnectTopic are the SYSTEM topics.
	PingTopic       = "ping"
	DisconnectTopic = "disconnect"
)

// Frame header keys.
const (
	HeaderTopic             = "topic"
	HeaderMessageID         = "messageId"
	HeaderContentType       = "contentType"
	HeaderTime              = "time"
	HeaderAppID             = "appId"
	HeaderConnectionID      = "connectionId"
	HeaderEventID           = "eventId"
	HeaderEventType         = "eventType"
	HeaderEventCorpID       = "eventCorpId"
	HeaderEventBornTime     = "eventBornTime"
	HeaderEventUnifiedAppID = "eventUnifiedAppId"
)

// ContentTypeJSON is the only content type frames and acks use.
const ContentTypeJSON = "application/json"

// Contact-change event types, the eventType header of EVENT frames. Their
// data is {"timeStamp": "<ms>", "userId": ["<userid>", ...]}.
const (
	EventUserAddOrg    = "user_add_org"
	EventUserModifyOrg = "user_modify_org"
	EventUserLeaveOrg  = "user_leave_org"
	EventUserActiveOrg = "user_active_org"
)

// Frame is one message the gateway pushes to a client.
type Frame struct {
	SpecVersion string            `json:"specVersion"`
	Type        string            `json:"type"`
	Headers     map[string]string `json:"headers"`
	// Data is the payload, itself JSON, carried as a string.
	Data string `json:"data"`
}

// Topic returns the frame's topic header.
func (f Frame) Topic() string { return f.Headers[HeaderTopic] }

// MessageID returns the frame's messageId header.
func (f Frame) MessageID() string { return f.Headers[HeaderMessageID] }

func (f Frame) clone() Frame {
	h := make(map[string]string, len(f.Headers))
	for k, v := range f.Headers {
		h[k] = v
	}
	f.Headers = h
	return f
}

// Ack is a client's answer to a frame.
type Ack struct {
	Code    int               `json:"code"`
	Headers map[string]string `json:"headers"`
	Message string            `json:"message"`
	// Data is the handler's result, itself JSON, carried as a string.
	Data string `json:"data"`
}

// MessageID returns the messageId header: the id of the frame acked.
func (a Ack) MessageID() string { return a.Headers[HeaderMessageID] }

// Subscription is one entry of the subscriptions a client registers.
type Subscription struct {
	Type  string `json:"type"`
	Topic string `json:"topic"`
}

// OpenRequest is what a client sent to /v1.0/gateway/connections/open,
// minus the secret.
type OpenRequest struct {
	ClientID      string
	Subscriptions []Subscription
	UA            string
	LocalIP       string
	Extras        map[string]string
}

type openRequestWire struct {
	ClientID      string            `json:"clientId"`
	ClientSecret  string            `json:"clientSecret"`
	Subscriptions []Subscription    `json:"subscriptions"`
	UA            string            `json:"ua"`
	LocalIP       string            `json:"localIp"`
	Extras        map[string]string `json:"extras"`
}

type openResponseWire struct {
	Endpoint string `json:"endpoint"`
	Ticket   string `json:"ticket"`
}

// apiError is the error body of api.dingtalk.com.
type apiError struct {
	Code      string `json:"code"`
	RequestID string `json:"requestid"`
	Message   string `json:"message"`
}

// BotMessage is the data of a robot message frame (topic BotTopic), with
// the field names DingTalk sends.
type BotMessage struct {
	ConversationID string   `json:"conversationId"`
	AtUsers        []AtUser `json:"atUsers,omitempty"`
	ChatbotCorpID  string   `json:"chatbotCorpId,omitempty"`
	ChatbotUserID  string   `json:"chatbotUserId,omitempty"`
	MsgID          string   `json:"msgId"`
	SenderNick     string   `json:"senderNick,omitempty"`
	IsAdmin        bool     `json:"isAdmin"`
	// SenderStaffID is the sender's userid in the organisation; empty for
	// senders outside it.
	SenderStaffID string `json:"senderStaffId,omitempty"`
	// SessionWebhookExpiredTime is in Unix milliseconds.
	SessionWebhookExpiredTime int64 `json:"sessionWebhookExpiredTime"`
	// CreateAt is in Unix milliseconds.
	CreateAt     int64  `json:"createAt"`
	SenderCorpID string `json:"senderCorpId,omitempty"`
	// ConversationType is "1" for a one-to-one chat, "2" for a group.
	ConversationType  string `json:"conversationType"`
	SenderID          string `json:"senderId"`
	ConversationTitle string `json:"conversationTitle,omitempty"`
	IsInAtList        bool   `json:"isInAtList"`
	SessionWebhook    string `json:"sessionWebhook"`
	Text              *Text  `json:"text,omitempty"`
	// RobotCode is not in the Go SDK's BotCallbackDataModel but is sent.
	RobotCode string `json:"robotCode"`
	Msgtype   string `json:"msgtype"`
	// Content carries the payload of non-text messages (picture,
	// richText, ...).
	Content any `json:"content,omitempty"`
}

// AtUser is one user @-mentioned in a group message.
type AtUser struct {
	DingtalkID string `json:"dingtalkId"`
	StaffID    string `json:"staffId,omitempty"`
}

// Text is the text of a text message.
type Text struct {
	Content string `json:"content"`
}

// encodeData turns a frame payload into the string the data field carries:
// strings and byte slices as they are, anything else as JSON.
func encodeData(data any) string {
	switch d := data.(type) {
	case nil:
		return ""
	case string:
		return d
	case []byte:
		return string(d)
	case json.RawMessage:
		return string(d)
	}
	b, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("dingtalkfake: encoding frame data: %v", err))
	}
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newUUID returns a random version-4 UUID in lower case.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// newRequestID returns an id shaped like DingTalk's requestid.
func newRequestID() string {
	return strings.ToUpper(newUUID())
}
