package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

// memberParam reads the path's member id; a malformed one is 404, as an
// unknown member is.
func memberParam(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		abort(c, newError(http.StatusNotFound, CodeNotFound, "member %q not found", c.Param("id")))
		return 0, false
	}
	return id, true
}

// Withdrawals stop at their channels the message tasks of an erased
// member that their guides had not sent (store.Erasure.Withdraw;
// outbox.Sender.WithdrawErased).
type Withdrawals interface {
	WithdrawErased(ctx context.Context, ws []store.Withdrawal) error
}

// WithdrawErased hands an erasure's pending message tasks to w; a failure
// is logged (the erasure is done, and the sends are recorded withdrawn;
// their guides could still send them).
func WithdrawErased(ctx context.Context, w Withdrawals, e *store.Erasure, log *slog.Logger) {
	if w == nil || len(e.Withdraw) == 0 {
		return
	}
	if err := w.WithdrawErased(context.WithoutCancel(ctx), e.Withdraw); err != nil {
		log.Warn("stopping an erased member's message tasks", slog.Int64("member_id", e.MemberID), slog.Any("error", err))
	}
}

// eraseMember answers POST /members/{id}/erase: an admin token erases the
// whole person, a brand token that brand's part (store.EraseMember), and
// the message tasks its guides had not sent are stopped at WeCom.
// Erasing again answers the same result (200).
func (s *Server) eraseMember(c *gin.Context) {
	id, ok := memberParam(c)
	if !ok {
		return
	}
	auditAction(c, store.AuditMemberErase)
	p := principal(c)
	e, err := s.store.EraseMember(c.Request.Context(), id, p.Brand, p.Name)
	if err != nil {
		s.fail(c, err)
		return
	}
	WithdrawErased(c.Request.Context(), s.withdrawals, e, s.log)
	if e.MemberID != id {
		auditID(c, "member", strconv.FormatInt(e.MemberID, 10))
	}
	c.JSON(http.StatusOK, e)
}

// exportMember answers GET /members/{id}/export: everything stored about
// the member for the token's brand (an admin token: every brand), as
// JSON. The phone number is masked unless the token may view phones.
func (s *Server) exportMember(c *gin.Context) {
	id, ok := memberParam(c)
	if !ok {
		return
	}
	auditAction(c, store.AuditMemberExport)
	p := principal(c)
	x, err := s.store.ExportMember(c.Request.Context(), id, p.Brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	if x.Phone != "" {
		if p.CanViewPhone {
			phoneShown(c, x.MemberID)
		} else {
			x.Phone = store.MaskPhone(x.Phone)
		}
	}
	c.Header("Content-Disposition", `attachment; filename="member-`+strconv.FormatInt(x.MemberID, 10)+`.json"`)
	c.JSON(http.StatusOK, x)
}
