package wecom

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/silenceper/wechat/v2/util"

	"github.com/scrmgw/scrmgw/adapters"
)

// Moment tasks (客户朋友圈 发表任务): the corp asks employees to post a
// text with pictures, a video or a link on their Moments
// (add_moment_task); the task is created asynchronously
// (get_moment_task_result with the jobid); get_moment_task tells who
// posted.

// Moment limits (document 95094): a text of at most 2000 bytes (not
// verified: WeCom documents 2000 characters).
const (
	maxMomentText    = 2000
	maxMomentSenders = 10000
)

// Moment job statuses of get_moment_task_result.
const (
	MomentJobStarted = 1
	MomentJobRunning = 2
	MomentJobDone    = 3
)

type momentLink struct {
	Title   string `json:"title,omitempty"`
	URL     string `json:"url"`
	MediaID string `json:"media_id,omitempty"`
}

type momentAttachment struct {
	MsgType string      `json:"msgtype"`
	Image   *wireMedia  `json:"image,omitempty"`
	Link    *momentLink `json:"link,omitempty"`
}

type momentRequest struct {
	Text         *wireText          `json:"text,omitempty"`
	Attachments  []momentAttachment `json:"attachments,omitempty"`
	VisibleRange struct {
		SenderList struct {
			UserList []string `json:"user_list"`
		} `json:"sender_list"`
	} `json:"visible_range"`
}

type momentJobResponse struct {
	util.CommonError
	JobID string `json:"jobid"`
}

// buildMoment is the add_moment_task request of m for senders: its
// text, and a link (kind news: title, url) or a picture (kind image:
// media_id of an attachment uploaded for moments).
func buildMoment(senders []string, m *adapters.Outbound) (*momentRequest, error) {
	const op = "adding moment task"
	if err := checkIDs(op, "sender userids", senders, maxMomentSenders); err != nil {
		return nil, err
	}
	req := &momentRequest{}
	req.VisibleRange.SenderList.UserList = senders
	if t := strings.TrimSpace(m.Text); t != "" {
		if len(m.Text) > maxMomentText {
			return nil, invalidRequest(op, "text is %d bytes, at most %d", len(m.Text), maxMomentText)
		}
		req.Text = &wireText{Content: m.Text}
	}
	field := func(k string) string { return strings.TrimSpace(m.Fields[k]) }
	switch m.Kind {
	case "", adapters.KindText:
	case adapters.KindNews:
		if field("url") == "" {
			return nil, invalidRequest(op, "a link needs a url")
		}
		if err := checkURL("url", field("url")); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		req.Attachments = []momentAttachment{{MsgType: "link", Link: &momentLink{Title: field("title"), URL: field("url"), MediaID: field("media_id")}}}
	case adapters.KindImage:
		if field("media_id") == "" {
			return nil, invalidRequest(op, "a picture on Moments needs the media_id of an attachment uploaded for them")
		}
		req.Attachments = []momentAttachment{{MsgType: "image", Image: &wireMedia{MediaID: field("media_id")}}}
	default:
		return nil, invalidRequest(op, "kind %q cannot be posted on Moments: use text, news or image", m.Kind)
	}
	if req.Text == nil && len(req.Attachments) == 0 {
		return nil, invalidRequest(op, "no text and no attachment")
	}
	return req, nil
}

type momentResultResponse struct {
	util.CommonError
	Status int    `json:"status"`
	Type   string `json:"type"`
	Result struct {
		ErrCode           int    `json:"errcode"`
		ErrMsg            string `json:"errmsg"`
		MomentID          string `json:"moment_id"`
		InvalidSenderList struct {
			UserList []string `json:"user_list"`
		} `json:"invalid_sender_list"`
	} `json:"result"`
}

type momentTaskRequest struct {
	MomentID string `json:"moment_id"`
	Cursor   string `json:"cursor,omitempty"`
	Limit    int    `json:"limit"`
}

type momentTaskResponse struct {
	util.CommonError
	NextCursor string `json:"next_cursor"`
	TaskList   []struct {
		UserID        string `json:"userid"`
		PublishStatus int    `json:"publish_status"`
	} `json:"task_list"`
}

// ---- adapters.MomentPoster ----

var _ adapters.MomentPoster = (*Client)(nil)

// CreateMoment creates a moment task for senders (add_moment_task) and
// returns its jobid.
func (c *Client) CreateMoment(ctx context.Context, senders []string, m *adapters.Outbound) (string, error) {
	req, err := buildMoment(senders, m)
	if err != nil {
		return "", err
	}
	var res momentJobResponse
	if err := c.api.post(ctx, c.api.contTok, "adding moment task", "externalcontact/add_moment_task", req, &res); err != nil {
		return "", err
	}
	return res.JobID, nil
}

// MomentJob reads a moment job's result (get_moment_task_result, a GET).
func (c *Client) MomentJob(ctx context.Context, job string) (*adapters.MomentJob, error) {
	op := "getting moment task result " + job
	var res momentResultResponse
	err := c.api.do(ctx, c.api.contTok, op, func(token string) error {
		body, err := util.HTTPGetContext(ctx, qyapi+"externalcontact/get_moment_task_result?access_token="+url.QueryEscape(token)+"&jobid="+url.QueryEscape(job))
		if err != nil {
			return err
		}
		return util.DecodeWithError(body, &res, "get_moment_task_result")
	})
	if err != nil {
		return nil, err
	}
	if res.Status != MomentJobDone {
		return &adapters.MomentJob{}, nil
	}
	j := &adapters.MomentJob{Done: true, ID: res.Result.MomentID, Invalid: res.Result.InvalidSenderList.UserList}
	if res.Result.ErrCode != 0 {
		j.ErrorMsg = fmt.Sprintf("%d %s", res.Result.ErrCode, res.Result.ErrMsg)
	}
	return j, nil
}

// MomentPosts reads who of the senders posted (get_moment_task, paged).
func (c *Client) MomentPosts(ctx context.Context, id string) ([]adapters.MomentPost, error) {
	var out []adapters.MomentPost
	cursor := ""
	for page := 0; page < 100; page++ {
		var res momentTaskResponse
		if err := c.api.post(ctx, c.api.contTok, "getting moment task "+id, "externalcontact/get_moment_task",
			momentTaskRequest{MomentID: id, Cursor: cursor, Limit: 1000}, &res); err != nil {
			return nil, err
		}
		for _, t := range res.TaskList {
			out = append(out, adapters.MomentPost{Guide: t.UserID, Posted: t.PublishStatus == 1})
		}
		if res.NextCursor == "" || res.NextCursor == cursor {
			break
		}
		cursor = res.NextCursor
	}
	return out, nil
}

type momentCustomersRequest struct {
	MomentID string `json:"moment_id"`
	UserID   string `json:"userid"`
	Cursor   string `json:"cursor,omitempty"`
	Limit    int    `json:"limit"`
}

type momentCustomersResponse struct {
	util.CommonError
	NextCursor   string `json:"next_cursor"`
	CustomerList []struct {
		UserID         string `json:"userid"`
		ExternalUserID string `json:"external_userid"`
	} `json:"customer_list"`
}

// maxMomentCustomerPages bounds the pages of one guide's customers read
// at once (1000 a page).
const maxMomentCustomerPages = 100

var _ adapters.MomentAudience = (*Client)(nil)

// MomentCustomers reads the customers who can see guide's post of the
// moment (get_moment_customer_list, paged by cursor): their
// external_userids.
func (c *Client) MomentCustomers(ctx context.Context, id, guide string) ([]string, error) {
	op := "getting the customers of moment " + id
	if guide == "" {
		return nil, noRecipient(op, "userid")
	}
	var out []string
	cursor := ""
	for page := 0; page < maxMomentCustomerPages; page++ {
		var res momentCustomersResponse
		if err := c.api.post(ctx, c.api.contTok, op, "externalcontact/get_moment_customer_list",
			momentCustomersRequest{MomentID: id, UserID: guide, Cursor: cursor, Limit: 1000}, &res); err != nil {
			return nil, err
		}
		for _, cu := range res.CustomerList {
			out = append(out, cu.ExternalUserID)
		}
		if res.NextCursor == "" || res.NextCursor == cursor {
			break
		}
		cursor = res.NextCursor
	}
	return out, nil
}
