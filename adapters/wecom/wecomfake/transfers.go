package wecomfake

import (
	"net/http"
	"slices"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom"
)

// Customer handovers (在职继承 transfer_customer, 离职继承
// resigned/transfer_customer and resigned/transfer_result) as the fake
// models them:
//
//   - a customer accepted (errcode 0) waits for the takeover: status 2 in
//     transfer_result, with the takeover time 24 hours later;
//   - CompleteTransfers (or the server's clock passing the takeover time)
//     moves waiting customers to the takeover employee: status 1, and the
//     customer's follow_user is the takeover employee from then on;
//   - RefuseTransfer plays the customer refusing (status 3,
//     customer_refused) or the takeover employee being over WeCom's
//     customer limit (status 4, customer_limit_exceed), and returns the
//     transfer_fail callback WeCom sends;
//   - a customer waiting for a takeover cannot be transferred again:
//     40129 (当前客户正在转接中);
//   - a customer taken over within the last 90 days cannot be transferred
//     again: 40128 (客户转接过于频繁); MarkTransferred sets such a past
//     takeover;
//   - a takeover employee holding as many customers as SetContactLimit
//     allows (their contacts plus customers waiting for them) refuses:
//     40099 (外部联系人的数量已达上限);
//   - resigned/transfer_customer refuses a handover employee who is a
//     known employee still in the corp (AddEmployees and not Resign):
//     40097 (该成员尚未离职).
//
// The codes are WeCom's global errcodes; which one WeCom answers when
// several rules apply at once is not verified (the fake checks them in
// the order above, after 40096, 40130 and 40131).

// Statuses of transfer_result.
const (
	TransferStatusDone      = 1
	TransferStatusWaiting   = 2
	TransferStatusRefused   = 3
	TransferStatusOverLimit = 4
)

// Errcodes of transfers.
const (
	CodeNotResigned     = 40097
	CodeContactLimit    = 40099
	CodeTransferTooSoon = 40128
	CodeInTransfer      = 40129
	CodeSameTakeover    = 40130
)

// transferWindow is WeCom's 90-day rule.
const transferWindow = 90 * 24 * time.Hour

// takeoverDelay is when WeCom takes over a customer who did not refuse.
const takeoverDelay = 24 * time.Hour

// PathResignedTransferResult is resigned/transfer_result.
const PathResignedTransferResult = "/cgi-bin/externalcontact/resigned/transfer_result"

type transferState struct {
	handover, takeover string
	resigned           bool
	status             int
	takeoverTime       time.Time
}

// Resign makes userID an employee who left the corp and returns the
// change_contact delete_user callback WeCom sends about it (to this
// server's corp).
func (s *Server) Resign(userID string) UserChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resignedUsers[userID] = true
	ch := DeleteUser(userID)
	ch.CorpID = s.corpID
	return ch
}

// SetContactLimit sets how many customers userID may hold: a transfer to
// them beyond it is refused with 40099. Negative removes the limit.
func (s *Server) SetContactLimit(userID string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 0 {
		delete(s.contactLimits, userID)
		return
	}
	s.contactLimits[userID] = n
}

// MarkTransferred records that the customer was taken over at at, for the
// 90-day rule.
func (s *Server) MarkTransferred(externalUserID string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastTakeover[externalUserID] = at
}

// CompleteTransfers takes over every waiting customer now (status 1) and
// returns how many.
func (s *Server) CompleteTransfers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, st := range s.transferStates {
		if st.status == TransferStatusWaiting {
			s.takeOver(id, st, s.now())
			n++
		}
	}
	return n
}

// RefuseTransfer ends the waiting transfer of a customer unsuccessfully:
// reason customer_refused (status 3) or customer_limit_exceed (status 4).
// It returns the transfer_fail callback WeCom sends, and false when the
// customer is not waiting for a takeover.
func (s *Server) RefuseTransfer(externalUserID, reason string) (ContactChange, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.transferStates[externalUserID]
	if st == nil || st.status != TransferStatusWaiting {
		return ContactChange{}, false
	}
	st.status, st.takeoverTime = TransferStatusRefused, time.Time{}
	if reason == "customer_limit_exceed" {
		st.status = TransferStatusOverLimit
	}
	return TransferFail(st.takeover, externalUserID, reason), true
}

// TransferStatus returns the customer's latest transfer: the takeover
// employee and the transfer_result status (0 when never transferred).
func (s *Server) TransferStatus(externalUserID string) (takeover string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleDue()
	if st := s.transferStates[externalUserID]; st != nil {
		return st.takeover, st.status
	}
	return "", 0
}

// transferCode is the per-customer errcode of a transfer request.
func (s *Server) transferCode(resigned bool, handover, takeover, id string) int {
	s.settleDue()
	now := s.now()
	switch {
	case s.contacts[id] == nil:
		return CodeInvalidExternalUser
	case handover == takeover:
		return CodeSameTakeover
	case !s.follows(id, handover):
		return CodeNotFollowUser
	case resigned && s.employees[handover] && !s.resignedUsers[handover]:
		return CodeNotResigned
	}
	if st := s.transferStates[id]; st != nil && st.status == TransferStatusWaiting {
		return CodeInTransfer
	}
	if at, ok := s.lastTakeover[id]; ok && now.Sub(at) < transferWindow {
		return CodeTransferTooSoon
	}
	if limit, ok := s.contactLimits[takeover]; ok && s.customersOf(takeover) >= limit {
		return CodeContactLimit
	}
	return 0
}

func (s *Server) startTransfer(resigned bool, handover, takeover, id string) {
	s.transferStates[id] = &transferState{handover: handover, takeover: takeover, resigned: resigned,
		status: TransferStatusWaiting, takeoverTime: s.now().Add(takeoverDelay)}
}

// customersOf counts the customers userID follows or is waiting to take
// over.
func (s *Server) customersOf(userID string) int {
	n := 0
	for id, c := range s.contacts {
		if _, ok := c.FollowUser(userID); ok {
			n++
			continue
		}
		if st := s.transferStates[id]; st != nil && st.status == TransferStatusWaiting && st.takeover == userID {
			n++
		}
	}
	return n
}

// settleDue takes over the waiting customers whose takeover time passed.
func (s *Server) settleDue() {
	now := s.now()
	for id, st := range s.transferStates {
		if st.status == TransferStatusWaiting && !now.Before(st.takeoverTime) {
			s.takeOver(id, st, st.takeoverTime)
		}
	}
}

// takeOver moves the customer from the handover to the takeover employee.
func (s *Server) takeOver(id string, st *transferState, at time.Time) {
	st.status, st.takeoverTime = TransferStatusDone, at
	s.lastTakeover[id] = at
	c := s.contacts[id]
	if c == nil {
		return
	}
	c.FollowUsers = slices.Clone(c.FollowUsers)
	for i, f := range c.FollowUsers {
		if f.UserID == st.handover {
			f.UserID = st.takeover
			f.CreateTime = at
			c.FollowUsers[i] = f
			return
		}
	}
	c.FollowUsers = append(c.FollowUsers, wecom.FollowUser{UserID: st.takeover, CreateTime: at})
}

// serveResignedTransferResult lists the customers handed from
// handover_userid to takeover_userid (resigned/transfer_result), by
// pages of at most 1000.
func (s *Server) serveResignedTransferResult(_ *http.Request, body []byte) (map[string]any, *apiError) {
	var req struct {
		HandoverUserID string `json:"handover_userid"`
		TakeoverUserID string `json:"takeover_userid"`
		Cursor         string `json:"cursor"`
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.HandoverUserID == "" || req.TakeoverUserID == "" {
		return nil, codeErr(CodeMissingUserID)
	}
	s.settleDue()
	var ids []string
	for id, st := range s.transferStates {
		if st.resigned && st.handover == req.HandoverUserID && st.takeover == req.TakeoverUserID {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	from, ok := decodeCursor("transfer", req.Cursor)
	if !ok || from > len(ids) {
		return nil, codeErr(CodeInvalidCursor)
	}
	to := min(from+1000, len(ids))
	list := make([]map[string]any, 0, to-from)
	for _, id := range ids[from:to] {
		st := s.transferStates[id]
		at := int64(0)
		if !st.takeoverTime.IsZero() {
			at = st.takeoverTime.Unix()
		}
		list = append(list, map[string]any{"external_userid": id, "status": st.status, "takeover_time": at})
	}
	next := ""
	if to < len(ids) {
		next = encodeCursor("transfer", to)
	}
	out := s.recorded("resigned_transfer_result")
	out["customer"] = list
	out["next_cursor"] = next
	return out, nil
}
