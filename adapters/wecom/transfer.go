package wecom

import (
	"context"
	"time"

	"github.com/silenceper/wechat/v2/util"
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
