package wecom

import (
	"context"
	"strings"
	"time"

	"github.com/silenceper/wechat/v2/util"
)

// App message kinds.
const (
	AppText     = "text"
	AppMarkdown = "markdown"
	AppTextCard = "textcard"
)

// AppMsg is a message of the app to employees (message/send).
type AppMsg struct {
	// Kind is AppText (the default), AppMarkdown or AppTextCard.
	Kind string
	// Content is the text or markdown, or a text card's description.
	Content string
	// Title, URL and BtnTxt are a text card's.
	Title  string
	URL    string
	BtnTxt string
	// DuplicateCheck, when set, has WeCom drop the same message to the same
	// employees within this window (at most 4 hours), so that a retried
	// send is not delivered twice.
	DuplicateCheck time.Duration
}

type appTextCard struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	URL         string `json:"url"`
	BtnTxt      string `json:"btntxt,omitempty"`
}

// appArticle is one article of an app news message.
type appArticle struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	URL         string `json:"url"`
	PicURL      string `json:"picurl,omitempty"`
}

type appNews struct {
	Articles []appArticle `json:"articles"`
}

type appMessageRequest struct {
	ToUser                 string       `json:"touser"`
	MsgType                string       `json:"msgtype"`
	AgentID                int          `json:"agentid"`
	Text                   *wireText    `json:"text,omitempty"`
	Markdown               *wireText    `json:"markdown,omitempty"`
	TextCard               *appTextCard `json:"textcard,omitempty"`
	News                   *appNews     `json:"news,omitempty"`
	EnableDuplicateCheck   int          `json:"enable_duplicate_check,omitempty"`
	DuplicateCheckInterval int          `json:"duplicate_check_interval,omitempty"`
}

type appMessageResponse struct {
	util.CommonError
	InvalidUser    string `json:"invaliduser"`
	UnlicensedUser string `json:"unlicenseduser"`
	MsgID          string `json:"msgid"`
}

// maxAppMessageUsers is WeCom's limit of touser.
const maxAppMessageUsers = 1000

// AppMessage sends a text app message to employees (message/send); see
// SendAppMsg.
func (a *API) AppMessage(ctx context.Context, toUserIDs []string, text string) (msgID string, invalidUsers []string, err error) {
	return a.SendAppMsg(ctx, toUserIDs, AppMsg{Kind: AppText, Content: text})
}

// SendAppMsg sends an app message (text, markdown or text card) to
// employees (message/send). WeCom delivers to the valid ones and lists the
// others in invalidUsers (invaliduser and unlicenseduser); when none is
// valid it answers 81013, ErrInvalidRecipient.
func (a *API) SendAppMsg(ctx context.Context, toUserIDs []string, m AppMsg) (msgID string, invalidUsers []string, err error) {
	const op = "sending app message"
	if err := checkIDs(op, "user ids", toUserIDs, maxAppMessageUsers); err != nil {
		return "", nil, err
	}
	if a.agentID == 0 {
		return "", nil, invalidRequest(op, "no agent id configured")
	}
	req := appMessageRequest{ToUser: strings.Join(toUserIDs, "|"), AgentID: a.agentID}
	switch m.Kind {
	case "", AppText:
		req.MsgType, req.Text = AppText, &wireText{Content: m.Content}
	case AppMarkdown:
		req.MsgType, req.Markdown = AppMarkdown, &wireText{Content: m.Content}
	case AppTextCard:
		if m.Title == "" || m.URL == "" {
			return "", nil, invalidRequest(op, "a text card needs a title and a url")
		}
		req.MsgType, req.TextCard = AppTextCard, &appTextCard{Title: m.Title, Description: m.Content, URL: m.URL, BtnTxt: m.BtnTxt}
	default:
		return "", nil, invalidRequest(op, "unknown kind %q", m.Kind)
	}
	if m.Content == "" {
		return "", nil, invalidRequest(op, "empty content")
	}
	if m.DuplicateCheck > 0 {
		req.EnableDuplicateCheck = 1
		req.DuplicateCheckInterval = int(min(m.DuplicateCheck, 4*time.Hour) / time.Second)
	}
	return a.postAppMessage(ctx, &req)
}

// postAppMessage sends a built message/send request. It goes through our
// own JSON encoding (the SDK's Send escapes <, > and & as \u003c...), so
// that the body is byte for byte what Preview shows.
func (a *API) postAppMessage(ctx context.Context, req *appMessageRequest) (msgID string, invalidUsers []string, err error) {
	const op = "sending app message"
	if a.agentID == 0 {
		return "", nil, invalidRequest(op, "no agent id configured")
	}
	if req.ToUser == "" {
		return "", nil, noRecipient(op, "user ids")
	}
	req.AgentID = a.agentID
	var res appMessageResponse
	if err := a.post(ctx, a.appTok, op, apiMessageSend, req, &res); err != nil {
		return "", nil, err
	}
	for _, list := range []string{res.InvalidUser, res.UnlicensedUser} {
		for _, u := range strings.Split(list, "|") {
			if u != "" {
				invalidUsers = append(invalidUsers, u)
			}
		}
	}
	return res.MsgID, invalidUsers, nil
}
