package wecom

import (
	"context"

	"github.com/silenceper/wechat/v2/util"
)

type msgTemplateRequest struct {
	ChatType       string           `json:"chat_type"`
	ExternalUserID []string         `json:"external_userid"`
	Sender         string           `json:"sender"`
	Text           *wireText        `json:"text,omitempty"`
	Attachments    []wireAttachment `json:"attachments,omitempty"`
}

type msgTemplateResponse struct {
	util.CommonError
	FailList []string `json:"fail_list"`
	MsgID    string   `json:"msgid"`
}

// maxMsgTemplateCustomers is WeCom's limit of external_userid in one
// add_msg_template.
const maxMsgTemplateCustomers = 10000

// AddMsgTemplate creates a message task (企业群发) for the employee sender to
// send to the given customers (externalcontact/add_msg_template with
// chat_type single). Nothing is sent until the employee confirms it in
// WeCom. failList holds the customers WeCom will not send to (not the
// sender's customer, or over their monthly quota of group messages).
func (a *API) AddMsgTemplate(ctx context.Context, senderUserID string, externalUserIDs []string, text string, attachments ...Attachment) (msgID string, failList []string, err error) {
	const op = "adding message task"
	if senderUserID == "" {
		return "", nil, noRecipient(op, "sender")
	}
	if err := checkIDs(op, "external user ids", externalUserIDs, maxMsgTemplateCustomers); err != nil {
		return "", nil, err
	}
	if text == "" && len(attachments) == 0 {
		return "", nil, invalidRequest(op, "no text and no attachment")
	}
	atts, err := wireAttachments(op, attachments)
	if err != nil {
		return "", nil, err
	}
	req := msgTemplateRequest{ChatType: "single", ExternalUserID: externalUserIDs, Sender: senderUserID, Attachments: atts}
	if text != "" {
		req.Text = &wireText{Content: text}
	}
	return a.postMsgTemplate(ctx, &req)
}

// postMsgTemplate sends a built add_msg_template request.
func (a *API) postMsgTemplate(ctx context.Context, req *msgTemplateRequest) (msgID string, failList []string, err error) {
	const op = "adding message task"
	if req.Sender == "" {
		return "", nil, noRecipient(op, "sender")
	}
	if err := checkIDs(op, "external user ids", req.ExternalUserID, maxMsgTemplateCustomers); err != nil {
		return "", nil, err
	}
	var res msgTemplateResponse
	if err := a.post(ctx, a.contTok, op, apiAddMsgTemplate, req, &res); err != nil {
		return "", nil, err
	}
	return res.MsgID, res.FailList, nil
}

// apiCancelGroupMsgSend stops a message task (see Client.Withdraw).
const apiCancelGroupMsgSend = "externalcontact/cancel_groupmsg_send"

// CancelGroupMsgSend stops the message task msgID for the employees who
// have not sent it yet (externalcontact/cancel_groupmsg_send, 停止企业群发);
// what they sent stays sent.
func (a *API) CancelGroupMsgSend(ctx context.Context, msgID string) error {
	const op = "stopping message task"
	if msgID == "" {
		return invalidRequest(op, "no msgid")
	}
	var res struct{ util.CommonError }
	return a.post(ctx, a.contTok, op+" "+msgID, apiCancelGroupMsgSend, struct {
		MsgID string `json:"msgid"`
	}{msgID}, &res)
}
