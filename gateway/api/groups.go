package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/groups"
	"github.com/scrmgw/scrmgw/store"
)

// Groups sends to customer groups and resyncs them (gateway/groups.Keeper).
type Groups interface {
	Send(ctx context.Context, r groups.SendRequest) ([]groups.Task, error)
	Welcome(ctx context.Context, channel string, m *adapters.Outbound) (string, error)
	Resync(ctx context.Context, channel string, brands, owners []string, rate int) (int, error)
}

// groupView is a group with its counts.
type groupView struct {
	store.CustomerGroup
	Stats   *store.GroupStats           `json:"stats"`
	Members []store.CustomerGroupMember `json:"members,omitempty"`
}

// listGroups: GET /groups lists customer groups by brand, store, guide
// (owner), channel and state, with their member counts.
func (s *Server) listGroups(c *gin.Context) {
	p, e := page(c)
	if e != nil {
		abort(c, e)
		return
	}
	f := store.GroupFilter{Brand: c.Query("brand"), StoreID: c.Query("store_id"), GuideID: c.Query("guide_id"),
		Channel: c.Query("channel"), State: c.Query("state"), After: p.After, Limit: p.Limit}
	if pr := principal(c); !pr.Admin() {
		f.Brand = pr.Brand
	}
	ctx := c.Request.Context()
	gs, err := s.store.CustomerGroups(ctx, f)
	if err != nil {
		s.fail(c, err)
		return
	}
	since := time.Now().AddDate(0, 0, -30)
	items := make([]groupView, 0, len(gs))
	for _, g := range gs {
		st, err := s.store.CustomerGroupStats(ctx, g.Channel, g.ChatID, since)
		if err != nil {
			s.fail(c, err)
			return
		}
		items = append(items, groupView{CustomerGroup: g, Stats: st})
	}
	list(c, p, items, func(g groupView) string { return g.ChatID })
}

// getGroup: GET /channels/:key/groups/:chat_id is a group with its
// present members (contacts matched to members) and its counts: joins
// and leaves over ?days= (default 30).
func (s *Server) getGroup(c *gin.Context) {
	days := 30
	if v := c.Query("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 3650 {
			abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "days: want 1 to 3650, got %q", v))
			return
		}
		days = n
	}
	ctx := c.Request.Context()
	g, err := s.store.CustomerGroup(ctx, c.Param("key"), c.Param("chat_id"))
	if err == nil && !principal(c).Admin() && g.BrandID != principal(c).Brand {
		err = store.ErrNotFound
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	st, err := s.store.CustomerGroupStats(ctx, g.Channel, g.ChatID, time.Now().AddDate(0, 0, -days))
	if err != nil {
		s.fail(c, err)
		return
	}
	ms, err := s.store.CustomerGroupMembers(ctx, g.Channel, g.ChatID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, groupView{CustomerGroup: *g, Stats: st, Members: ms})
}

type groupMessageInput struct {
	Channel string            `json:"channel"`
	Brand   string            `json:"brand"`
	ChatIDs []string          `json:"chat_ids"`
	Kind    string            `json:"kind"`
	Text    string            `json:"text"`
	Fields  map[string]string `json:"fields"`
	// Key makes a retried request no second message of the day.
	Key string `json:"key"`
}

// sendGroupMessage: POST /groups/messages sends a message to customer
// groups through their owners (a task each owner confirms), at most one
// a day per group.
func (s *Server) sendGroupMessage(c *gin.Context) {
	if !serving(c, s.groups != nil, "groups are") {
		return
	}
	var in groupMessageInput
	if !s.decodeScoped(c, &in, &in.Brand, nil) {
		return
	}
	if in.Channel == "" || in.Brand == "" || in.Key == "" {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "channel, brand and key are required"))
		return
	}
	m := &adapters.Outbound{IdempotencyKey: in.Key, Kind: in.Kind, Text: in.Text, Fields: in.Fields, Brand: in.Brand}
	tasks, err := s.groups.Send(c.Request.Context(), groups.SendRequest{Channel: in.Channel, Brand: in.Brand, ChatIDs: in.ChatIDs, Message: m, Key: in.Key})
	if err != nil {
		s.channelFail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"tasks": tasks})
}

type groupWelcomeInput struct {
	Kind   string            `json:"kind"`
	Text   string            `json:"text"`
	Fields map[string]string `json:"fields"`
}

// groupWelcome: POST /channels/:key/groups/welcome adds a welcome for
// new members of groups (a WeCom group welcome template, which owners
// pick for their groups) and returns its id.
func (s *Server) groupWelcome(c *gin.Context) {
	if !serving(c, s.groups != nil, "groups are") {
		return
	}
	var in groupWelcomeInput
	if !s.decodeBody(c, &in) {
		return
	}
	id, err := s.groups.Welcome(c.Request.Context(), c.Param("key"), &adapters.Outbound{Kind: in.Kind, Text: in.Text, Fields: in.Fields})
	if err != nil {
		s.channelFail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"template_id": id})
}

type groupResyncInput struct {
	Owners []string `json:"owners"`
	Rate   int      `json:"rate"`
}

// resyncGroups: POST /channels/:key/groups/resync reads the channel's
// groups (of owners, or all) again and saves them.
func (s *Server) resyncGroups(c *gin.Context) {
	if !serving(c, s.groups != nil, "groups are") {
		return
	}
	var in groupResyncInput
	if !s.decodeBody(c, &in) {
		return
	}
	if in.Rate < 0 || in.Rate > 100 {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "rate: 1 to 100 a second"))
		return
	}
	n, err := s.groups.Resync(c.Request.Context(), c.Param("key"), nil, in.Owners, in.Rate)
	if err != nil {
		s.channelFail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"groups": n})
}

// channelFail answers an error of a call that reached a channel: the
// caller's mistakes as 4xx, the channel's failures as 502.
func (s *Server) channelFail(c *gin.Context, err error) {
	switch {
	case errors.Is(err, adapters.ErrInvalidMessage), errors.Is(err, adapters.ErrInvalidRecipient):
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "%s", err.Error()))
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict):
		s.fail(c, err)
	default:
		abort(c, newError(http.StatusBadGateway, "channel_error", "%s", err.Error()))
	}
}
