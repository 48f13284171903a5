package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
)

// ContactWayMaker creates channel QR codes (WeCom add_contact_way, an
// Official Account's parametric code) on a channel instance, named by
// its key (Name), for the guides' ids there. Whoever comes through a
// code is bound by its state.
type ContactWayMaker interface {
	Name() string
	CreateContactWay(ctx context.Context, users []string, state, remark string) (configID, qrCode string, err error)
}

// GuidelessContactWays is a ContactWayMaker whose codes route to no one
// on its channel (an Official Account's follow code): ContactWayGuides
// reports false, and it is given no guide ids.
type GuidelessContactWays interface{ ContactWayGuides() bool }

// TemporaryContactWays is a ContactWayMaker that also makes codes that
// expire (?expire=); a ttl it cannot make is adapters.ErrInvalidMessage.
type TemporaryContactWays interface {
	CreateTemporaryContactWay(ctx context.Context, state string, ttl time.Duration) (configID, qrCode string, expires time.Time, err error)
}

// needsGuides reports whether m's codes are made for guides' ids.
func needsGuides(m ContactWayMaker) bool {
	g, ok := m.(GuidelessContactWays)
	return !ok || g.ContactWayGuides()
}

// maxStateLen is WeCom's limit on a contact way's state.
const maxStateLen = 30

// ContactWayState is the state of a store's ("s") or guide's ("g") QR
// code: "s:<id>" when that fits WeCom's 30 characters, else "s#" and a
// hash of the id (resolved through the contact_ways table).
func ContactWayState(kind, id string) string {
	if st := kind + ":" + id; len(st) <= maxStateLen {
		return st
	}
	sum := sha256.Sum256([]byte(id))
	return kind + "#" + hex.EncodeToString(sum[:])[:maxStateLen-2]
}

func (s *Server) contactWaysReady(c *gin.Context) bool {
	if len(s.contactWays) == 0 {
		abort(c, newError(http.StatusNotImplemented, "not_configured", "contact ways need a channel that makes QR codes: WeCom (wecom.corp_id) or an Official Account (wechat_oa.app_id)"))
		return false
	}
	return true
}

// contactWayMaker is the instance a QR code is made on: the one the
// query's channel names, else the first (in the registry's order) that
// ids holds an id on (the corp of the guide, or of the store's guides),
// else the first whose codes need no guide.
func (s *Server) contactWayMaker(c *gin.Context, ids func(channel string) bool) (ContactWayMaker, *apiError) {
	if want := c.Query("channel"); want != "" {
		for _, m := range s.contactWays {
			if m.Name() == want {
				return m, nil
			}
		}
		names := make([]string, len(s.contactWays))
		for i, m := range s.contactWays {
			names[i] = m.Name()
		}
		return nil, newError(http.StatusBadRequest, CodeInvalidArgument, "channel %q makes no QR codes in this gateway: use one of %s", want, strings.Join(names, ", "))
	}
	for _, m := range s.contactWays {
		if needsGuides(m) && ids(m.Name()) {
			return m, nil
		}
	}
	for _, m := range s.contactWays {
		if !needsGuides(m) {
			return m, nil
		}
	}
	return nil, nil
}

// storeContactWay creates (or re-creates) a store's QR code on the WeCom
// instance of its guides, adding any of its active guides with an id
// there.
func (s *Server) storeContactWay(c *gin.Context) {
	if !s.contactWaysReady(c) {
		return
	}
	ctx := c.Request.Context()
	rs, err := s.store.RetailStore(ctx, c.Param("id"), principal(c).Brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	guides, err := s.store.Guides(ctx, "", rs.ID, store.Page{Limit: 1000})
	if err != nil {
		s.fail(c, err)
		return
	}
	maker, e := s.contactWayMaker(c, func(channel string) bool {
		return slices.ContainsFunc(guides, func(g store.Guide) bool { return g.Active && g.Identity(channel) != "" })
	})
	if e != nil {
		abort(c, e)
		return
	}
	if maker == nil {
		abort(c, newError(http.StatusConflict, CodeConflict, "store %q has no active guide with an id on WeCom", rs.ID))
		return
	}
	channel := maker.Name()
	cw := &store.ContactWay{Channel: channel, StoreID: rs.ID, State: ContactWayState("s", rs.ID)}
	if !needsGuides(maker) {
		s.makeContactWay(c, maker, cw, nil, rs.Name)
		return
	}
	var users []string
	for _, g := range guides {
		if id := g.Identity(channel); g.Active && id != "" && len(users) < 100 {
			users = append(users, id)
		}
	}
	if len(users) == 0 {
		abort(c, newError(http.StatusConflict, CodeConflict, "store %q has no active guide with an id on %s", rs.ID, channel))
		return
	}
	s.makeContactWay(c, maker, cw, users, rs.Name)
}

// guideContactWay creates (or re-creates) a guide's own QR code on the
// WeCom instance the guide has an id on, or on a channel whose codes
// need no guide id.
func (s *Server) guideContactWay(c *gin.Context) {
	if !s.contactWaysReady(c) {
		return
	}
	g, err := s.store.Guide(c.Request.Context(), c.Param("id"), principal(c).Brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	maker, e := s.contactWayMaker(c, func(channel string) bool { return g.Identity(channel) != "" })
	if e != nil {
		abort(c, e)
		return
	}
	if maker == nil || (needsGuides(maker) && g.Identity(maker.Name()) == "") || !g.Active {
		where := "WeCom"
		if maker != nil {
			where = maker.Name()
		}
		abort(c, newError(http.StatusConflict, CodeConflict, "guide %q is inactive or has no id on %s", g.ID, where))
		return
	}
	channel := maker.Name()
	var users []string
	if needsGuides(maker) {
		users = []string{g.Identity(channel)}
	}
	s.makeContactWay(c, maker, &store.ContactWay{Channel: channel, GuideID: g.ID, State: ContactWayState("g", g.ID)}, users, g.Name)
}

// makeContactWay makes cw's code on maker, a temporary one when the
// query has expire (a duration such as 7d or 72h), and saves it.
func (s *Server) makeContactWay(c *gin.Context, maker ContactWayMaker, cw *store.ContactWay, users []string, remark string) {
	ctx := c.Request.Context()
	var (
		configID, qr string
		err          error
	)
	if exp := c.Query("expire"); exp != "" {
		tm, ok := maker.(TemporaryContactWays)
		if !ok {
			abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "%s makes only permanent codes: leave out expire", cw.Channel))
			return
		}
		ttl, perr := workflows.ParseDuration(exp)
		if perr != nil {
			abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "expire: %v", perr))
			return
		}
		var expires time.Time
		configID, qr, expires, err = tm.CreateTemporaryContactWay(ctx, cw.State, ttl)
		if err == nil {
			cw.ExpiresAt = &expires
		}
	} else {
		configID, qr, err = maker.CreateContactWay(ctx, users, cw.State, remark)
	}
	if errors.Is(err, adapters.ErrInvalidMessage) {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "%v", err))
		return
	}
	if err != nil {
		s.log.WarnContext(ctx, "creating contact way", "state", cw.State, "error", err)
		abort(c, newError(http.StatusBadGateway, "upstream_error", "%s refused the contact way: %v", cw.Channel, err))
		return
	}
	cw.ConfigID, cw.QRCode = configID, qr
	if err := s.store.SaveContactWay(ctx, cw); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, cw)
}

// listContactWays lists the QR codes of a store or a guide.
func (s *Server) listContactWays(c *gin.Context) {
	s.listOfStoreOrGuide(c, s.store.ContactWays)
}

// listOfStoreOrGuide answers GET ...?store_id= or ?guide_id= with the
// items list returns for the store or guide the token may see.
func (s *Server) listOfStoreOrGuide(c *gin.Context, list func(ctx context.Context, storeID, guideID string) ([]store.ContactWay, error)) {
	ctx := c.Request.Context()
	storeID, guideID := c.Query("store_id"), c.Query("guide_id")
	if (storeID == "") == (guideID == "") {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "give exactly one of store_id or guide_id"))
		return
	}
	var err error
	if storeID != "" {
		_, err = s.store.RetailStore(ctx, storeID, principal(c).Brand)
	} else {
		_, err = s.store.Guide(ctx, guideID, principal(c).Brand)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	items, err := list(ctx, storeID, guideID)
	if err != nil {
		s.fail(c, err)
		return
	}
	if items == nil {
		items = []store.ContactWay{}
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
}
