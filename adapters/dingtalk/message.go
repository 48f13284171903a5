package dingtalk

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// Kinds are the message kinds the robot sends, to members and guides
// alike (both are users of the organisation): proactively through the
// robot send APIs, and as replies through a session webhook, except
// image, which a session webhook cannot carry (such a reply goes out
// proactively).
var Kinds = []string{adapters.KindText, adapters.KindMarkdown, adapters.KindNews, adapters.KindActionCard, adapters.KindImage}

// webhookKinds are the kinds a session webhook carries.
var webhookKinds = []string{adapters.KindText, adapters.KindMarkdown, adapters.KindNews, adapters.KindActionCard}

// Outbound.Fields keys the channel reads (adapters' kind table).
const (
	fieldTitle       = "title"
	fieldDescription = "description"
	fieldURL         = "url"
	fieldPicURL      = "picurl"
	fieldSingleTitle = "single_title"
	fieldSingleURL   = "single_url"
)

// robotMessage is a message as the robot send APIs take it: a message
// template key (msgKey) and its parameters (msgParam, sent as a JSON
// object in a string). A session webhook takes the same parameters under
// its msgtype.
type robotMessage struct {
	key   string
	param map[string]string
}

// msgKeys maps the robot's message template keys onto the msgtype of a
// session webhook ("" where a webhook cannot carry it) and the parameters
// each requires and allows, as DingTalk documents them ("Message types
// sent by enterprise bots").
var msgKeys = map[string]struct {
	msgtype  string
	required []string
	optional []string
}{
	"sampleText":       {msgtype: "text", required: []string{"content"}},
	"sampleMarkdown":   {msgtype: "markdown", required: []string{"title", "text"}},
	"sampleLink":       {msgtype: "link", required: []string{"title", "text", "messageUrl"}, optional: []string{"picUrl"}},
	"sampleActionCard": {msgtype: "actionCard", required: []string{"title", "text", "singleTitle", "singleURL"}},
	"sampleImageMsg":   {required: []string{"photoURL"}},
}

// invalid is an error for a message DingTalk cannot take as it is.
func invalid(format string, args ...any) error {
	return &adapters.APIError{Channel: ChannelName, Message: fmt.Sprintf(format, args...), Kind: adapters.ErrInvalidMessage}
}

// title returns the title of a markdown, card or link message: the title
// field, or else the first line of the text, cut to DingTalk's 64
// characters.
func title(m *adapters.Outbound) string {
	t := m.Fields[fieldTitle]
	if t == "" {
		t, _, _ = strings.Cut(strings.TrimSpace(m.Text), "\n")
		t = strings.TrimSpace(strings.TrimLeft(t, "# "))
	}
	if r := []rune(t); len(r) > 64 {
		t = string(r[:64])
	}
	return t
}

// render turns m into the robot's message. Kinds: text (sampleText),
// markdown (sampleMarkdown), news (sampleLink: the card's text is the
// description, else the message's text, else its title, since DingTalk
// needs one), action_card (sampleActionCard) and image (sampleImageMsg,
// whose photoURL is the picurl field or a media_id). Another kind, or a
// field DingTalk requires left empty, is an error wrapping
// adapters.ErrInvalidMessage.
func render(m *adapters.Outbound) (*robotMessage, error) {
	f := m.Fields
	var r robotMessage
	switch m.Kind {
	case adapters.KindText, "":
		r = robotMessage{"sampleText", map[string]string{"content": m.Text}}
	case adapters.KindMarkdown:
		r = robotMessage{"sampleMarkdown", map[string]string{"title": title(m), "text": m.Text}}
	case adapters.KindNews:
		text := f[fieldDescription]
		if text == "" {
			text = m.Text
		}
		if text == "" {
			text = f[fieldTitle]
		}
		r = robotMessage{"sampleLink", map[string]string{"title": title(m), "text": text, "messageUrl": f[fieldURL]}}
		if p := f[fieldPicURL]; p != "" {
			r.param["picUrl"] = p
		}
	case adapters.KindActionCard:
		r = robotMessage{"sampleActionCard", map[string]string{
			"title": title(m), "text": m.Text, "singleTitle": f[fieldSingleTitle], "singleURL": f[fieldSingleURL]}}
	case adapters.KindImage:
		photo := f[fieldPicURL]
		if photo == "" {
			photo = f["media_id"]
		}
		r = robotMessage{"sampleImageMsg", map[string]string{"photoURL": photo}}
	default:
		return nil, invalid("DingTalk robots cannot send %q messages; they send %s", m.Kind, strings.Join(Kinds, ", "))
	}
	for _, k := range msgKeys[r.key].required {
		if strings.TrimSpace(r.param[k]) == "" {
			return nil, invalid("a %s message needs %s (%s's %s is empty)", orText(m.Kind), fieldOf(m.Kind, k), r.key, k)
		}
	}
	return &r, nil
}

func orText(kind string) string {
	if kind == "" {
		return adapters.KindText
	}
	return kind
}

// fieldOf names the Outbound part a parameter comes from, for errors.
func fieldOf(kind, param string) string {
	switch param {
	case "content", "text":
		if kind == adapters.KindNews {
			return "a description, a text or a title"
		}
		return "a text"
	case "title":
		return "a title"
	case "messageUrl":
		return "a url"
	case "singleTitle":
		return "a single_title"
	case "singleURL":
		return "a single_url"
	case "photoURL":
		return "a picurl"
	}
	return param
}

// msgParam is the message's msgParam: its parameters as a JSON string.
func (r *robotMessage) msgParam() (string, error) {
	b, err := adapters.MarshalBody(r.param)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// webhookCarries reports whether a session webhook can carry a kind.
func webhookCarries(kind string) bool {
	return kind == "" || slices.Contains(webhookKinds, kind)
}

// webhookBody renders m for a session webhook: {"msgtype": t, t: params}.
func webhookBody(m *adapters.Outbound) ([]byte, error) {
	r, err := render(m)
	if err != nil {
		return nil, err
	}
	t := msgKeys[r.key].msgtype
	if t == "" {
		return nil, invalid("a session webhook cannot carry %s messages", m.Kind)
	}
	return adapters.MarshalBody(map[string]any{"msgtype": t, t: r.param})
}

// proactiveRequest renders m as a robot send request: to the group
// m.Conversation when set (groupMessages/send), else one-to-one to m.To
// (oToMessages/batchSend). robot is the robotCode; the robot a member
// talked to (m.ReplyTo) wins over it.
func proactiveRequest(robot string, m *adapters.Outbound) (path string, body any, key string, err error) {
	r, err := render(m)
	if err != nil {
		return "", nil, "", err
	}
	param, err := r.msgParam()
	if err != nil {
		return "", nil, "", err
	}
	if rc := m.ReplyTo[replyRobotCode]; rc != "" {
		robot = rc
	}
	switch {
	case m.Conversation != "":
		return pathGroupSend, groupSendRequest{RobotCode: robot, OpenConversationID: m.Conversation, MsgKey: r.key, MsgParam: param}, r.key, nil
	case m.To != "":
		return pathBatchSend, batchSendRequest{RobotCode: robot, UserIDs: []string{m.To}, MsgKey: r.key, MsgParam: param}, r.key, nil
	}
	return "", nil, "", &adapters.APIError{Channel: ChannelName, Message: "no recipient (To and Conversation are empty)", Kind: adapters.ErrInvalidRecipient}
}

// APISessionWebhook is the Request.API of a reply through a session
// webhook; proactive sends name their OpenAPI path.
const APISessionWebhook = "sessionWebhook"

// SpecFor returns the channel's Spec with robotCode as the robot that
// sends proactively. Its Preview gives the request Send makes: a reply
// (m.ReplyTo holds a session webhook) of a kind a webhook carries goes to
// the webhook, as long as it is valid; anything else to the robot send
// API, with its path as the Request's API.
func SpecFor(robotCode string) adapters.Spec {
	return adapters.Spec{
		Name:        ChannelName,
		MemberKinds: slices.Clone(Kinds),
		GuideKinds:  slices.Clone(Kinds),
		Preview: func(m *adapters.Outbound) (*adapters.Request, error) {
			if m.ReplyTo[replySessionWebhook] != "" && webhookCarries(m.Kind) {
				b, err := webhookBody(m)
				if err != nil {
					return nil, err
				}
				return &adapters.Request{API: APISessionWebhook, Body: b}, nil
			}
			path, body, _, err := proactiveRequest(robotCode, m)
			if err != nil {
				return nil, err
			}
			b, err := adapters.MarshalBody(body)
			if err != nil {
				return nil, err
			}
			return &adapters.Request{API: strings.TrimPrefix(path, "/v1.0/"), Body: b}, nil
		},
		// 20/s: an internal app of a standard DingTalk organisation may
		// call a server API at most 20 times a second.
		Rate: adapters.Rate{N: 20, Per: time.Second},
	}
}

// Spec is the channel's Spec without a configured robot: previews of
// proactive sends carry the robotCode of m.ReplyTo, or an empty one.
var Spec = SpecFor("")

// Spec returns the channel's Spec with its configured robot.
func (c *Client) Spec() adapters.Spec { return SpecFor(c.cfg.RobotCode) }

var _ adapters.Specified = (*Client)(nil)
