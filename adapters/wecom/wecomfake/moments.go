package wecomfake

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"
)

// Moment tasks (客户朋友圈): add_moment_task, get_moment_task_result,
// get_moment_task and get_moment_customer_list, with the shapes of
// WeCom's document 95094. A job is done on the first result read after
// it was created (WeCom takes a moment); employees post with
// PostMoment, and the customers who can see their post are those who
// have them as a follow user then.

// Paths of the moment APIs.
const (
	PathAddMomentTask       = "/cgi-bin/externalcontact/add_moment_task"
	PathGetMomentTaskResult = "/cgi-bin/externalcontact/get_moment_task_result"
	PathGetMomentTask       = "/cgi-bin/externalcontact/get_moment_task"
	// PathGetMomentCustomerList is get_moment_customer_list: the
	// customers an employee's post of a moment can be seen by (its
	// visible range).
	PathGetMomentCustomerList = "/cgi-bin/externalcontact/get_moment_customer_list"
)

// MomentTaskRequest is a moment task the server created.
type MomentTaskRequest struct {
	JobID    string
	MomentID string
	Senders  []string
	Invalid  []string
	Body     json.RawMessage
	At       time.Time
	reads    int
	posted   map[string]bool
	// visible are the customers who can see each employee's post.
	visible map[string][]string
}

type momentState struct {
	tasks []*MomentTaskRequest
}

// MomentTasks returns the moment tasks created, in order.
func (s *Server) MomentTasks() []MomentTaskRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]MomentTaskRequest, 0, len(s.moments.tasks))
	for _, t := range s.moments.tasks {
		out = append(out, *t)
	}
	return out
}

// PostMoment has the employee userID post the moment: get_moment_task
// says they did.
func (s *Server) PostMoment(momentID, userID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.moments.tasks {
		if t.MomentID == momentID && slices.Contains(t.Senders, userID) {
			t.posted[userID] = true
			var ids []string
			for id, c := range s.contacts {
				if _, ok := c.FollowUser(userID); ok {
					ids = append(ids, id)
				}
			}
			slices.Sort(ids)
			t.visible[userID] = ids
			return true
		}
	}
	return false
}

func (s *Server) serveAddMomentTask(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		Text *struct {
			Content string `json:"content"`
		} `json:"text"`
		Attachments []struct {
			MsgType string          `json:"msgtype"`
			Image   json.RawMessage `json:"image"`
			Video   json.RawMessage `json:"video"`
			Link    *struct {
				Title   string `json:"title"`
				URL     string `json:"url"`
				MediaID string `json:"media_id"`
			} `json:"link"`
		} `json:"attachments"`
		VisibleRange *struct {
			SenderList *struct {
				UserList       []string `json:"user_list"`
				DepartmentList []int    `json:"department_list"`
			} `json:"sender_list"`
			ExternalContactList *struct {
				TagList []string `json:"tag_list"`
			} `json:"external_contact_list"`
		} `json:"visible_range"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	text := ""
	if req.Text != nil {
		text = req.Text.Content
	}
	if text == "" && len(req.Attachments) == 0 {
		return nil, codeErr(CodeEmptyContent)
	}
	if e := tooLong("text", "content", text, 2000); e != nil {
		return nil, e
	}
	for _, a := range req.Attachments {
		switch {
		case a.MsgType == "link" && a.Link != nil && a.Link.URL != "":
		case a.MsgType == "image" && len(a.Image) > 0:
		case a.MsgType == "video" && len(a.Video) > 0:
		default:
			return nil, errorf(CodeInvalidParameter, "invalid attachment %q", a.MsgType)
		}
	}
	var senders, invalid []string
	if req.VisibleRange != nil && req.VisibleRange.SenderList != nil {
		for _, u := range req.VisibleRange.SenderList.UserList {
			if s.isEmployee(u) {
				senders = append(senders, u)
			} else {
				invalid = append(invalid, u)
			}
		}
	}
	t := &MomentTaskRequest{JobID: "job" + randomHex(10), Senders: senders, Invalid: invalid,
		Body: json.RawMessage(slices.Clone(body)), At: s.now(), posted: map[string]bool{}, visible: map[string][]string{}}
	s.moments.tasks = append(s.moments.tasks, t)
	return map[string]any{"jobid": t.JobID}, nil
}

func (s *Server) serveGetMomentTaskResult(r *http.Request, _ []byte) (map[string]any, *apiError) {
	job := r.URL.Query().Get("jobid")
	for _, t := range s.moments.tasks {
		if t.JobID != job {
			continue
		}
		t.reads++
		if t.reads == 1 {
			return map[string]any{"status": 2, "type": "add_moment_task"}, nil
		}
		if t.MomentID == "" {
			t.MomentID = "mom" + randomHex(10)
		}
		inv := t.Invalid
		if inv == nil {
			inv = []string{}
		}
		return map[string]any{"status": 3, "type": "add_moment_task", "result": map[string]any{
			"errcode": 0, "errmsg": "ok", "moment_id": t.MomentID,
			"invalid_sender_list":           map[string]any{"user_list": inv, "department_list": []int{}},
			"invalid_external_contact_list": map[string]any{"tag_list": []string{}}}}, nil
	}
	return nil, errorf(CodeInvalidParameter, "invalid jobid")
}

func (s *Server) serveGetMomentTask(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		MomentID string `json:"moment_id"`
		Cursor   string `json:"cursor"`
		Limit    int    `json:"limit"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.Limit < 1 || req.Limit > 1000 {
		return nil, errorf(CodeInvalidParameter, "limit must be 1-1000")
	}
	for _, t := range s.moments.tasks {
		if t.MomentID == "" || t.MomentID != req.MomentID {
			continue
		}
		from, ok := decodeCursor("moment", req.Cursor)
		if !ok || from > len(t.Senders) {
			return nil, codeErr(CodeInvalidCursor)
		}
		to := min(from+req.Limit, len(t.Senders))
		list := []map[string]any{}
		for _, u := range t.Senders[from:to] {
			st := 0
			if t.posted[u] {
				st = 1
			}
			list = append(list, map[string]any{"userid": u, "publish_status": st})
		}
		next := ""
		if to < len(t.Senders) {
			next = encodeCursor("moment", to)
		}
		return map[string]any{"next_cursor": next, "task_list": list}, nil
	}
	return nil, errorf(CodeInvalidParameter, "invalid moment_id")
}

// serveGetMomentCustomerList pages through the customers who can see an
// employee's post of a moment ({"userid","external_userid"} each),
// limit 1 to 1000 (not verified: WeCom documents at most 1000 and no
// least), with next_cursor. An employee who did not post it has none.
func (s *Server) serveGetMomentCustomerList(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		MomentID string `json:"moment_id"`
		UserID   string `json:"userid"`
		Cursor   string `json:"cursor"`
		Limit    int    `json:"limit"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.UserID == "" {
		return nil, codeErr(CodeMissingUserID)
	}
	if req.Limit < 1 || req.Limit > 1000 {
		return nil, errorf(CodeInvalidParameter, "limit must be 1-1000")
	}
	for _, t := range s.moments.tasks {
		if t.MomentID == "" || t.MomentID != req.MomentID {
			continue
		}
		ids := t.visible[req.UserID]
		from, ok := decodeCursor("momentcust", req.Cursor)
		if !ok || from > len(ids) {
			return nil, codeErr(CodeInvalidCursor)
		}
		to := min(from+req.Limit, len(ids))
		list := make([]map[string]any, 0, to-from)
		for _, id := range ids[from:to] {
			list = append(list, map[string]any{"userid": req.UserID, "external_userid": id})
		}
		next := ""
		if to < len(ids) {
			next = encodeCursor("momentcust", to)
		}
		return map[string]any{"next_cursor": next, "customer_list": list}, nil
	}
	return nil, errorf(CodeInvalidParameter, "invalid moment_id")
}
