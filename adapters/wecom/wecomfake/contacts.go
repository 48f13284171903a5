package wecomfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scrmgw/scrmgw/adapters/wecom"
)

// Contact is a customer of the corp and the employees who added them,
// as externalcontact/get returns them. A zero Type is taken for 1 (a
// WeChat user).
type Contact = wecom.Contact

// FollowUser is an employee who added a customer.
type FollowUser = wecom.FollowUser

// sampleExternalUserID is the customer of the recorded externalcontact/get
// answer, served verbatim.
const sampleExternalUserID = "woAJ2GCAAAXtWyujaWJHDDGi0mACHAAA"

// AddContact adds (or replaces) a customer.
func (s *Server) AddContact(c Contact) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Type == 0 {
		c.Type = wecom.ContactWeChat
	}
	c.FollowUsers = slices.Clone(c.FollowUsers)
	s.contacts[c.ExternalUserID] = &c
}

// encodeCursor and decodeCursor make the fake's opaque paging cursors.
func encodeCursor(kind string, n int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.Itoa(n)))
}

func decodeCursor(kind, cursor string) (int, bool) {
	if cursor == "" {
		return 0, true
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(string(b), kind+":")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0
}

func (s *Server) serveExternalContactGet(r *http.Request, _ []byte) (map[string]any, *apiError) {
	q := r.URL.Query()
	id := q.Get("external_userid")
	if id == "" {
		return nil, codeErr(CodeMissingExternalUser)
	}
	c := s.contacts[id]
	if c == nil {
		if id == sampleExternalUserID {
			return s.recorded("externalcontact_get"), nil
		}
		return nil, codeErr(CodeNotExternalContact)
	}
	from, ok := decodeCursor("follow", q.Get("cursor"))
	if !ok || from > len(c.FollowUsers) {
		return nil, codeErr(CodeInvalidCursor)
	}
	to := min(from+s.followPage, len(c.FollowUsers))
	follow := make([]map[string]any, 0, to-from)
	for _, f := range c.FollowUsers[from:to] {
		fu := map[string]any{
			"userid":      f.UserID,
			"remark":      f.Remark,
			"description": f.Description,
			"createtime":  f.CreateTime.Unix(),
			"add_way":     f.AddWay,
			"oper_userid": f.OperUserID,
		}
		if f.CreateTime.IsZero() {
			fu["createtime"] = 0
		}
		if f.State != "" {
			fu["state"] = f.State
		}
		if len(f.RemarkMobiles) > 0 {
			fu["remark_mobiles"] = f.RemarkMobiles
		}
		if len(f.TagIDs) > 0 {
			tags := make([]map[string]any, 0, len(f.TagIDs))
			for i, t := range f.TagIDs {
				// A tag of the library (tags.go) has its name and group;
				// another's name is TagNames[i] when given, else its id.
				name, group := t, "分组"
				if i < len(f.TagNames) && f.TagNames[i] != "" {
					name = f.TagNames[i]
				}
				if g, ct := s.tagByID(t); ct != nil {
					name, group = ct.name, g.name
				}
				tags = append(tags, map[string]any{"group_name": group, "tag_name": name, "tag_id": t, "type": 1})
			}
			fu["tags"] = tags
		}
		follow = append(follow, fu)
	}
	ext := map[string]any{
		"external_userid": c.ExternalUserID,
		"name":            c.Name,
		"avatar":          c.Avatar,
		"type":            int(c.Type),
		"gender":          int(c.Gender),
	}
	if c.UnionID != "" {
		ext["unionid"] = c.UnionID
	}
	next := ""
	if to < len(c.FollowUsers) {
		next = encodeCursor("follow", to)
	}
	out := s.recorded("externalcontact_get")
	out["external_contact"] = ext
	out["follow_user"] = follow
	out["next_cursor"] = next
	return out, nil
}

// ---- welcome messages ----

// welcomeTTL is how long a welcome code is good for.
const welcomeTTL = 20 * time.Second

type welcomeCode struct {
	externalUserID string
	issued         time.Time
	used           bool
}

// IssueWelcomeCode returns a new welcome code for the customer, as an
// add_external_contact event carries it: good for one send_welcome_msg
// within 20 seconds (by the server's clock).
func (s *Server) IssueWelcomeCode(externalUserID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	code := "WC" + strings.ToUpper(randomHex(16))
	s.welcomeCodes[code] = &welcomeCode{externalUserID: externalUserID, issued: s.now()}
	return code
}

// Attachment is an attachment of a welcome message or message task as
// sent: MsgType and the object of that type.
type Attachment struct {
	MsgType     string           `json:"msgtype"`
	Image       *AttachmentMedia `json:"image,omitempty"`
	Link        *AttachmentLink  `json:"link,omitempty"`
	MiniProgram *AttachmentMini  `json:"miniprogram,omitempty"`
	Video       *AttachmentMedia `json:"video,omitempty"`
	File        *AttachmentMedia `json:"file,omitempty"`
}

// AttachmentMedia is an image, video or file attachment.
type AttachmentMedia struct {
	MediaID string `json:"media_id,omitempty"`
	PicURL  string `json:"pic_url,omitempty"`
}

// AttachmentLink is a link attachment.
type AttachmentLink struct {
	Title  string `json:"title"`
	PicURL string `json:"picurl,omitempty"`
	Desc   string `json:"desc,omitempty"`
	URL    string `json:"url"`
}

// AttachmentMini is a miniprogram attachment.
type AttachmentMini struct {
	Title      string `json:"title"`
	PicMediaID string `json:"pic_media_id"`
	AppID      string `json:"appid"`
	Page       string `json:"page"`
}

type textBody struct {
	Content string `json:"content"`
}

// WelcomeRequest is an accepted send_welcome_msg.
type WelcomeRequest struct {
	WelcomeCode string
	// ExternalUserID is the customer the code was issued for.
	ExternalUserID string
	Text           string
	Attachments    []Attachment
	// Body is the request as sent.
	Body json.RawMessage
	At   time.Time
}

// Welcomes returns the welcome messages sent, in order.
func (s *Server) Welcomes() []WelcomeRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.welcomes)
}

func (s *Server) serveSendWelcome(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		WelcomeCode string       `json:"welcome_code"`
		Text        *textBody    `json:"text"`
		Attachments []Attachment `json:"attachments"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.WelcomeCode == "" {
		return nil, codeErr(CodeMissingWelcomeCode)
	}
	wc := s.welcomeCodes[req.WelcomeCode]
	now := s.now()
	switch {
	case wc == nil || now.Sub(wc.issued) > welcomeTTL:
		return nil, codeErr(CodeInvalidWelcomeCode)
	case wc.used:
		return nil, codeErr(CodeStartedChatting)
	}
	text := ""
	if req.Text != nil {
		text = req.Text.Content
	}
	if text == "" && len(req.Attachments) == 0 {
		return nil, codeErr(CodeEmptyContent)
	}
	if e := s.checkMessage(text, req.Attachments); e != nil {
		return nil, e
	}
	wc.used = true
	s.welcomes = append(s.welcomes, WelcomeRequest{
		WelcomeCode: req.WelcomeCode, ExternalUserID: wc.externalUserID, Text: text, Attachments: req.Attachments,
		Body: json.RawMessage(slices.Clone(body)), At: now,
	})
	return s.recorded("send_welcome_msg"), nil
}

// ---- message tasks ----

// MsgTemplateRequest is an accepted add_msg_template.
type MsgTemplateRequest struct {
	MsgID           string
	ChatType        string
	Sender          string
	ExternalUserIDs []string
	AllowSelect     bool
	Text            string
	Attachments     []Attachment
	// FailList is what the server answered: the customers that are not
	// the sender's.
	FailList []string
	// Body is the request as sent.
	Body json.RawMessage
	At   time.Time
}

// templateSend is one recipient of a message task: a customer, or a
// group (chatID) of a task to groups.
type templateSend struct {
	externalUserID string
	chatID         string
	userID         string
	status         int
	sendTime       time.Time
}

// MsgTemplates returns the message tasks created, in order.
func (s *Server) MsgTemplates() []MsgTemplateRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]MsgTemplateRequest, len(s.templates))
	for i, t := range s.templates {
		out[i] = *t
	}
	return out
}

// ConfirmMsgTemplate plays the employee confirming the message task msgID
// in WeCom: its pending customers (or groups, for a task to groups)
// become sent (status 1) now; a stopped task sends nothing (its
// employees can no longer send it). It reports whether the task exists.
func (s *Server) ConfirmMsgTemplate(msgID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sends, ok := s.templateSends[msgID]
	if s.stopped[msgID] {
		return ok
	}
	for _, st := range sends {
		if st.status == 0 {
			st.status, st.sendTime = 1, s.now()
		}
	}
	return ok
}

// RefuseMsgTemplate plays WeCom failing the message task msgID for its
// pending customers with status (2: the customer is no longer the
// employee's contact; 3: the customer got their quota of group
// messages). It reports whether the task exists.
func (s *Server) RefuseMsgTemplate(msgID string, status int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sends, ok := s.templateSends[msgID]
	for _, st := range sends {
		if st.status == 0 {
			st.status = status
		}
	}
	return ok
}

// follows reports whether userID follows the customer.
func (s *Server) follows(externalUserID, userID string) bool {
	c := s.contacts[externalUserID]
	if c == nil {
		return false
	}
	_, ok := c.FollowUser(userID)
	return ok
}

func (s *Server) serveAddMsgTemplate(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		ChatType       string   `json:"chat_type"`
		ExternalUserID []string `json:"external_userid"`
		ChatIDList     []string `json:"chat_id_list"`
		TagFilter      *struct {
			GroupList []struct {
				TagList []string `json:"tag_list"`
			} `json:"group_list"`
		} `json:"tag_filter"`
		Sender      string       `json:"sender"`
		AllowSelect bool         `json:"allow_select"`
		Text        *textBody    `json:"text"`
		Attachments []Attachment `json:"attachments"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.ChatType == "" {
		req.ChatType = "single"
	}
	if req.ChatType == "group" {
		return s.serveGroupMsgTemplate(body)
	}
	if req.ChatType != "single" {
		return nil, errorf(CodeInvalidParameter, "the fake supports chat_type single only")
	}
	text := ""
	if req.Text != nil {
		text = req.Text.Content
	}
	if text == "" && len(req.Attachments) == 0 {
		return nil, codeErr(CodeEmptyContent)
	}
	if e := s.checkMessage(text, req.Attachments); e != nil {
		return nil, e
	}
	if len(req.ExternalUserID) == 0 {
		// Not verified: WeCom may then pick customers by tag_filter or all
		// of the sender's; the fake wants them listed.
		return nil, codeErr(CodeNoCustomerToSend)
	}
	if req.Sender != "" && !s.isEmployee(req.Sender) {
		return nil, codeErr(CodeInvalidUserID)
	}
	t := &MsgTemplateRequest{
		ChatType: req.ChatType, Sender: req.Sender, ExternalUserIDs: req.ExternalUserID, AllowSelect: req.AllowSelect,
		Text: text, Attachments: req.Attachments, FailList: []string{}, Body: json.RawMessage(slices.Clone(body)), At: s.now(),
	}
	var sends []*templateSend
	for _, id := range req.ExternalUserID {
		sender := req.Sender
		if sender == "" {
			// WeCom sends through the employee who last chatted with the
			// customer; the fake takes the first who follows them.
			if c := s.contacts[id]; c != nil && len(c.FollowUsers) > 0 {
				sender = c.FollowUsers[0].UserID
			}
		}
		if !s.follows(id, sender) {
			t.FailList = append(t.FailList, id)
			continue
		}
		sends = append(sends, &templateSend{externalUserID: id, userID: sender})
	}
	if len(sends) == 0 {
		// Not verified: whether WeCom answers 41048 or errcode 0 with every
		// customer in fail_list.
		return nil, codeErr(CodeNoCustomerToSend)
	}
	t.MsgID = "msg" + randomHex(12)
	s.templates = append(s.templates, t)
	s.templateSends[t.MsgID] = sends
	out := s.recorded("add_msg_template")
	out["msgid"] = t.MsgID
	out["fail_list"] = t.FailList
	return out, nil
}

func (s *Server) serveGroupMsgSendResult(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		MsgID  string `json:"msgid"`
		UserID string `json:"userid"`
		Limit  int    `json:"limit"`
		Cursor string `json:"cursor"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	switch {
	case req.MsgID == "":
		return nil, codeErr(CodeMissingMsgID)
	case req.UserID == "":
		return nil, codeErr(CodeMissingUserID)
	}
	sends, ok := s.templateSends[req.MsgID]
	if !ok {
		return nil, codeErr(CodeInvalidMsgID)
	}
	limit := req.Limit
	if limit <= 0 || limit > 1000 {
		limit = 500
	}
	var mine []*templateSend
	for _, st := range sends {
		if st.userID == req.UserID {
			mine = append(mine, st)
		}
	}
	from, ok := decodeCursor("send", req.Cursor)
	if !ok || from > len(mine) {
		return nil, codeErr(CodeInvalidCursor)
	}
	to := min(from+limit, len(mine))
	list := make([]map[string]any, 0, to-from)
	for _, st := range mine[from:to] {
		// WeCom leaves out external_userid for a task to groups, and
		// chat_id for one to customers.
		e := map[string]any{"userid": st.userID, "status": st.status}
		if st.chatID != "" {
			e["chat_id"] = st.chatID
		} else {
			e["external_userid"] = st.externalUserID
		}
		if !st.sendTime.IsZero() {
			e["send_time"] = st.sendTime.Unix()
		}
		list = append(list, e)
	}
	next := ""
	if to < len(mine) {
		next = encodeCursor("send", to)
	}
	out := s.recorded("get_groupmsg_send_result")
	out["send_list"] = list
	out["next_cursor"] = next
	return out, nil
}

// MsgTemplateStops returns the msgid of each accepted
// cancel_groupmsg_send, in order (a task stopped twice is there twice).
func (s *Server) MsgTemplateStops() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.stops)
}

// serveCancelGroupMsgSend stops a message task: its employees can no
// longer send it; what they sent stays sent (and its send results say
// so), the rest stays not sent (status 0). Stopping a task twice is not
// an error (not verified against WeCom).
func (s *Server) serveCancelGroupMsgSend(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		MsgID string `json:"msgid"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.MsgID == "" {
		return nil, codeErr(CodeMissingMsgID)
	}
	if _, ok := s.templateSends[req.MsgID]; !ok {
		return nil, codeErr(CodeInvalidMsgID)
	}
	s.stopped[req.MsgID] = true
	s.stops = append(s.stops, req.MsgID)
	return s.recorded("cancel_groupmsg_send"), nil
}

// ---- contact ways ----

// ContactWayRequest is an accepted add_contact_way.
type ContactWayRequest struct {
	ConfigID string
	QRCode   string
	Type     int
	Scene    int
	Style    int
	Remark   string
	// SkipVerify is what was sent; nil when absent (WeCom's default is
	// true).
	SkipVerify *bool
	State      string
	Users      []string
	Party      []int
}

// ContactWays returns the contact ways created, in order.
func (s *Server) ContactWays() []ContactWayRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.contactWays)
}

func (s *Server) serveAddContactWay(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		Type          int             `json:"type"`
		Scene         int             `json:"scene"`
		Style         int             `json:"style"`
		Remark        string          `json:"remark"`
		SkipVerify    *bool           `json:"skip_verify"`
		State         string          `json:"state"`
		User          []string        `json:"user"`
		Party         []int           `json:"party"`
		IsTemp        bool            `json:"is_temp"`
		ExpiresIn     int             `json:"expires_in"`
		ChatExpiresIn int             `json:"chat_expires_in"`
		UnionID       string          `json:"unionid"`
		IsExclusive   bool            `json:"is_exclusive"`
		Conclusions   json.RawMessage `json:"conclusions"`
		MarkSource    bool            `json:"mark_source"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	switch {
	case req.Type == 0:
		return nil, codeErr(CodeMissingWayType)
	case req.Type != 1 && req.Type != 2:
		return nil, codeErr(CodeInvalidWayType)
	case req.Scene == 0:
		return nil, codeErr(CodeMissingWayScene)
	case req.Scene != 1 && req.Scene != 2:
		return nil, codeErr(CodeInvalidWayScene)
	case len(req.User)+len(req.Party) == 0:
		return nil, codeErr(CodeMissingUserID)
	case len(req.User) > 100:
		return nil, codeErr(CodeTooManyWayUsers)
	case req.Type == 1 && (len(req.User) != 1 || len(req.Party) != 0):
		return nil, errorf(CodeInvalidParameter, "a single contact way takes exactly one user")
	case utf8.RuneCountInString(req.State) > 30:
		return nil, errorf(CodeInvalidParameter, "state exceeds 30 characters")
	case utf8.RuneCountInString(req.Remark) > 30:
		return nil, errorf(CodeInvalidParameter, "remark exceeds 30 characters")
	}
	for _, u := range req.User {
		if !s.isEmployee(u) {
			return nil, codeErr(CodeInvalidUserID)
		}
	}
	w := ContactWayRequest{
		ConfigID: randomHex(16), Type: req.Type, Scene: req.Scene, Style: req.Style, Remark: req.Remark,
		SkipVerify: req.SkipVerify, State: req.State, Users: req.User, Party: req.Party,
	}
	out := s.recorded("add_contact_way")
	if req.Scene == 2 {
		w.QRCode = fmt.Sprintf("http://p.qpic.cn/wwhead/%s/0", randomHex(14))
		out["qr_code"] = w.QRCode
	} else {
		delete(out, "qr_code")
	}
	out["config_id"] = w.ConfigID
	s.contactWays = append(s.contactWays, w)
	return out, nil
}

// ---- transfers ----

// TransferRequest is an accepted transfer_customer (or, Resigned,
// resigned/transfer_customer).
type TransferRequest struct {
	Resigned           bool
	HandoverUserID     string
	TakeoverUserID     string
	ExternalUserIDs    []string
	TransferSuccessMsg string
	// Results is the per-customer errcode the server answered.
	Results map[string]int
}

// Transfers returns the transfers requested, in order, with what the
// server answered for each customer. An accepted customer (errcode 0)
// waits for the takeover (transfer_result status 2) until
// CompleteTransfers, RefuseTransfer or 24 hours on the server's clock.
func (s *Server) Transfers() []TransferRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.transfers)
}

func (s *Server) serveTransfer(resigned bool) handler {
	return func(_ *http.Request, body []byte) (map[string]any, *apiError) {
		var req struct {
			HandoverUserID     string   `json:"handover_userid"`
			TakeoverUserID     string   `json:"takeover_userid"`
			ExternalUserID     []string `json:"external_userid"`
			TransferSuccessMsg *string  `json:"transfer_success_msg"`
		}
		if e := decode(body, &req); e != nil {
			return nil, e
		}
		if resigned && req.TransferSuccessMsg != nil {
			return nil, errorf(CodeInvalidParameter, "unknown field transfer_success_msg, Warning: wrong json format.")
		}
		switch {
		case req.HandoverUserID == "" || req.TakeoverUserID == "":
			return nil, codeErr(CodeMissingUserID)
		case len(req.ExternalUserID) == 0:
			return nil, codeErr(CodeMissingExternalUser)
		case len(req.ExternalUserID) > 100:
			return nil, errorf(CodeInvalidParameter, "external_userid exceeds 100")
		case req.TransferSuccessMsg != nil && utf8.RuneCountInString(*req.TransferSuccessMsg) > 200:
			return nil, errorf(CodeInvalidParameter, "transfer_success_msg exceeds 200 characters")
		case !s.isEmployee(req.TakeoverUserID) || (!resigned && !s.isEmployee(req.HandoverUserID)):
			return nil, codeErr(CodeInvalidUserID)
		}
		t := TransferRequest{
			Resigned: resigned, HandoverUserID: req.HandoverUserID, TakeoverUserID: req.TakeoverUserID,
			ExternalUserIDs: req.ExternalUserID, Results: make(map[string]int),
		}
		if req.TransferSuccessMsg != nil {
			t.TransferSuccessMsg = *req.TransferSuccessMsg
		}
		customers := make([]map[string]any, 0, len(req.ExternalUserID))
		for _, id := range req.ExternalUserID {
			code := s.transferCode(resigned, req.HandoverUserID, req.TakeoverUserID, id)
			if code == 0 {
				s.startTransfer(resigned, req.HandoverUserID, req.TakeoverUserID, id)
			}
			t.Results[id] = code
			customers = append(customers, map[string]any{"external_userid": id, "errcode": code})
		}
		s.transfers = append(s.transfers, t)
		out := s.recorded("transfer_customer")
		out["customer"] = customers
		return out, nil
	}
}

// ---- app messages ----

// AppMessageRequest is an accepted message/send.
type AppMessageRequest struct {
	MsgID   string
	ToUser  []string
	AgentID int
	MsgType string
	// Content is the text or markdown content, or a text card's
	// description; Title and URL are a text card's.
	Content string
	Title   string
	URL     string
	// InvalidUsers are the recipients who are not employees.
	InvalidUsers []string
	// Duplicate is true when WeCom's duplicate check dropped the message.
	Duplicate bool
	// Body is the request as sent.
	Body json.RawMessage
	At   time.Time
}

// AppMessages returns the app messages accepted, in order.
func (s *Server) AppMessages() []AppMessageRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.appMessages)
}

// appMsgFields are the fields message/send documents.
var appMsgFields = map[string]bool{
	"touser": true, "toparty": true, "totag": true, "msgtype": true, "agentid": true, "safe": true,
	"enable_id_trans": true, "enable_duplicate_check": true, "duplicate_check_interval": true,
	"text": true, "image": true, "voice": true, "video": true, "file": true, "textcard": true, "news": true,
	"mpnews": true, "markdown": true, "miniprogram_notice": true, "template_card": true,
}

func (s *Server) serveMessageSend(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var fields map[string]json.RawMessage
	if e := decode(body, &fields); e != nil {
		return nil, e
	}
	for k := range fields {
		if !appMsgFields[k] {
			return nil, errorf(CodeInvalidParameter, "unknown field %s, Warning: wrong json format.", k)
		}
	}
	var req struct {
		ToUser                 string          `json:"touser"`
		ToParty                string          `json:"toparty"`
		ToTag                  string          `json:"totag"`
		MsgType                string          `json:"msgtype"`
		AgentID                json.RawMessage `json:"agentid"`
		EnableDuplicateCheck   int             `json:"enable_duplicate_check"`
		DuplicateCheckInterval int             `json:"duplicate_check_interval"`
		Text                   *textBody       `json:"text"`
		Markdown               *textBody       `json:"markdown"`
		TextCard               *struct {
			Title       string `json:"title"`
			Description string `json:"description"`
			URL         string `json:"url"`
			BtnTxt      string `json:"btntxt"`
		} `json:"textcard"`
	}
	// Loose: the other message types are accepted as they come.
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, errorf(CodeInvalidParameter, "invalid json: %v, Warning: wrong json format.", err)
	}
	if len(req.AgentID) == 0 {
		return nil, codeErr(CodeMissingAgentID)
	}
	// WeCom documents agentid as an integer; a numeric string is accepted
	// here because the SDK sends one (not verified).
	agent, err := strconv.Atoi(strings.Trim(string(req.AgentID), `"`))
	if err != nil {
		return nil, errorf(40056, "invalid agentid")
	}
	if strconv.Itoa(agent) != s.agentID {
		return nil, codeErr(CodeAgentMismatch)
	}
	if req.ToUser == "" && req.ToParty == "" && req.ToTag == "" {
		return nil, codeErr(CodeNoRecipient)
	}
	m := AppMessageRequest{MsgType: req.MsgType, AgentID: agent, Body: json.RawMessage(slices.Clone(body)), At: s.now()}
	switch req.MsgType {
	case "text":
		if req.Text != nil {
			m.Content = req.Text.Content
		}
	case "markdown":
		if req.Markdown != nil {
			m.Content = req.Markdown.Content
		}
	case "textcard":
		if c := req.TextCard; c != nil {
			if c.Title == "" || c.URL == "" {
				return nil, errorf(CodeInvalidParameter, "textcard needs title and url")
			}
			if e := checkTextCard(c.Title, c.Description, c.URL, c.BtnTxt); e != nil {
				return nil, e
			}
			m.Content, m.Title, m.URL = c.Description, c.Title, c.URL
		}
	case "news":
		if e := checkAppNews(body, &m); e != nil {
			return nil, e
		}
	case "":
		return nil, errorf(40008, "invalid message type")
	default:
		m.Content = "(" + req.MsgType + ")"
	}
	if m.Content == "" {
		return nil, codeErr(CodeEmptyContent)
	}
	var valid []string
	for _, u := range strings.Split(req.ToUser, "|") {
		if u == "" {
			continue
		}
		m.ToUser = append(m.ToUser, u)
		if s.isEmployee(u) {
			valid = append(valid, u)
		} else {
			m.InvalidUsers = append(m.InvalidUsers, strings.ToLower(u))
		}
	}
	if len(valid) == 0 && req.ToParty == "" && req.ToTag == "" {
		return nil, codeErr(CodeAllToUserInvalid)
	}
	if req.EnableDuplicateCheck == 1 {
		interval := time.Duration(req.DuplicateCheckInterval) * time.Second
		if interval <= 0 {
			interval = 1800 * time.Second
		}
		key := req.ToUser + "\x00" + req.MsgType + "\x00" + m.Content + "\x00" + m.Title
		if last, ok := s.dupChecks[key]; ok && m.At.Sub(last) < interval {
			m.Duplicate = true
		} else {
			s.dupChecks[key] = m.At
		}
	}
	m.MsgID = randomHex(16)
	s.appMessages = append(s.appMessages, m)
	out := s.recorded("message_send")
	out["msgid"] = m.MsgID
	out["invaliduser"] = strings.Join(m.InvalidUsers, "|")
	out["invalidparty"] = ""
	out["invalidtag"] = ""
	out["unlicenseduser"] = ""
	out["response_code"] = randomHex(20)
	return out, nil
}

// maxGroupMsgSpan is the longest range get_groupmsg_list_v2 accepts.
const maxGroupMsgSpan = 31 * 24 * time.Hour

// serveGroupMsgList lists message tasks created in a time range
// (get_groupmsg_list_v2): those to customers for chat_type single,
// those to customer groups for group. Every task of the fake was
// created through the API (add_msg_template), so it is "created by the
// corp" (create_type
// 0) and, as WeCom documents for API-created tasks, carries no creator.
// A creator filter keeps the tasks whose sender it names (not verified
// against WeCom). create_time is a string of digits, as WeCom's
// document shows it. A range over a month (the document's limit), an end
// before the start, missing times or a bad filter_type answer 40058 (the
// code is not verified: the document names none); limit is at most 100,
// 50 by default and when over.
func (s *Server) serveGroupMsgList(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		ChatType   string `json:"chat_type"`
		StartTime  *int64 `json:"start_time"`
		EndTime    *int64 `json:"end_time"`
		Creator    string `json:"creator"`
		FilterType *int   `json:"filter_type"`
		Limit      int    `json:"limit"`
		Cursor     string `json:"cursor"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.ChatType == "" {
		req.ChatType = "single"
	}
	filter := 2
	if req.FilterType != nil {
		filter = *req.FilterType
	}
	switch {
	case req.ChatType != "single" && req.ChatType != "group":
		return nil, errorf(CodeInvalidParameter, "invalid chat_type")
	case req.StartTime == nil || req.EndTime == nil:
		return nil, errorf(CodeInvalidParameter, "start_time and end_time are required")
	case *req.EndTime < *req.StartTime:
		return nil, errorf(CodeInvalidParameter, "end_time is before start_time")
	case time.Duration(*req.EndTime-*req.StartTime)*time.Second > maxGroupMsgSpan:
		return nil, errorf(CodeInvalidParameter, "the range of start_time and end_time is at most one month")
	case filter < 0 || filter > 2:
		return nil, errorf(CodeInvalidParameter, "invalid filter_type")
	}
	limit := req.Limit
	if limit <= 0 || limit > 100 {
		limit = 50 // WeCom: 最大值100，默认值50，超过最大值时取默认值
	}
	type task struct {
		msgID, sender, text string
		atts                []Attachment
		at                  time.Time
	}
	var all []task
	if filter != 1 {
		if req.ChatType == "single" {
			for _, t := range s.templates {
				all = append(all, task{t.MsgID, t.Sender, t.Text, t.Attachments, t.At})
			}
		} else {
			for _, t := range s.groups.templates {
				all = append(all, task{t.MsgID, t.Sender, t.Text, t.Attachments, t.At})
			}
		}
	}
	var match []task
	for _, t := range all {
		at := t.at.Unix()
		if at < *req.StartTime || at > *req.EndTime || req.Creator != "" && t.sender != req.Creator {
			continue
		}
		match = append(match, t)
	}
	from, ok := decodeCursor("groupmsg", req.Cursor)
	if !ok || from > len(match) {
		return nil, codeErr(CodeInvalidCursor)
	}
	to := min(from+limit, len(match))
	list := make([]map[string]any, 0, to-from)
	for _, t := range match[from:to] {
		e := map[string]any{"msgid": t.msgID, "create_time": strconv.FormatInt(t.at.Unix(), 10), "create_type": 0}
		if t.text != "" {
			e["text"] = map[string]any{"content": t.text}
		}
		if len(t.atts) > 0 {
			e["attachments"] = t.atts
		}
		list = append(list, e)
	}
	next := ""
	if to < len(match) {
		next = encodeCursor("groupmsg", to)
	}
	out := s.recorded("get_groupmsg_list_v2")
	out["group_msg_list"] = list
	out["next_cursor"] = next
	return out, nil
}
