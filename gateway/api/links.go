package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/links"
	"github.com/scrmgw/scrmgw/store"
)

// Links makes stores' and guides' contact links (WeCom acquisition
// links) and reads their quota (gateway/links.Links).
type Links interface {
	Create(ctx context.Context, channel, brand, storeID, guideID string) (*links.Link, error)
	Quota(ctx context.Context, channel string) (string, *adapters.LinkQuota, error)
	List(ctx context.Context, storeID, guideID string) ([]store.ContactWay, error)
}

func (s *Server) linksReady(c *gin.Context) bool {
	if !serving(c, s.links != nil, "contact links are") {
		return false
	}
	return true
}

// storeLink: POST /stores/:id/acquisition-link?channel= makes the
// store's link (on the first channel with links, by default), which adds
// one of its active guides; a contact through it is bound to the store.
func (s *Server) storeLink(c *gin.Context) {
	if !s.linksReady(c) {
		return
	}
	l, err := s.links.Create(c.Request.Context(), c.Query("channel"), principal(c).Brand, c.Param("id"), "")
	if err != nil {
		s.channelFail(c, err)
		return
	}
	c.JSON(http.StatusCreated, l)
}

// guideLink: POST /guides/:id/acquisition-link makes the guide's link.
func (s *Server) guideLink(c *gin.Context) {
	if !s.linksReady(c) {
		return
	}
	l, err := s.links.Create(c.Request.Context(), c.Query("channel"), principal(c).Brand, "", c.Param("id"))
	if err != nil {
		s.channelFail(c, err)
		return
	}
	c.JSON(http.StatusCreated, l)
}

// listLinks: GET /acquisition-links?store_id= or ?guide_id= lists the
// links of a store or a guide.
func (s *Server) listLinks(c *gin.Context) {
	if !s.linksReady(c) {
		return
	}
	s.listOfStoreOrGuide(c, s.links.List)
}

// linkQuota: GET /acquisition-quota?channel= is what is left of the
// links' quota; low is true when under a tenth of it is left.
func (s *Server) linkQuota(c *gin.Context) {
	if !s.linksReady(c) {
		return
	}
	key, q, err := s.links.Quota(c.Request.Context(), c.Query("channel"))
	if err != nil {
		s.channelFail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"channel": key, "total": q.Total, "balance": q.Balance, "lots": q.Lots, "low": q.Low})
}
