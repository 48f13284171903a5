package dingtalk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

const (
	pathBatchSend = "/v1.0/robot/oToMessages/batchSend"
	pathGroupSend = "/v1.0/robot/groupMessages/send"
	// accessTokenHeader carries the access token of OpenAPI calls.
	accessTokenHeader = "x-acs-dingtalk-access-token"
	// webhookMargin: a session webhook this close to its expiry is not
	// used; the message goes out proactively instead.
	webhookMargin = 30 * time.Second
)

// OpenAPI error codes the channel acts on.
const (
	codeInvalidAuthentication = "InvalidAuthentication"
	codeStaffNotExisted       = "staffId.notExisted"
)

// Session webhook errcodes.
const (
	webhookNoSession = 300001 // session 不存在: expired or unknown
	webhookTooFast   = 130101 // send too fast
)

// Send delivers m. A reply to a robot message (m.ReplyTo holds its
// session webhook) goes through the session webhook while it is valid
// and can carry the kind; anything else, and a reply the webhook
// refuses, is sent proactively by the robot: to the group m.Conversation
// (an openConversationId, which is the ConversationID of a group's
// Inbound) when set, else one-to-one to the user m.To. The kinds are
// Kinds; the requests are the ones Spec's Preview shows (see render for
// how each kind maps onto DingTalk's message templates).
//
// DingTalk has no idempotency key, so m.IdempotencyKey is not passed on:
// the outbox, which claims a message before sending it, keeps a retry from
// sending twice. Errors wrap an *adapters.APIError whose Kind is
// adapters.ErrRateLimited, ErrUnauthorized, ErrInvalidRecipient,
// ErrInvalidMessage (a kind DingTalk cannot carry, a required field left
// empty), ErrTemporary, or nil for requests that cannot succeed as they
// are.
func (c *Client) Send(ctx context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	if m == nil {
		return nil, permanent("sending: nil message")
	}
	if _, err := render(m); err != nil {
		return nil, fmt.Errorf("sending: %w", err)
	}
	if hook := m.ReplyTo[replySessionWebhook]; hook != "" && webhookCarries(m.Kind) {
		if c.webhookUsable(m.ReplyTo) {
			fallback, err := c.reply(ctx, hook, m)
			if err != nil {
				return nil, fmt.Errorf("replying through session webhook: %w", err)
			}
			if !fallback {
				return &adapters.Receipt{}, nil
			}
		} else {
			c.log.Debug("dingtalk: session webhook expired; sending proactively")
		}
	}
	return c.sendProactive(ctx, m)
}

// webhookUsable reports whether a session webhook is still valid by
// Clock. A webhook without a known expiry is tried.
func (c *Client) webhookUsable(replyTo map[string]string) bool {
	ms, err := strconv.ParseInt(replyTo[replyWebhookExpires], 10, 64)
	if err != nil || ms <= 0 {
		return true
	}
	return c.now().Add(webhookMargin).Before(time.UnixMilli(ms))
}

// reply posts m to a session webhook. fallback is true when the webhook
// refused it (expired session and the like) and it should go out
// proactively. The access token is not sent to webhooks.
func (c *Client) reply(ctx context.Context, hook string, m *adapters.Outbound) (fallback bool, err error) {
	raw, err := webhookBody(m)
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, bytes.NewReader(raw))
	if err != nil {
		c.log.Warn("dingtalk: unusable session webhook; sending proactively", slog.String("webhook", redactURL(hook)))
		return true, nil
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return false, temporary(redactURLError(err))
	}
	defer resp.Body.Close()
	b, err := readBody(resp.Body)
	if err != nil {
		return false, temporary(fmt.Errorf("reading answer: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		f := failureFrom(resp.StatusCode, b)
		if kind := f.kind(); kind == adapters.ErrTemporary || kind == adapters.ErrRateLimited {
			return false, f.apiError()
		}
		c.log.Debug("dingtalk: session webhook refused the reply; sending proactively", slog.Any("error", f.apiError()))
		return true, nil
	}
	var r webhookResult
	if err := json.Unmarshal(b, &r); err != nil {
		return false, temporary(fmt.Errorf("decoding answer: %w", err))
	}
	switch r.Errcode {
	case 0:
		return false, nil
	case webhookTooFast:
		return false, &adapters.APIError{Channel: ChannelName, Code: r.Errcode, Message: r.Errmsg, Kind: adapters.ErrRateLimited}
	case webhookNoSession:
		c.log.Debug("dingtalk: session webhook gone; sending proactively")
	default:
		c.log.Warn("dingtalk: session webhook refused the reply; sending proactively",
			slog.Int("errcode", r.Errcode), slog.String("errmsg", r.Errmsg))
	}
	return true, nil
}

// sendProactive sends m as the robot through the OpenAPI.
func (c *Client) sendProactive(ctx context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	path, body, key, err := proactiveRequest(c.cfg.RobotCode, m)
	if err != nil {
		return nil, fmt.Errorf("sending: %w", err)
	}
	target := m.To
	if path == pathGroupSend {
		target = "group " + m.Conversation
	}
	var res sendResponse
	if err := c.callAPI(ctx, path, body, &res); err != nil {
		return nil, fmt.Errorf("sending %s to %s: %w", key, target, err)
	}
	switch {
	case slices.Contains(res.InvalidStaffIDList, m.To):
		return nil, fmt.Errorf("sending %s to %s: %w", key, target, &adapters.APIError{Channel: ChannelName, Code: http.StatusOK,
			Message: "invalidStaffIdList: the recipient is not a user of the organisation", Kind: adapters.ErrInvalidRecipient})
	case slices.Contains(res.FlowControlledStaffIDList, m.To):
		return nil, fmt.Errorf("sending %s to %s: %w", key, target, &adapters.APIError{Channel: ChannelName, Code: http.StatusOK,
			Message: "flowControlledStaffIdList: too many messages to the recipient", Kind: adapters.ErrRateLimited})
	}
	c.log.Debug("dingtalk: robot message sent", slog.String("msg_key", key), slog.String("process_query_key", res.ProcessQueryKey))
	return &adapters.Receipt{ExternalID: res.ProcessQueryKey}, nil
}

// callAPI posts in to an OpenAPI endpoint with the access token and
// decodes the answer into out. A token DingTalk refuses is dropped and
// the call made once more with a fresh one.
func (c *Client) callAPI(ctx context.Context, path string, in, out any) error {
	for attempt := 0; ; attempt++ {
		tok, err := c.accessToken(ctx)
		if err != nil {
			return err
		}
		f := c.post(ctx, c.cfg.APIBase+path, tok, in, out)
		if f == nil {
			return nil
		}
		if f.code == codeInvalidAuthentication && attempt == 0 {
			c.log.Debug("dingtalk: access token refused; getting a new one")
			c.dropToken(ctx)
			continue
		}
		return f.apiError()
	}
}

// failure is an unsuccessful OpenAPI call.
type failure struct {
	status  int    // HTTP status; 0 when there was no answer
	code    string // the body's code
	message string
	reqID   string
	err     error // transport error, when status is 0
}

// post makes one JSON call. token is sent when not empty.
func (c *Client) post(ctx context.Context, url, token string, in, out any) *failure {
	b, err := adapters.MarshalBody(in)
	if err != nil {
		return &failure{err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return &failure{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set(accessTokenHeader, token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &failure{err: redactURLError(err)}
	}
	defer resp.Body.Close()
	raw, err := readBody(resp.Body)
	if err != nil {
		return &failure{err: fmt.Errorf("reading answer: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		return failureFrom(resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return &failure{status: resp.StatusCode, message: "undecodable answer: " + err.Error()}
		}
	}
	return nil
}

// failureFrom reads an OpenAPI error answer.
func failureFrom(status int, body []byte) *failure {
	f := &failure{status: status}
	var e apiErrorBody
	if json.Unmarshal(body, &e) == nil {
		f.code, f.message, f.reqID = e.Code, e.Message, e.RequestID
	}
	if f.message == "" {
		f.message = http.StatusText(status)
	}
	return f
}

// kind maps a failure onto the sentinel errors.
func (f *failure) kind() error {
	code := strings.ToLower(f.code)
	switch {
	case f.status == 0 && f.err != nil:
		return adapters.ErrTemporary
	case f.status == http.StatusTooManyRequests,
		strings.Contains(code, "qpslimit"), strings.Contains(code, "throttl"), strings.Contains(code, "flowcontrol"):
		return adapters.ErrRateLimited
	case f.code == codeInvalidAuthentication, f.status == http.StatusUnauthorized,
		code == "invalidclientid", code == "invalidclientsecret", code == "authfailed",
		strings.Contains(code, "accesstokenpermissiondenied"):
		return adapters.ErrUnauthorized
	case f.code == codeStaffNotExisted:
		return adapters.ErrInvalidRecipient
	case strings.HasPrefix(code, "invalidparameter.msg"), strings.HasPrefix(code, "miss.param."):
		// invalidParameter.msgKey.invalid, msgParam.invalid, msgParam.tooLong,
		// miss.param.markdownTotitle: the message, as it is, cannot go.
		return adapters.ErrInvalidMessage
	case f.status >= 500, f.status == http.StatusOK: // 200 with an undecodable body
		return adapters.ErrTemporary
	}
	return nil
}

// apiError turns f into the *adapters.APIError callers see. Code is the
// HTTP status (DingTalk's codes are strings; they lead the message).
func (f *failure) apiError() *adapters.APIError {
	e := &adapters.APIError{Channel: ChannelName, Code: f.status, Kind: f.kind()}
	switch {
	case f.err != nil:
		e.Message = f.err.Error()
	case f.code != "":
		e.Message = f.code + ": " + f.message
	default:
		e.Message = f.message
	}
	if f.reqID != "" {
		e.Message += " (requestid " + f.reqID + ")"
	}
	return e
}

// permanent is an error retrying cannot fix: an *adapters.APIError
// without a Kind, which adapters.Retryable reports as not retryable.
func permanent(msg string) error {
	return &adapters.APIError{Channel: ChannelName, Message: msg}
}

func temporary(err error) error {
	return &adapters.APIError{Channel: ChannelName, Message: err.Error(), Kind: adapters.ErrTemporary}
}
