package dingtalkfake

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Error codes of the robot send APIs for a message they cannot take
// (HTTP 400). DingTalk's messages are Chinese; the fake's follow their
// shape.
const (
	// CodeMsgKeyEmpty: no msgKey.
	CodeMsgKeyEmpty = "invalidParameter.msgKey.empty"
	// CodeMsgKeyInvalid: a msgKey that is not a message template of
	// DingTalk's ("不支持类型 X").
	CodeMsgKeyInvalid = "invalidParameter.msgKey.invalid"
	// CodeMsgParamInvalid: msgParam is not a JSON object in a string
	// ("msgParam格式不正确;解决方案:请使用json格式"). The fake also
	// answers it for a parameter the template does not have, which
	// DingTalk may ignore: the fake is stricter, to catch misspellings.
	CodeMsgParamInvalid = "invalidParameter.msgParam.invalid"
	// CodeMsgParamTooLong: msgParam longer than 15,000 bytes.
	CodeMsgParamTooLong = "invalidParameter.msgParam.tooLong"
)

// MissingParamCode is the code for a required parameter of a message
// template left out or empty: miss.param.<type>To<param>, as DingTalk
// answers a sampleMarkdown without title (miss.param.markdownTotitle;
// the code of the other templates' parameters follows that one and is
// not verified).
func MissingParamCode(msgtype, param string) string {
	return "miss.param." + msgtype + "To" + param
}

// Session webhook errcodes for a reply it cannot take (HTTP 200). Not
// verified against a session webhook: 400402 is what a custom robot's
// webhook answers for a missing parameter.
const (
	WebhookErrcodeMissingParam = 400402
	WebhookErrcodeBadMsgtype   = 400401
)

// MaxMsgParamBytes bounds msgParam.
const MaxMsgParamBytes = 15000

// msgTemplate is one of DingTalk's message templates for robots: the
// msgtype its parameters are named after in errors, the session webhook
// msgtype that carries the same parameters ("" when a webhook cannot
// carry it), and its parameters.
type msgTemplate struct {
	msgtype  string
	webhook  bool
	required []string
	optional []string
}

// MsgTemplates are the message templates the fake's send endpoints take
// (msgKey), with the parameters of each (msgParam). Session webhooks take
// the ones with a webhook msgtype.
var msgTemplates = map[string]msgTemplate{
	"sampleText":       {msgtype: "text", webhook: true, required: []string{"content"}},
	"sampleMarkdown":   {msgtype: "markdown", webhook: true, required: []string{"title", "text"}},
	"sampleLink":       {msgtype: "link", webhook: true, required: []string{"title", "text", "messageUrl"}, optional: []string{"picUrl"}},
	"sampleActionCard": {msgtype: "actionCard", webhook: true, required: []string{"title", "text", "singleTitle", "singleURL"}},
	"sampleImageMsg":   {msgtype: "image", required: []string{"photoURL"}},
	"sampleFile":       {msgtype: "file", required: []string{"mediaId", "fileName", "fileType"}},
	"sampleAudio":      {msgtype: "audio", required: []string{"mediaId", "duration"}},
}

// MsgKeys lists the msgKeys the send endpoints take, in order.
func MsgKeys() []string {
	keys := make([]string, 0, len(msgTemplates))
	for k := range msgTemplates {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkParams checks the parameters of a message template: every
// required one set to a non-empty text, nothing unknown. It returns the
// parameter at fault and whether it is missing (else unknown or not a
// text).
func (t msgTemplate) checkParams(params map[string]any) (param string, missing bool) {
	for _, k := range t.required {
		if s, ok := params[k].(string); !ok || strings.TrimSpace(s) == "" {
			return k, true
		}
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(t.required, k) && !slices.Contains(t.optional, k) {
			return k, false
		}
		if _, ok := params[k].(string); !ok {
			return k, false
		}
	}
	return "", false
}

// checkMessage checks msgKey and msgParam of a send request as DingTalk
// does, returning the error code and message to answer, or "" when the
// message is fine.
func checkMessage(key, param string) (code, msg string) {
	if key == "" {
		return CodeMsgKeyEmpty, "错误描述: msgKey 为空;解决方案:请填写 msgKey;"
	}
	t, ok := msgTemplates[key]
	if !ok {
		return CodeMsgKeyInvalid, fmt.Sprintf("错误描述: 不支持类型 %s ;解决方案:请使用支持的类型;", key)
	}
	if len(param) > MaxMsgParamBytes {
		return CodeMsgParamTooLong, fmt.Sprintf("错误描述: msgParam 超过 %d 字节;", MaxMsgParamBytes)
	}
	var params map[string]any
	if err := json.Unmarshal([]byte(param), &params); err != nil || params == nil {
		return CodeMsgParamInvalid, "错误描述:msgParam格式不正确;解决方案:请使用json格式;"
	}
	if p, missing := t.checkParams(params); p != "" {
		if missing {
			return MissingParamCode(t.msgtype, p), fmt.Sprintf("错误描述:参数 %s --》 %s 缺失，或者参数格式不正确; 解决方案:请填充上对应参数;", t.msgtype, p)
		}
		return CodeMsgParamInvalid, fmt.Sprintf("错误描述:msgParam格式不正确: %s 没有参数 %s;", key, p)
	}
	return "", ""
}

// checkWebhookMessage checks a session webhook body, {"msgtype": t, t:
// {...}}, returning the errcode and errmsg to answer, or 0.
func checkWebhookMessage(msgtype string, body map[string]json.RawMessage) (int, string) {
	var t *msgTemplate
	for _, mt := range msgTemplates {
		if mt.webhook && mt.msgtype == msgtype {
			t = &mt
			break
		}
	}
	if t == nil {
		return WebhookErrcodeBadMsgtype, "不支持的消息类型 " + msgtype
	}
	var params map[string]any
	if err := json.Unmarshal(body[msgtype], &params); err != nil || params == nil {
		return WebhookErrcodeMissingParam, fmt.Sprintf("错误描述:参数 %s 缺失，或者参数格式不正确;", msgtype)
	}
	if p, missing := t.checkParams(params); p != "" {
		if missing {
			return WebhookErrcodeMissingParam, fmt.Sprintf("错误描述:参数 %s --》 %s 缺失，或者参数格式不正确; 解决方案:请填充上对应参数;", msgtype, p)
		}
		return WebhookErrcodeMissingParam, fmt.Sprintf("错误描述:参数 %s 没有 %s;", msgtype, p)
	}
	return 0, ""
}
