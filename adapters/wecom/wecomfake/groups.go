package wecomfake

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom"
)

// Customer groups (客户群): groupchat/get, groupchat/list, group message
// tasks (add_msg_template with chat_type group) and group welcome
// templates, with the shapes of WeCom's documents 92122, 92120, 92135
// and 92366, and change_external_chat callbacks (92130).

// Paths of the customer group APIs.
const (
	PathGroupChatGet         = "/cgi-bin/externalcontact/groupchat/get"
	PathGroupChatList        = "/cgi-bin/externalcontact/groupchat/list"
	PathGroupWelcomeTemplate = "/cgi-bin/externalcontact/group_welcome_template/add"
)

// CodeInvalidChatID is WeCom's 不合法的chatid: a group it does not know,
// or one dismissed.
const CodeInvalidChatID = 40050

// GroupMember is one member of a fake customer group.
type GroupMember struct {
	UserID string
	// Type is 1 for an employee, 2 for a customer.
	Type      int
	Name      string
	JoinTime  time.Time
	JoinScene int
}

// Group is a fake customer group.
type Group struct {
	ChatID    string
	Name      string
	Owner     string
	Notice    string
	Created   time.Time
	Members   []GroupMember
	Dismissed bool
	Version   int
}

// GroupMsgTemplateRequest is a group message task the server created.
type GroupMsgTemplateRequest struct {
	MsgID       string
	Sender      string
	ChatIDs     []string
	Text        string
	Attachments []Attachment
	Body        json.RawMessage
	At          time.Time
}

// GroupWelcomeRequest is a group welcome template the server added.
type GroupWelcomeRequest struct {
	TemplateID string
	Body       json.RawMessage
}

type groupState struct {
	groups    []*Group
	templates []GroupMsgTemplateRequest
	welcomes  []GroupWelcomeRequest
}

// CreateGroup creates a customer group owned by the employee owner (a
// member of it) with the customers, and returns its chat id.
func (s *Server) CreateGroup(owner, name string, customers ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	g := &Group{ChatID: "wr" + randomHex(14), Name: name, Owner: owner, Created: now, Version: 1,
		Members: []GroupMember{{UserID: owner, Type: wecom.GroupMemberEmployee, Name: owner, JoinTime: now, JoinScene: 1}}}
	for _, c := range customers {
		g.Members = append(g.Members, GroupMember{UserID: c, Type: wecom.GroupMemberCustomer, Name: s.contactName(c), JoinTime: now, JoinScene: 3})
	}
	s.groups.groups = append(s.groups.groups, g)
	return g.ChatID
}

func (s *Server) contactName(id string) string {
	if c := s.contacts[id]; c != nil {
		return c.Name
	}
	return ""
}

// ChangeGroup changes a customer group as its owner or members would in
// WeCom (fn edits it) and moves its member version on; it reports the
// versions before and after, for the callback.
func (s *Server) ChangeGroup(chatID string, fn func(g *Group)) (last, cur string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.group(chatID)
	if g == nil {
		return "", ""
	}
	last = memVersion(g)
	fn(g)
	g.Version++
	return last, memVersion(g)
}

// JoinGroup adds customers to a group (by QR code) and returns the
// member versions before and after.
func (s *Server) JoinGroup(chatID string, customers ...string) (last, cur string) {
	now := s.now()
	return s.ChangeGroup(chatID, func(g *Group) {
		for _, c := range customers {
			g.Members = append(g.Members, GroupMember{UserID: c, Type: wecom.GroupMemberCustomer, Name: s.contactName(c), JoinTime: now, JoinScene: 3})
		}
	})
}

// LeaveGroup removes members from a group.
func (s *Server) LeaveGroup(chatID string, ids ...string) (last, cur string) {
	return s.ChangeGroup(chatID, func(g *Group) {
		g.Members = slices.DeleteFunc(g.Members, func(m GroupMember) bool { return slices.Contains(ids, m.UserID) })
	})
}

// Groups returns the server's groups.
func (s *Server) Groups() []Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Group, 0, len(s.groups.groups))
	for _, g := range s.groups.groups {
		cp := *g
		cp.Members = slices.Clone(g.Members)
		out = append(out, cp)
	}
	return out
}

// GroupMsgTemplates returns the group message tasks created, in order.
func (s *Server) GroupMsgTemplates() []GroupMsgTemplateRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.groups.templates)
}

// GroupWelcomes returns the group welcome templates added, in order.
func (s *Server) GroupWelcomes() []GroupWelcomeRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.groups.welcomes)
}

func memVersion(g *Group) string { return "v" + strconv.Itoa(g.Version) }

func (s *Server) group(chatID string) *Group {
	for _, g := range s.groups.groups {
		if g.ChatID == chatID {
			return g
		}
	}
	return nil
}

func (s *Server) serveGroupChatGet(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		ChatID   string `json:"chat_id"`
		NeedName int    `json:"need_name"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	g := s.group(req.ChatID)
	if g == nil || g.Dismissed {
		return nil, codeErr(CodeInvalidChatID)
	}
	members := make([]map[string]any, 0, len(g.Members))
	for _, m := range g.Members {
		mm := map[string]any{"userid": m.UserID, "type": m.Type, "join_time": m.JoinTime.Unix(), "join_scene": m.JoinScene,
			"invitor": map[string]any{"userid": g.Owner}, "group_nickname": ""}
		if req.NeedName == 1 {
			mm["name"] = m.Name
		}
		members = append(members, mm)
	}
	return map[string]any{"group_chat": map[string]any{"chat_id": g.ChatID, "name": g.Name, "owner": g.Owner,
		"create_time": g.Created.Unix(), "notice": g.Notice, "member_list": members,
		"admin_list": []map[string]any{}, "member_version": memVersion(g)}}, nil
}

func (s *Server) serveGroupChatList(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		StatusFilter int `json:"status_filter"`
		OwnerFilter  *struct {
			UserIDList []string `json:"userid_list"`
		} `json:"owner_filter"`
		Cursor string `json:"cursor"`
		Limit  int    `json:"limit"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.Limit < 1 || req.Limit > 1000 {
		return nil, errorf(CodeInvalidParameter, "limit must be 1-1000")
	}
	from, ok := decodeCursor("chat", req.Cursor)
	if !ok {
		return nil, codeErr(CodeInvalidCursor)
	}
	var ids []string
	for _, g := range s.groups.groups {
		if g.Dismissed || req.OwnerFilter != nil && !slices.Contains(req.OwnerFilter.UserIDList, g.Owner) {
			continue
		}
		ids = append(ids, g.ChatID)
	}
	if from > len(ids) {
		return nil, codeErr(CodeInvalidCursor)
	}
	to := min(from+req.Limit, len(ids))
	list := make([]map[string]any, 0, to-from)
	for _, id := range ids[from:to] {
		list = append(list, map[string]any{"chat_id": id, "status": 0})
	}
	next := ""
	if to < len(ids) {
		next = encodeCursor("chat", to)
	}
	return map[string]any{"group_chat_list": list, "next_cursor": next}, nil
}

// serveGroupMsgTemplate is add_msg_template with chat_type group: the
// sender's groups of chat_id_list (all their groups when absent) get the
// message once the sender confirms it.
func (s *Server) serveGroupMsgTemplate(body []byte) (map[string]any, *apiError) {
	var req struct {
		ChatType    string       `json:"chat_type"`
		ChatIDList  []string     `json:"chat_id_list"`
		Sender      string       `json:"sender"`
		AllowSelect bool         `json:"allow_select"`
		Text        *textBody    `json:"text"`
		Attachments []Attachment `json:"attachments"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.Sender == "" {
		// A group message names its sender: the owner.
		return nil, codeErr(CodeMissingUserID)
	}
	if !s.isEmployee(req.Sender) {
		return nil, codeErr(CodeInvalidUserID)
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
	if len(req.ChatIDList) > wecom.MaxGroupsPerTask {
		return nil, errorf(CodeInvalidParameter, "chat_id_list exceeds 2000")
	}
	for _, id := range req.ChatIDList {
		// Not verified: what WeCom answers for a group the sender does not
		// own; the fake refuses it as an unknown chat.
		if g := s.group(id); g == nil || g.Dismissed || g.Owner != req.Sender {
			return nil, codeErr(CodeInvalidChatID)
		}
	}
	t := GroupMsgTemplateRequest{MsgID: "msg" + randomHex(12), Sender: req.Sender, ChatIDs: req.ChatIDList, Text: text,
		Attachments: req.Attachments, Body: json.RawMessage(slices.Clone(body)), At: s.now()}
	s.groups.templates = append(s.groups.templates, t)
	// Each group is pending until the owner confirms the task
	// (ConfirmMsgTemplate); get_groupmsg_send_result lists them by chat_id.
	chats := req.ChatIDList
	if len(chats) == 0 {
		for _, g := range s.groups.groups {
			if g.Owner == req.Sender && !g.Dismissed {
				chats = append(chats, g.ChatID)
			}
		}
	}
	sends := make([]*templateSend, 0, len(chats))
	for _, id := range chats {
		sends = append(sends, &templateSend{chatID: id, userID: req.Sender})
	}
	s.templateSends[t.MsgID] = sends
	return map[string]any{"fail_list": []string{}, "msgid": t.MsgID}, nil
}

func (s *Server) serveGroupWelcomeTemplate(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		Text        *textBody       `json:"text"`
		Image       json.RawMessage `json:"image"`
		Link        json.RawMessage `json:"link"`
		MiniProgram json.RawMessage `json:"miniprogram"`
		File        json.RawMessage `json:"file"`
		Video       json.RawMessage `json:"video"`
		AgentID     int             `json:"agentid"`
		Notify      int             `json:"notify"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	n := 0
	for _, a := range []json.RawMessage{req.Image, req.Link, req.MiniProgram, req.File, req.Video} {
		if len(a) > 0 {
			n++
		}
	}
	if (req.Text == nil || req.Text.Content == "") && n == 0 {
		return nil, codeErr(CodeEmptyContent)
	}
	if n > 1 {
		// image, link, miniprogram, file and video are exclusive.
		return nil, errorf(CodeInvalidParameter, "only one of image, link, miniprogram, file, video")
	}
	if req.Text != nil {
		if e := tooLong("text", "content", req.Text.Content, maxTaskText); e != nil {
			return nil, e
		}
	}
	w := GroupWelcomeRequest{TemplateID: "msg" + randomHex(12), Body: json.RawMessage(slices.Clone(body))}
	s.groups.welcomes = append(s.groups.welcomes, w)
	return map[string]any{"template_id": w.TemplateID}, nil
}

// ChatChange is a change_external_chat event (客户群变更回调).
type ChatChange struct {
	// CorpID is ToUserName; default DefaultCorpID.
	CorpID string
	ChatID string
	// ChangeType is create, update or dismiss.
	ChangeType string
	// UpdateDetail is add_member, del_member, change_owner, change_name
	// or change_notice, for update.
	UpdateDetail  string
	JoinScene     int
	QuitScene     int
	MemChangeList []string
	// LastMemVer and CurMemVer come with add_member and del_member.
	LastMemVer, CurMemVer string
	// CreateTime defaults to now.
	CreateTime time.Time
}

// XML returns the decrypted callback message.
func (e ChatChange) XML() []byte {
	corp := e.CorpID
	if corp == "" {
		corp = DefaultCorpID
	}
	d := newDoc().text("ToUserName", corp).text("FromUserName", "sys").num("CreateTime", unix(e.CreateTime)).
		text("MsgType", "event").text("Event", wecom.EventChangeExternalChat).text("ChatId", e.ChatID).
		text("ChangeType", e.ChangeType).textIf("UpdateDetail", e.UpdateDetail)
	if e.UpdateDetail == "add_member" {
		d.num("JoinScene", strconv.Itoa(e.JoinScene))
	}
	if e.UpdateDetail == "del_member" {
		d.num("QuitScene", strconv.Itoa(e.QuitScene))
	}
	if len(e.MemChangeList) > 0 {
		d.num("MemChangeCnt", strconv.Itoa(len(e.MemChangeList)))
		d.b.WriteString("<MemChangeList>")
		for _, id := range e.MemChangeList {
			d.text("Item", id)
		}
		d.b.WriteString("</MemChangeList>")
	}
	d.textIf("LastMemVer", e.LastMemVer).textIf("CurMemVer", e.CurMemVer)
	return d.bytes()
}
