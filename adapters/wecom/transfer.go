package wecom

import (
	"context"
	"time"

	"github.com/silenceper/wechat/v2/util"
	"github.com/silenceper/wechat/v2/work/externalcontact"
)

// Per-customer errcodes of transfer_customer and
// resigned/transfer_customer (TransferResult.ErrCode), from WeCom's
// 全局错误码.
const (
	// TransferNotResigned: 该成员尚未离职 (resigned transfers only).
	TransferNotResigned = 40097
	// TransferTakeoverFull: 接替成员的外部联系人数量已达上限.
	TransferTakeoverFull = 40099
	// TransferAlreadyMoving: 此用户的外部联系人已经在转移流程中.
	TransferAlreadyMoving = 40100
	// TransferTooSoon: 客户转接过于频繁 (90 天内只允许转接一次，同一个客户
	// 最多只能转接两次).
	TransferTooSoon = 40128
	// TransferInProgress: 当前客户正在转接中.
	TransferInProgress = 40129
	// TransferSameUser: 原跟进人与接手人一样.
	TransferSameUser = 40130
	// TransferNotFollower: handover_userid 并不是外部联系人的跟进人.
	TransferNotFollower = 40131
)

// TransferResult is the outcome of handing one customer over.
type TransferResult struct {
	ExternalUserID string
	// ErrCode is WeCom's per-customer errcode, 0 when the handover started
	// (the customer has 24 hours to refuse: a transfer_fail event follows
	// then). Err is ErrCode mapped like a call's error, nil for 0; e.g.
	// 40128 (handed over too often), 40129 (already being handed over),
	// 40131 (not the handover employee's customer).
	ErrCode int
	Err     error
}

type transferRequest struct {
	HandoverUserID     string   `json:"handover_userid"`
	TakeoverUserID     string   `json:"takeover_userid"`
	ExternalUserID     []string `json:"external_userid"`
	TransferSuccessMsg string   `json:"transfer_success_msg,omitempty"`
}

type transferResponse struct {
	util.CommonError
	Customer []externalcontact.TransferCustomerItem `json:"customer"`
}

// maxTransferCustomers is WeCom's limit per transfer call.
const maxTransferCustomers = 100

func transferResults(items []externalcontact.TransferCustomerItem) []TransferResult {
	out := make([]TransferResult, 0, len(items))
	for _, it := range items {
		r := TransferResult{ExternalUserID: it.ExternalUserID, ErrCode: it.ErrCode}
		if it.ErrCode != 0 {
			r.Err = newAPIError(int64(it.ErrCode), "transfer refused for "+it.ExternalUserID)
		}
		out = append(out, r)
	}
	return out
}

// TransferCustomer hands customers of an employee still in the corp over
// to another employee (externalcontact/transfer_customer, 在职继承; at most
// 100 per call). msg, when set, is what the customers are told (at most
// 200 characters; WeCom has a default).
func (a *API) TransferCustomer(ctx context.Context, handoverUserID, takeoverUserID string, externalUserIDs []string, msg string) ([]TransferResult, error) {
	const op = "transferring customers"
	if handoverUserID == "" || takeoverUserID == "" {
		return nil, invalidRequest(op, "handover and takeover userids are required")
	}
	if err := checkIDs(op, "external user ids", externalUserIDs, maxTransferCustomers); err != nil {
		return nil, err
	}
	req := transferRequest{HandoverUserID: handoverUserID, TakeoverUserID: takeoverUserID, ExternalUserID: externalUserIDs, TransferSuccessMsg: msg}
	var res transferResponse
	if err := a.post(ctx, a.contTok, op, "externalcontact/transfer_customer", req, &res); err != nil {
		return nil, err
	}
	return transferResults(res.Customer), nil
}

// TransferResignedCustomer hands customers of an employee who left the
// corp over to another employee (externalcontact/resigned/transfer_customer,
// 离职继承; at most 100 per call). WeCom tells the customers nothing.
func (a *API) TransferResignedCustomer(ctx context.Context, handoverUserID, takeoverUserID string, externalUserIDs []string) ([]TransferResult, error) {
	const op = "transferring customers of a resigned employee"
	if handoverUserID == "" || takeoverUserID == "" {
		return nil, invalidRequest(op, "handover and takeover userids are required")
	}
	if err := checkIDs(op, "external user ids", externalUserIDs, maxTransferCustomers); err != nil {
		return nil, err
	}
	ec := a.contact.GetExternalContact()
	var res *externalcontact.ResignedTransferCustomerResponse
	err := a.do(ctx, a.contTok, op, func(string) error {
		var err error
		res, err = ec.ResignedTransferCustomer(&externalcontact.ResignedTransferCustomerRequest{
			HandoverUserID: handoverUserID, TakeoverUserID: takeoverUserID, ExternalUserID: externalUserIDs,
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return transferResults(res.Customer), nil
}

// Statuses of a customer in transfer_result.
const (
	TakeoverDone    = 1 // 接替完毕
	TakeoverWaiting = 2 // 等待接替
	TakeoverRefused = 3 // 客户拒绝
	TakeoverLimit   = 4 // 接替成员客户达到上限
)

// Takeover is one customer of a handover, as transfer_result reports it.
type Takeover struct {
	ExternalUserID string
	// Status is TakeoverDone, TakeoverWaiting, TakeoverRefused or
	// TakeoverLimit.
	Status int
	// TakeoverTime is when the customer was taken over, or, while
	// waiting, when WeCom will take them over; zero when refused.
	TakeoverTime time.Time
}

type transferResultRequest struct {
	HandoverUserID string `json:"handover_userid"`
	TakeoverUserID string `json:"takeover_userid"`
	Cursor         string `json:"cursor,omitempty"`
}

type transferResultResponse struct {
	util.CommonError
	Customer []struct {
		ExternalUserID string `json:"external_userid"`
		Status         int    `json:"status"`
		TakeoverTime   int64  `json:"takeover_time"`
	} `json:"customer"`
	NextCursor string `json:"next_cursor"`
}

// maxTransferResultPages bounds the next_cursor walk (1000 customers a
// page).
const maxTransferResultPages = 100

// ResignedTransferResult lists the customers handed from an employee who
// left to another (externalcontact/resigned/transfer_result, 离职继承
// 查询客户接替状态), walking every page.
func (a *API) ResignedTransferResult(ctx context.Context, handoverUserID, takeoverUserID string) ([]Takeover, error) {
	const op = "reading the takeover of a resigned employee's customers"
	if handoverUserID == "" || takeoverUserID == "" {
		return nil, invalidRequest(op, "handover and takeover userids are required")
	}
	var out []Takeover
	cursor := ""
	for page := 0; page < maxTransferResultPages; page++ {
		var res transferResultResponse
		req := transferResultRequest{HandoverUserID: handoverUserID, TakeoverUserID: takeoverUserID, Cursor: cursor}
		if err := a.post(ctx, a.contTok, op, "externalcontact/resigned/transfer_result", req, &res); err != nil {
			return nil, err
		}
		for _, c := range res.Customer {
			t := Takeover{ExternalUserID: c.ExternalUserID, Status: c.Status}
			if c.TakeoverTime > 0 {
				t.TakeoverTime = time.Unix(c.TakeoverTime, 0)
			}
			out = append(out, t)
		}
		if res.NextCursor == "" || res.NextCursor == cursor {
			return out, nil
		}
		cursor = res.NextCursor
	}
	return out, nil
}
