package dingtalk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/open-dingtalk/dingtalk-stream-sdk-go/chatbot"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/event"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/payload"

	"github.com/scrmgw/scrmgw/adapters"
)

// Stream protocol: frame types, topics and what connections/open needs.
// Frames and acks are the SDK's payload.DataFrame and
// payload.DataFrameResponse.
const (
	typeSystem   = "SYSTEM"
	typeEvent    = "EVENT"
	typeCallback = "CALLBACK"

	topicPing       = "ping"
	topicDisconnect = "disconnect"
	topicAllEvents  = "*"

	pathConnectionsOpen = "/v1.0/gateway/connections/open"
	userAgent           = "scrmgw-dingtalk/1 (stream protocol of dingtalk-sdk-go/v0.9.1)"
)

// subscriptions are what Run registers for.
var subscriptions = []*payload.SubscriptionModel{
	{Type: typeCallback, Topic: payload.BotMessageCallbackTopic},
	{Type: typeEvent, Topic: topicAllEvents},
	{Type: typeSystem, Topic: topicPing},
	{Type: typeSystem, Topic: topicDisconnect},
}

// Keys of Inbound.ReplyTo for bot messages, read back by Send.
const (
	replySessionWebhook   = "session_webhook"
	replyWebhookExpires   = "session_webhook_expires" // Unix milliseconds
	replyConversationType = "conversation_type"       // "1" one-to-one, "2" group
	replyRobotCode        = "robot_code"
)

// Contact-change event types (eventType header of EVENT frames) and the
// Inbound.Event each becomes.
var orgEvents = map[string]string{
	"user_add_org":    "guide.joined",
	"user_leave_org":  "guide.left",
	"user_modify_org": "guide.updated",
	// An employee added earlier activated their DingTalk account: not a
	// new guide, but their state changed.
	"user_active_org": "guide.updated",
}

// botMessage is the data of a robot message frame: the SDK's model, plus
// robotCode, which DingTalk sends and the SDK lacks, and the content of
// non-text messages kept raw.
type botMessage struct {
	chatbot.BotCallbackDataModel
	RobotCode string          `json:"robotCode"`
	Content   json.RawMessage `json:"content"`
}

// mediaContent is the content of picture, audio, video and file messages.
type mediaContent struct {
	DownloadCode        string `json:"downloadCode"`
	PictureDownloadCode string `json:"pictureDownloadCode"`
	Recognition         string `json:"recognition"` // audio: speech to text
	FileName            string `json:"fileName"`
}

// richTextContent is the content of a richText message: text runs and
// pictures in order.
type richTextContent struct {
	RichText []struct {
		Text         string `json:"text"`
		Type         string `json:"type"`
		DownloadCode string `json:"downloadCode"`
	} `json:"richText"`
}

// errMalformed marks a frame whose data cannot be decoded: retrying it
// cannot help.
var errMalformed = errors.New("malformed frame data")

// decodeBot decodes a robot message frame's data into an Inbound, with
// From and SenderID left for the caller, which asks the GuideResolver.
func decodeBot(data string) (*adapters.Inbound, *botMessage, error) {
	var m botMessage
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if m.MsgId == "" {
		return nil, nil, fmt.Errorf("%w: robot message without msgId", errMalformed)
	}
	if m.SenderStaffId == "" && m.SenderId == "" {
		return nil, nil, fmt.Errorf("%w: robot message %s without sender", errMalformed, m.MsgId)
	}
	in := &adapters.Inbound{
		Channel:        ChannelName,
		DedupKey:       m.MsgId,
		SenderID:       m.SenderStaffId,
		ConversationID: m.ConversationId,
		Attrs:          map[string]string{},
		ReplyTo:        map[string]string{},
	}
	if in.SenderID == "" {
		in.SenderID = m.SenderId
	}
	if m.CreateAt > 0 {
		in.At = time.UnixMilli(m.CreateAt)
	}
	if m.SenderNick != "" {
		in.Attrs["sender_nick"] = m.SenderNick
	}
	if m.ConversationTitle != "" {
		in.Attrs["conversation_title"] = m.ConversationTitle
	}
	in.Attrs["msgtype"] = m.Msgtype
	if m.SessionWebhook != "" {
		in.ReplyTo[replySessionWebhook] = m.SessionWebhook
		in.ReplyTo[replyWebhookExpires] = strconv.FormatInt(m.SessionWebhookExpiredTime, 10)
	}
	if m.ConversationType != "" {
		in.ReplyTo[replyConversationType] = m.ConversationType
	}
	if m.RobotCode != "" {
		in.ReplyTo[replyRobotCode] = m.RobotCode
	}

	switch m.Msgtype {
	case "text", "":
		in.Kind = "text"
		in.Text = strings.TrimSpace(m.Text.Content)
	case "richText":
		var rc richTextContent
		if err := unmarshalContent(m.Content, &rc); err != nil {
			return nil, nil, err
		}
		in.Kind = "text"
		var parts []string
		for _, r := range rc.RichText {
			if t := strings.TrimSpace(r.Text); t != "" {
				parts = append(parts, t)
			}
			if r.DownloadCode != "" && in.Attrs["download_code"] == "" {
				in.Attrs["download_code"] = r.DownloadCode
			}
		}
		in.Text = strings.Join(parts, "\n")
	case "picture", "audio", "video", "file":
		var mc mediaContent
		if err := unmarshalContent(m.Content, &mc); err != nil {
			return nil, nil, err
		}
		in.Kind = m.Msgtype
		if m.Msgtype == "picture" {
			in.Kind = "image"
		}
		code := mc.DownloadCode
		if code == "" {
			code = mc.PictureDownloadCode
		}
		if code != "" {
			in.Attrs["download_code"] = code
		}
		if mc.FileName != "" {
			in.Attrs["file_name"] = mc.FileName
		}
		in.Text = strings.TrimSpace(mc.Recognition)
	default:
		// Recorded all the same, so that a bot can answer that it cannot
		// read this kind of message.
		in.Kind = m.Msgtype
	}
	return in, &m, nil
}

func unmarshalContent(raw json.RawMessage, v any) error {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: content: %v", errMalformed, err)
	}
	return nil
}

// orgEventData is the data of a contact-change event.
type orgEventData struct {
	UserIDs   []string  `json:"userId"`
	TimeStamp flexInt64 `json:"timeStamp"`
}

// flexInt64 decodes a JSON number or a string holding one; DingTalk sends
// timestamps both ways.
type flexInt64 int64

func (n *flexInt64) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %s: %w", b, err)
	}
	*n = flexInt64(v)
	return nil
}

// decodeOrgEvent turns a contact-change event into one Inbound per user.
// known is false for event types the channel does not handle.
func decodeOrgEvent(df *payload.DataFrame) (ins []*adapters.Inbound, known bool, err error) {
	h := event.NewEventHeaderFromDataFrame(df)
	name, known := orgEvents[h.EventType]
	if !known {
		return nil, false, nil
	}
	if h.EventId == "" {
		return nil, true, fmt.Errorf("%w: %s event without eventId", errMalformed, h.EventType)
	}
	var d orgEventData
	if err := json.Unmarshal([]byte(df.Data), &d); err != nil {
		return nil, true, fmt.Errorf("%w: %s event %s: %v", errMalformed, h.EventType, h.EventId, err)
	}
	var at time.Time
	switch {
	case h.EventBornTime > 0:
		at = time.UnixMilli(h.EventBornTime)
	case d.TimeStamp > 0:
		at = time.UnixMilli(int64(d.TimeStamp))
	}
	for _, uid := range d.UserIDs {
		if uid == "" {
			continue
		}
		attrs := map[string]string{"user_id": uid, "event_type": h.EventType}
		if h.EventCorpId != "" {
			attrs["corp_id"] = h.EventCorpId
		}
		ins = append(ins, &adapters.Inbound{
			Channel:  ChannelName,
			DedupKey: h.EventId + ":" + uid,
			From:     adapters.PartyGuide,
			SenderID: uid,
			Kind:     "event",
			Event:    name,
			Attrs:    attrs,
			At:       at,
		})
	}
	return ins, true, nil
}

// Acks. A robot message is answered like the SDK's chatbot handler does;
// an event with the SDK's event result, SUCCESS or LATER (redeliver).
func ackFor(df *payload.DataFrame, code int, message, data string) *payload.DataFrameResponse {
	return &payload.DataFrameResponse{
		Code: code,
		Headers: payload.DataFrameHeader{
			payload.DataFrameHeaderKContentType: payload.DataFrameContentTypeKJson,
			payload.DataFrameHeaderKMessageId:   df.GetMessageId(),
		},
		Message: message,
		Data:    data,
	}
}

func botAck(df *payload.DataFrame, ok bool) *payload.DataFrameResponse {
	if ok {
		return ackFor(df, payload.DataFrameResponseStatusCodeKOK, "OK", `{"response":null}`)
	}
	return ackFor(df, payload.DataFrameResponseStatusCodeKInternalError, "not recorded, retry", "")
}

func eventAck(df *payload.DataFrame, ok bool, message string) *payload.DataFrameResponse {
	res := event.NewEventProcessResultSuccess()
	code := payload.DataFrameResponseStatusCodeKOK
	if !ok {
		res = event.NewEventProcessResultLater()
		code = payload.DataFrameResponseStatusCodeKInternalError
	}
	if message != "" {
		res.Message = message
	}
	b, _ := json.Marshal(res)
	return ackFor(df, code, "ok", string(b))
}

func pongAck(df *payload.DataFrame) *payload.DataFrameResponse {
	r := payload.NewDataFrameAckPong(df.GetMessageId())
	r.Data = df.Data
	return r
}

// OpenAPI bodies.

type tokenRequest struct {
	AppKey    string `json:"appKey"`
	AppSecret string `json:"appSecret"`
}

type tokenResponse struct {
	AccessToken string `json:"accessToken"`
	ExpireIn    int64  `json:"expireIn"` // seconds
}

type batchSendRequest struct {
	RobotCode string   `json:"robotCode"`
	UserIDs   []string `json:"userIds"`
	MsgKey    string   `json:"msgKey"`
	MsgParam  string   `json:"msgParam"`
}

type groupSendRequest struct {
	RobotCode          string `json:"robotCode"`
	OpenConversationID string `json:"openConversationId"`
	MsgKey             string `json:"msgKey"`
	MsgParam           string `json:"msgParam"`
}

type sendResponse struct {
	ProcessQueryKey           string   `json:"processQueryKey"`
	InvalidStaffIDList        []string `json:"invalidStaffIdList"`
	FlowControlledStaffIDList []string `json:"flowControlledStaffIdList"`
}

// apiErrorBody is the error body of api.dingtalk.com, sent with a 4xx or
// 5xx status.
type apiErrorBody struct {
	Code      string `json:"code"`
	RequestID string `json:"requestid"`
	Message   string `json:"message"`
}

// webhookResult is a session webhook's answer, HTTP 200 also on errors.
type webhookResult struct {
	Errcode int    `json:"errcode"`
	Errmsg  string `json:"errmsg"`
}
