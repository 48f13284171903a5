package wecom

import (
	"context"
	"fmt"
	"time"

	"github.com/silenceper/wechat/v2/util"

	"github.com/scrmgw/scrmgw/adapters"
)

// Customer groups (客户群): groups of customers and employees, owned by an
// employee. change_external_chat callbacks say one changed; groupchat/get
// describes it; a message reaches groups through their owner, as a
// message task (add_msg_template, chat_type group) the owner confirms.

// MaxGroupsPerTask is WeCom's limit on chat_id_list in one group message
// task.
const MaxGroupsPerTask = 2000

// maxGroupListPage is groupchat/list's largest page.
const maxGroupListPage = 1000

// Group member types of groupchat/get.
const (
	GroupMemberEmployee = 1
	GroupMemberCustomer = 2
)

// GroupChat is a customer group (groupchat/get).
type GroupChat struct {
	ChatID        string
	Name          string
	Owner         string
	Notice        string
	CreateTime    time.Time
	Members       []GroupChatMember
	Admins        []string
	MemberVersion string
}

// GroupChatMember is one member of a customer group.
type GroupChatMember struct {
	UserID    string
	Type      int
	UnionID   string
	JoinTime  time.Time
	JoinScene int
	Invitor   string
	Nickname  string
	Name      string
}

type groupChatRequest struct {
	ChatID   string `json:"chat_id"`
	NeedName int    `json:"need_name"`
}

type groupChatResponse struct {
	util.CommonError
	GroupChat struct {
		ChatID     string `json:"chat_id"`
		Name       string `json:"name"`
		Owner      string `json:"owner"`
		CreateTime int64  `json:"create_time"`
		Notice     string `json:"notice"`
		MemberList []struct {
			UserID    string `json:"userid"`
			Type      int    `json:"type"`
			UnionID   string `json:"unionid"`
			JoinTime  int64  `json:"join_time"`
			JoinScene int    `json:"join_scene"`
			Invitor   struct {
				UserID string `json:"userid"`
			} `json:"invitor"`
			GroupNickname string `json:"group_nickname"`
			Name          string `json:"name"`
		} `json:"member_list"`
		AdminList []struct {
			UserID string `json:"userid"`
		} `json:"admin_list"`
		MemberVersion string `json:"member_version"`
	} `json:"group_chat"`
}

// GroupChat describes a customer group with its members' names
// (externalcontact/groupchat/get, need_name 1). A group WeCom does not
// know (dismissed, or not the corp's) is ErrInvalidRecipient.
func (a *API) GroupChat(ctx context.Context, chatID string) (*GroupChat, error) {
	op := "getting customer group " + chatID
	if chatID == "" {
		return nil, noRecipient(op, "chat id")
	}
	var res groupChatResponse
	if err := a.post(ctx, a.contTok, op, "externalcontact/groupchat/get", groupChatRequest{ChatID: chatID, NeedName: 1}, &res); err != nil {
		return nil, err
	}
	g := res.GroupChat
	out := &GroupChat{ChatID: g.ChatID, Name: g.Name, Owner: g.Owner, Notice: g.Notice, MemberVersion: g.MemberVersion}
	if g.CreateTime > 0 {
		out.CreateTime = time.Unix(g.CreateTime, 0).UTC()
	}
	for _, m := range g.MemberList {
		gm := GroupChatMember{UserID: m.UserID, Type: m.Type, UnionID: m.UnionID, JoinScene: m.JoinScene,
			Invitor: m.Invitor.UserID, Nickname: m.GroupNickname, Name: m.Name}
		if m.JoinTime > 0 {
			gm.JoinTime = time.Unix(m.JoinTime, 0).UTC()
		}
		out.Members = append(out.Members, gm)
	}
	for _, ad := range g.AdminList {
		out.Admins = append(out.Admins, ad.UserID)
	}
	return out, nil
}

type groupListRequest struct {
	StatusFilter int `json:"status_filter"`
	OwnerFilter  *struct {
		UserIDList []string `json:"userid_list"`
	} `json:"owner_filter,omitempty"`
	Cursor string `json:"cursor,omitempty"`
	Limit  int    `json:"limit"`
}

type groupListResponse struct {
	util.CommonError
	GroupChatList []struct {
		ChatID string `json:"chat_id"`
		Status int    `json:"status"`
	} `json:"group_chat_list"`
	NextCursor string `json:"next_cursor"`
}

// GroupChatIDs pages through the customer groups of owners (every
// group, with none), 1000 at a time (externalcontact/groupchat/list).
func (a *API) GroupChatIDs(ctx context.Context, owners []string, cursor string) (ids []string, next string, err error) {
	req := groupListRequest{Cursor: cursor, Limit: maxGroupListPage}
	if len(owners) > 0 {
		if err := checkIDs("listing customer groups", "owner userids", owners, 100); err != nil {
			return nil, "", err
		}
		req.OwnerFilter = &struct {
			UserIDList []string `json:"userid_list"`
		}{owners}
	}
	var res groupListResponse
	if err := a.post(ctx, a.contTok, "listing customer groups", "externalcontact/groupchat/list", req, &res); err != nil {
		return nil, "", err
	}
	for _, g := range res.GroupChatList {
		ids = append(ids, g.ChatID)
	}
	return ids, res.NextCursor, nil
}

// groupMsgTemplateRequest is add_msg_template for customer groups.
type groupMsgTemplateRequest struct {
	ChatType    string           `json:"chat_type"`
	ChatIDList  []string         `json:"chat_id_list"`
	Sender      string           `json:"sender"`
	Text        *wireText        `json:"text,omitempty"`
	Attachments []wireAttachment `json:"attachments,omitempty"`
}

// groupWelcomeRequest is group_welcome_template/add: a text and at most
// one of image, link, miniprogram, file or video.
type groupWelcomeRequest struct {
	Text        *wireText        `json:"text,omitempty"`
	Image       *wireMedia       `json:"image,omitempty"`
	Link        *wireLink        `json:"link,omitempty"`
	MiniProgram *wireMiniProgram `json:"miniprogram,omitempty"`
	File        *wireMedia       `json:"file,omitempty"`
	Video       *wireMedia       `json:"video,omitempty"`
	Notify      int              `json:"notify"`
}

type groupWelcomeResponse struct {
	util.CommonError
	TemplateID string `json:"template_id"`
}

// ---- the channel's groups (adapters.GroupLookup, GroupSender, GroupWelcomer) ----

var (
	_ adapters.GroupLookup   = (*Client)(nil)
	_ adapters.GroupSender   = (*Client)(nil)
	_ adapters.GroupWelcomer = (*Client)(nil)
)

// LookupGroup describes a customer group.
func (c *Client) LookupGroup(ctx context.Context, id string) (*adapters.Group, error) {
	g, err := c.api.GroupChat(ctx, id)
	if err != nil {
		return nil, err
	}
	out := &adapters.Group{ID: g.ChatID, Name: g.Name, Owner: g.Owner, Notice: g.Notice, Created: g.CreateTime}
	for _, m := range g.Members {
		out.Members = append(out.Members, adapters.GroupMember{ID: m.UserID, Guide: m.Type == GroupMemberEmployee,
			Name: m.Name, JoinedAt: m.JoinTime, JoinScene: m.JoinScene})
	}
	return out, nil
}

// GroupIDs pages through the customer groups owners own.
func (c *Client) GroupIDs(ctx context.Context, owners []string, cursor string) ([]string, string, error) {
	return c.api.GroupChatIDs(ctx, owners, cursor)
}

// MaxGroups is WeCom's limit on the groups of one message task.
func (c *Client) MaxGroups() int { return MaxGroupsPerTask }

// SendToGroups creates a message task for owner to send m to their
// customer groups (add_msg_template, chat_type group, chat_id_list): it
// goes out when the owner confirms it in WeCom, so the receipt is
// Pending. m's kinds are those a message through a guide carries. A
// failure after which WeCom may have created the task all the same
// (InDoubt) also wraps adapters.ErrOutcomeUnknown: ReconcileGroups
// tells before it is sent again.
func (c *Client) SendToGroups(ctx context.Context, owner string, groupIDs []string, m *adapters.Outbound) (*adapters.Receipt, error) {
	const op = "adding group message task"
	if owner == "" {
		return nil, noRecipient(op, "owner")
	}
	if err := checkIDs(op, "chat ids", groupIDs, MaxGroupsPerTask); err != nil {
		return nil, err
	}
	b := &builder{ctx: ctx, m: m, resolve: c.media.Resolve}
	text, atts, err := b.attachments("to a customer group")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	req := groupMsgTemplateRequest{ChatType: "group", ChatIDList: groupIDs, Sender: owner, Text: text, Attachments: atts}
	var res msgTemplateResponse
	if err := c.api.post(ctx, c.api.contTok, op, apiAddMsgTemplate, req, &res); err != nil {
		if InDoubt(err) {
			// WeCom may have created the task: ReconcileGroups tells.
			return nil, fmt.Errorf("%w: %w", err, adapters.ErrOutcomeUnknown)
		}
		return nil, err
	}
	return &adapters.Receipt{ExternalID: res.MsgID, Pending: true}, nil
}

// AddGroupWelcome adds a group welcome template (入群欢迎语素材,
// externalcontact/group_welcome_template/add) from m: its text and at
// most one picture, link card or miniprogram. Owners pick it for their
// groups in WeCom.
func (c *Client) AddGroupWelcome(ctx context.Context, m *adapters.Outbound) (string, error) {
	const op = "adding group welcome template"
	b := &builder{ctx: ctx, m: m, resolve: c.media.Resolve}
	text, atts, err := b.attachments("in a group welcome")
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	req := groupWelcomeRequest{Text: text}
	for _, a := range atts {
		req.Image, req.Link, req.MiniProgram, req.File, req.Video = a.Image, a.Link, a.MiniProgram, a.File, a.Video
	}
	var res groupWelcomeResponse
	if err := c.api.post(ctx, c.api.contTok, op, "externalcontact/group_welcome_template/add", req, &res); err != nil {
		return "", err
	}
	return res.TemplateID, nil
}
