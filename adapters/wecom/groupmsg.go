package wecom

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/silenceper/wechat/v2/util"
	"github.com/silenceper/wechat/v2/work/externalcontact"

	"github.com/scrmgw/scrmgw/adapters"
)

// Who created a message task, for GroupMsgList's filter and GroupMsg.
const (
	CreatedByCorp     = 0 // 企业发表: add_msg_template, or the admin console
	CreatedByEmployee = 1 // 个人发表: an employee in the WeCom client
	CreatedByAnyone   = 2
)

// maxGroupMsgListSpan is the longest time range get_groupmsg_list_v2
// accepts (one month).
const maxGroupMsgListSpan = 31 * 24 * time.Hour

// maxGroupMsgListPages bounds one GroupMsgList: 1,000 pages of 100.
const maxGroupMsgListPages = 1000

// GroupMsg is a message task (群发) as get_groupmsg_list_v2 lists it.
type GroupMsg struct {
	MsgID string
	// Creator is the employee who created it; WeCom leaves it out for
	// tasks created through the API.
	Creator    string
	CreateTime time.Time
	CreateType int
	Text       string
	// Attachments are the task's attachments.
	Attachments []Attachment
}

type groupMsgListRequest struct {
	ChatType   string `json:"chat_type"`
	StartTime  int64  `json:"start_time"`
	EndTime    int64  `json:"end_time"`
	Creator    string `json:"creator,omitempty"`
	FilterType int    `json:"filter_type"`
	Limit      int    `json:"limit"`
	Cursor     string `json:"cursor,omitempty"`
}

type groupMsgListResponse struct {
	util.CommonError
	NextCursor   string `json:"next_cursor"`
	GroupMsgList []struct {
		MsgID      string   `json:"msgid"`
		Creator    string   `json:"creator"`
		CreateTime flexUnix `json:"create_time"`
		CreateType int      `json:"create_type"`
		Text       *struct {
			Content string `json:"content"`
		} `json:"text"`
		Attachments []wireAttachment `json:"attachments"`
	} `json:"group_msg_list"`
}

// flexUnix reads a Unix time given as a number or as a string of digits:
// WeCom's document shows create_time as a string ("create_time":"xxxx")
// where its other endpoints use numbers.
type flexUnix int64

func (f *flexUnix) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("create_time %s is not a Unix time", b)
	}
	*f = flexUnix(n)
	return nil
}

// GroupMsgList lists the one-to-one message tasks (chat_type single)
// created between from and to, at most a month apart, of the creator
// type filterType (CreatedByCorp, CreatedByEmployee, CreatedByAnyone),
// all pages (externalcontact/get_groupmsg_list_v2).
func (a *API) GroupMsgList(ctx context.Context, from, to time.Time, filterType int) ([]GroupMsg, error) {
	return a.groupMsgList(ctx, "single", from, to, filterType)
}

// groupMsgList lists the message tasks of chatType (single: to
// customers, group: to customer groups), as GroupMsgList.
func (a *API) groupMsgList(ctx context.Context, chatType string, from, to time.Time, filterType int) ([]GroupMsg, error) {
	op := "listing message tasks"
	if chatType == "group" {
		op = "listing group message tasks"
	}
	switch {
	case !to.After(from):
		return nil, invalidRequest(op, "end %s is not after start %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	case to.Sub(from) > maxGroupMsgListSpan:
		return nil, invalidRequest(op, "%s between start and end; WeCom lists at most a month at a time", to.Sub(from))
	case filterType < CreatedByCorp || filterType > CreatedByAnyone:
		return nil, invalidRequest(op, "filter type %d is not 0, 1 or 2", filterType)
	}
	req := groupMsgListRequest{ChatType: chatType, StartTime: from.Unix(), EndTime: to.Unix(), FilterType: filterType, Limit: 100}
	var out []GroupMsg
	for range maxGroupMsgListPages {
		var res groupMsgListResponse
		if err := a.post(ctx, a.contTok, op, "externalcontact/get_groupmsg_list_v2", req, &res); err != nil {
			return nil, err
		}
		for _, g := range res.GroupMsgList {
			m := GroupMsg{MsgID: g.MsgID, Creator: g.Creator, CreateType: g.CreateType}
			if g.CreateTime > 0 {
				m.CreateTime = time.Unix(int64(g.CreateTime), 0)
			}
			if g.Text != nil {
				m.Text = g.Text.Content
			}
			for _, w := range g.Attachments {
				m.Attachments = append(m.Attachments, w.attachment())
			}
			out = append(out, m)
		}
		if res.NextCursor == "" || res.NextCursor == req.Cursor {
			return out, nil
		}
		req.Cursor = res.NextCursor
	}
	return out, fmt.Errorf("%s: %w: more than %d pages", op, adapters.ErrTemporary, maxGroupMsgListPages)
}

// Reconcile looks for a send's task among those WeCom created from
// reconcileSlack before its claim to the gateway's send timeout and
// reconcileSlack after it (WeCom's clock is not ours; its create_time is
// in whole seconds). It lists a wider window (listMargin either side) and
// keeps the list for listTTL: the sends a dead worker left were claimed
// within moments of each other, so one list serves them all.
const (
	reconcileSlack = 10 * time.Second
	sendTimeout    = 30 * time.Second
	listMargin     = 30 * time.Second
	listTTL        = 2 * time.Minute
)

// taskList is a list of message tasks kept for Reconcile.
type taskList struct {
	mu       sync.Mutex
	from, to time.Time
	at       time.Time
	tasks    []GroupMsg
}

// tasksBetween returns the tasks created from from to to, from the kept
// list when it covers the window and was taken after it ended.
func (c *Client) tasksBetween(ctx context.Context, from, to time.Time) ([]GroupMsg, error) {
	l := &c.tasks
	l.mu.Lock()
	defer l.mu.Unlock()
	now := c.now()
	if !l.at.IsZero() && !from.Before(l.from) && !to.After(l.to) && !to.After(l.at) && now.Sub(l.at) < listTTL {
		return l.tasks, nil
	}
	lf, lt := from.Add(-listMargin), to.Add(listMargin)
	if lt.After(now) {
		lt = now
	}
	tasks, err := c.api.GroupMsgList(ctx, lf, lt, CreatedByCorp)
	if err != nil {
		return nil, err
	}
	l.from, l.to, l.at, l.tasks = lf, lt, now, tasks
	return tasks, nil
}

var _ adapters.Reconciler = (*Client)(nil)

// Reconcile tells whether a send whose worker died went out:
//   - a message task to a member through their guide: it looks for the
//     task among those the corp created around claimedAt
//     (get_groupmsg_list_v2, the same text and attachments, media ids
//     aside) and confirms it is for this member and guide
//     (get_groupmsg_send_result, for each task of the same content:
//     personal texts and cards keep that to one call). Found, it is
//     sent, with the task's msgid; else it did not go out.
//   - a welcome or a customer-service reply: WeCom refuses a repeat (a
//     used welcome code answers 41051, which Send takes for sent;
//     kf/send_msg's msgid comes from the idempotency key), so sending it
//     again is safe and sent is false.
//   - an app message to a guide: message/send can neither be asked nor
//     deduplicate without dropping the bot's repeated answers (its
//     duplicate check compares text only), so the outcome is unknown
//     (adapters.ErrOutcomeUnknown) and the sender fails the row for an
//     operator rather than notify the guide twice.
func (c *Client) Reconcile(ctx context.Context, m *adapters.Outbound, claimedAt time.Time) (*adapters.Receipt, bool, error) {
	if m.Fields["welcome_code"] == "" && m.ToParty == adapters.PartyGuide {
		return nil, false, fmt.Errorf("WeCom does not tell whether an app message went out: %w", adapters.ErrOutcomeUnknown)
	}
	if m.Fields["welcome_code"] != "" || m.ReplyTo["open_kfid"] != "" || m.Via == "" {
		return nil, false, nil
	}
	from := claimedAt.Add(-reconcileSlack)
	to := claimedAt.Add(sendTimeout + reconcileSlack)
	if now := c.now(); to.After(now) {
		to = now
	}
	if !to.After(from) {
		to = from.Add(time.Second)
	}
	tasks, err := c.tasksBetween(ctx, from, to)
	if err != nil {
		return nil, false, fmt.Errorf("reconciling message task: %w", err)
	}
	want, err := taskSignature(m)
	if err != nil {
		// It could not have been sent as it is.
		return nil, false, nil
	}
	for _, t := range tasks {
		if taskContent(t.Text, t.Attachments) != want {
			continue
		}
		results, err := c.api.GroupMsgSendResult(ctx, t.MsgID, m.Via)
		if err != nil {
			return nil, false, fmt.Errorf("reconciling message task: %w", err)
		}
		if slices.ContainsFunc(results, func(r SendResult) bool { return r.ExternalUserID == m.To }) {
			return &adapters.Receipt{ExternalID: t.MsgID, Pending: true}, true, nil
		}
	}
	return nil, false, nil
}

// taskContent is what tells message tasks apart in Reconcile: the text and
// each attachment's type, titles and links. Media ids are left out: an
// uploaded picture's id is not known before the upload.
func taskContent(text string, atts []Attachment) string {
	var b strings.Builder
	b.WriteString(text)
	for _, a := range atts {
		pic := ""
		if a.Kind == AttachLink {
			pic = a.PicURL // a link's cover is a URL, not an upload
		}
		fmt.Fprintf(&b, "\x00%s\x01%s\x01%s\x01%s\x01%s\x01%s\x01%s", a.Kind, a.Title, a.URL, a.Desc, pic, a.AppID, a.Page)
	}
	return b.String()
}

// taskSignature is the taskContent of the task Send creates for m.
func taskSignature(m *adapters.Outbound) (string, error) {
	req, err := buildRequest(context.Background(), m, 0, previewMedia)
	if err != nil {
		return "", err
	}
	t, ok := req.Body.(*msgTemplateRequest)
	if !ok {
		return "", fmt.Errorf("not a message task: %s", req.API)
	}
	text := ""
	if t.Text != nil {
		text = t.Text.Content
	}
	atts := make([]Attachment, 0, len(t.Attachments))
	for _, w := range t.Attachments {
		atts = append(atts, w.attachment())
	}
	return taskContent(text, atts), nil
}

var _ adapters.GroupReconciler = (*Client)(nil)

// ReconcileGroups tells whether a SendToGroups whose answer was lost
// created its task: it lists the group message tasks the corp created
// from reconcileSlack before since to now (get_groupmsg_list_v2,
// chat_type group, all pages), and for each of m's content (as
// Reconcile compares them) asks which of owner's groups it is for
// (get_groupmsg_send_result: its chat_id). The creator filter is not
// used: WeCom leaves the creator out of tasks created through the API,
// so whether it matches them is not known, and a miss would send the
// task twice. A failure to list or ask is an error (send nothing now);
// a window over the month WeCom lists wraps ErrOutcomeUnknown.
func (c *Client) ReconcileGroups(ctx context.Context, owner string, groupIDs []string, m *adapters.Outbound, since time.Time) (map[string]string, error) {
	const op = "reconciling group message task"
	want, err := groupTaskSignature(m)
	if err != nil {
		// It could not have been sent as it is.
		return map[string]string{}, nil
	}
	from, to := since.Add(-reconcileSlack), c.now()
	if !to.After(from) {
		to = from.Add(time.Second)
	}
	if to.Sub(from) > maxGroupMsgListSpan {
		return nil, fmt.Errorf("%s: the attempt of %s is over a month ago, beyond what WeCom lists: %w", op, since.Format(time.RFC3339), adapters.ErrOutcomeUnknown)
	}
	tasks, err := c.api.groupMsgList(ctx, "group", from, to, CreatedByCorp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	wanted := map[string]bool{}
	for _, id := range groupIDs {
		wanted[id] = true
	}
	found := map[string]string{}
	for _, t := range tasks {
		if len(found) == len(wanted) {
			break
		}
		if taskContent(t.Text, t.Attachments) != want {
			continue
		}
		results, err := c.api.GroupMsgSendResult(ctx, t.MsgID, owner)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		for _, r := range results {
			if wanted[r.ChatID] && found[r.ChatID] == "" {
				found[r.ChatID] = t.MsgID
			}
		}
	}
	return found, nil
}

var _ adapters.GroupDeliveryChecker = (*Client)(nil)

// CheckGroupDelivery tells what became of owner's group message task
// msgID in each of its groups (get_groupmsg_send_result, by chat_id):
// pending until the owner sends it, then delivered; failed when WeCom
// did not send it (status 2 or 3).
func (c *Client) CheckGroupDelivery(ctx context.Context, owner, msgID string) (map[string]adapters.Delivery, error) {
	results, err := c.api.GroupMsgSendResult(ctx, msgID, owner)
	if err != nil {
		return nil, fmt.Errorf("checking group message task %s: %w", msgID, err)
	}
	out := make(map[string]adapters.Delivery, len(results))
	for _, r := range results {
		if r.ChatID == "" {
			continue
		}
		switch r.Status {
		case SendPending:
			out[r.ChatID] = adapters.DeliveryPending
		case SendSent:
			out[r.ChatID] = adapters.DeliveryDelivered
		default:
			out[r.ChatID] = adapters.DeliveryFailed
		}
	}
	return out, nil
}

// groupTaskSignature is the taskContent of the task SendToGroups creates
// for m.
func groupTaskSignature(m *adapters.Outbound) (string, error) {
	b := &builder{ctx: context.Background(), m: m, resolve: previewMedia}
	text, atts, err := b.attachments("to a customer group")
	if err != nil {
		return "", err
	}
	t := ""
	if text != nil {
		t = text.Content
	}
	out := make([]Attachment, 0, len(atts))
	for _, w := range atts {
		out = append(out, w.attachment())
	}
	return taskContent(t, out), nil
}

// SendStatus is the state of a message task for one customer.
type SendStatus int

// Send statuses of get_groupmsg_send_result.
const (
	SendPending    SendStatus = 0 // not sent (yet): the employee has not confirmed
	SendSent       SendStatus = 1
	SendNotFriend  SendStatus = 2 // not sent: the customer is no longer the employee's contact
	SendQuotaSpent SendStatus = 3 // not sent: the customer got their quota of group messages
)

// SendResult is the state of a message task for one customer.
type SendResult struct {
	// ExternalUserID is the customer of a task to customers, ChatID the
	// group of a task to groups.
	ExternalUserID string
	ChatID         string
	UserID         string
	Status         SendStatus
	// SendTime is when it was sent, zero when it was not.
	SendTime time.Time
}

const maxSendResultPages = 100

// GroupMsgSendResult returns the per-customer state of the message task
// msgID for the employee userID (externalcontact/get_groupmsg_send_result,
// all pages). 41063 (results not ready right after creation) is
// ErrTemporary.
func (a *API) GroupMsgSendResult(ctx context.Context, msgID, userID string) ([]SendResult, error) {
	op := "getting send results of message task " + msgID
	if msgID == "" || userID == "" {
		return nil, invalidRequest(op, "msgid and userid are required")
	}
	ec := a.contact.GetExternalContact()
	var out []SendResult
	cursor := ""
	for page := 0; page < maxSendResultPages; page++ {
		var res *externalcontact.GetGroupMsgSendResultResponse
		err := a.do(ctx, a.contTok, op, func(string) error {
			var err error
			res, err = ec.GetGroupMsgSendResult(&externalcontact.GetGroupMsgSendResultRequest{
				MsgID: msgID, UserID: userID, Limit: 1000, Cursor: cursor,
			})
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, s := range res.SendList {
			if s == nil {
				continue
			}
			r := SendResult{ExternalUserID: s.ExternalUserID, ChatID: s.ChatID, UserID: s.UserID, Status: SendStatus(s.Status)}
			if s.SendTime > 0 {
				r.SendTime = time.Unix(int64(s.SendTime), 0)
			}
			out = append(out, r)
		}
		if res.NextCursor == "" || res.NextCursor == cursor {
			return out, nil
		}
		cursor = res.NextCursor
	}
	return out, nil
}
