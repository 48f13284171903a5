package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/moments"
	"github.com/scrmgw/scrmgw/store"
)

// Moments publishes content for guides to post on their Moments and
// tells, as last read from the channel, who posted and who can see the
// posts (gateway/moments.Campaigns).
type Moments interface {
	Publish(ctx context.Context, r moments.Request) (*store.MomentTask, error)
	Campaign(ctx context.Context, id int64, brand string) (*store.MomentTask, error)
	Customers(ctx context.Context, t *store.MomentTask, limit int) ([]store.MomentTaskCustomer, error)
	List(ctx context.Context, brand string, p store.Page) ([]store.MomentTask, error)
}

// maxMomentCustomers is how many of the contacts who can see a
// campaign's posts GET /moments/:id lists.
const maxMomentCustomers = 1000

type momentView struct {
	store.MomentTask
	Senders []string              `json:"senders"`
	Invalid []string              `json:"invalid"`
	Posts   []adapters.MomentPost `json:"posts"`
}

// momentDetail is one campaign with the first contacts who can see its
// posts.
type momentDetail struct {
	momentView
	Customers []store.MomentTaskCustomer `json:"customers"`
}

func viewMoment(t *store.MomentTask) momentView {
	v := momentView{MomentTask: *t, Senders: []string{}, Invalid: []string{}, Posts: []adapters.MomentPost{}}
	json.Unmarshal([]byte(t.Senders), &v.Senders)
	json.Unmarshal([]byte(t.Invalid), &v.Invalid)
	json.Unmarshal([]byte(t.Posts), &v.Posts)
	return v
}

type momentInput struct {
	Channel  string            `json:"channel"`
	Brand    string            `json:"brand"`
	StoreID  string            `json:"store_id"`
	GuideIDs []string          `json:"guide_ids"`
	Kind     string            `json:"kind"`
	Text     string            `json:"text"`
	Fields   map[string]string `json:"fields"`
	Key      string            `json:"key"`
}

func (s *Server) momentsReady(c *gin.Context) bool {
	if !serving(c, s.moments != nil, "moments are") {
		return false
	}
	return true
}

// publishMoment: POST /moments asks a store's guides (or those named)
// to post a text, link or picture on their Moments.
func (s *Server) publishMoment(c *gin.Context) {
	if !s.momentsReady(c) {
		return
	}
	var in momentInput
	if !s.decodeScoped(c, &in, &in.Brand, nil) {
		return
	}
	t, err := s.moments.Publish(c.Request.Context(), moments.Request{Channel: in.Channel, Brand: in.Brand, StoreID: in.StoreID,
		GuideIDs: in.GuideIDs, Key: in.Key, Message: &adapters.Outbound{IdempotencyKey: in.Key, Kind: in.Kind, Text: in.Text, Fields: in.Fields, Brand: in.Brand}})
	if err != nil {
		s.channelFail(c, err)
		return
	}
	c.JSON(http.StatusCreated, viewMoment(t))
}

// getMoment: GET /moments/:id is a campaign as last read from the
// channel: created or not, who was asked, who posted, and the first
// contacts who can see the posts.
func (s *Server) getMoment(c *gin.Context) {
	if !s.momentsReady(c) {
		return
	}
	id, ok := positiveIDParam(c)
	if !ok {
		return
	}
	t, err := s.moments.Campaign(c.Request.Context(), id, principal(c).Brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	v := momentDetail{momentView: viewMoment(t)}
	if v.Customers, err = s.moments.Customers(c.Request.Context(), t, maxMomentCustomers); err != nil {
		s.fail(c, err)
		return
	}
	v.Customers = orEmptyList(v.Customers)
	c.JSON(http.StatusOK, v)
}

// listMoments: GET /moments lists the brand's campaigns, newest first,
// as last read.
func (s *Server) listMoments(c *gin.Context) {
	if !s.momentsReady(c) {
		return
	}
	p, e := page(c)
	if e != nil {
		abort(c, e)
		return
	}
	brand := c.Query("brand")
	if pr := principal(c); !pr.Admin() {
		brand = pr.Brand
	}
	ts, err := s.moments.List(c.Request.Context(), brand, p)
	if err != nil {
		s.fail(c, err)
		return
	}
	items := make([]momentView, 0, len(ts))
	for i := range ts {
		items = append(items, viewMoment(&ts[i]))
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
}

func orEmptyList[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
