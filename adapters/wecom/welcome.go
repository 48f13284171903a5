package wecom

import (
	"context"

	"github.com/silenceper/wechat/v2/util"
)

type welcomeRequest struct {
	WelcomeCode string           `json:"welcome_code"`
	Text        *wireText        `json:"text,omitempty"`
	Attachments []wireAttachment `json:"attachments,omitempty"`
}

type commonResponse struct {
	util.CommonError
}

// SendWelcome sends a new customer's welcome message with the WelcomeCode
// of their add_external_contact event (externalcontact/send_welcome_msg).
// The code is good for 20 seconds and one call. WeCom answers 41050 for an
// expired or unknown code and 41051 once a welcome was delivered (by an
// earlier try of ours or by another app): both are ErrInvalidRecipient,
// and WelcomeAlreadySent tells the second apart. 41096 (another app is
// sending the welcome right now) is ErrTemporary.
func (a *API) SendWelcome(ctx context.Context, welcomeCode, text string, attachments ...Attachment) error {
	const op = "sending welcome message"
	if welcomeCode == "" {
		return noRecipient(op, "welcome code")
	}
	if text == "" && len(attachments) == 0 {
		return invalidRequest(op, "no text and no attachment")
	}
	atts, err := wireAttachments(op, attachments)
	if err != nil {
		return err
	}
	req := welcomeRequest{WelcomeCode: welcomeCode, Attachments: atts}
	if text != "" {
		req.Text = &wireText{Content: text}
	}
	return a.postWelcome(ctx, &req)
}

// postWelcome sends a built send_welcome_msg request.
func (a *API) postWelcome(ctx context.Context, req *welcomeRequest) error {
	const op = "sending welcome message"
	if req.WelcomeCode == "" {
		return noRecipient(op, "welcome code")
	}
	var res commonResponse
	return a.post(ctx, a.contTok, op, apiSendWelcome, req, &res)
}
