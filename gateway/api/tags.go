package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/tags"
)

// Tags sets members' tags on scrmgw and on the channels that keep tags
// of their own, and resyncs a channel's tags (gateway/tags.Syncer).
type Tags interface {
	SetMemberTags(ctx context.Context, brand string, memberID int64, add, remove []string, source, sourceID string) (*tags.Change, error)
	Resync(ctx context.Context, o tags.ResyncOptions) (*tags.Report, error)
}

type memberTagsInput struct {
	Brand  string   `json:"brand"`
	Add    []string `json:"add"`
	Remove []string `json:"remove"`
	// Key makes a retried request change nothing twice: the events it
	// logs are keyed by it. Default: the request's time.
	Key string `json:"key"`
}

// setMemberTags: POST /members/:id/tags adds and removes a member's
// tags with a brand, on the member's channels that keep tags first (a
// WeCom corp tag marked by the member's guide); member.tagged and
// member.untagged start workflows.
func (s *Server) setMemberTags(c *gin.Context) {
	if !serving(c, s.tags != nil, "tags are") {
		return
	}
	id, ok := positiveIDParam(c)
	if !ok {
		return
	}
	var in memberTagsInput
	if !s.decodeScoped(c, &in, &in.Brand, nil) {
		return
	}
	p := principal(c)
	if in.Brand == "" {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "brand: is required"))
		return
	}
	if len(in.Add) == 0 && len(in.Remove) == 0 {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "add or remove: name at least one tag"))
		return
	}
	ctx := c.Request.Context()
	if _, err := s.store.Member(ctx, id, p.Brand); err != nil {
		s.fail(c, err)
		return
	}
	key := in.Key
	if key == "" {
		key = strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	ch, err := s.tags.SetMemberTags(ctx, in.Brand, id, in.Add, in.Remove, "api", "member:"+strconv.FormatInt(id, 10)+":"+key)
	if err != nil {
		s.channelFail(c, err)
		return
	}
	c.JSON(http.StatusOK, ch)
}

type resyncInput struct {
	Brand   string `json:"brand"`
	Restart bool   `json:"restart"`
	Limit   int    `json:"limit"`
	Rate    int    `json:"rate"`
}

// resyncTags: POST /channels/:key/tags/resync reconciles one page of a
// channel's members' tags with the channel and reports what differed;
// call it again (it resumes after the page) until done is true.
func (s *Server) resyncTags(c *gin.Context) {
	if !serving(c, s.tags != nil, "tags are") {
		return
	}
	var in resyncInput
	if !s.decodeScoped(c, &in, &in.Brand, nil) {
		return
	}
	if in.Limit < 0 || in.Limit > 1000 || in.Rate < 0 || in.Rate > 100 {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "limit: 1 to 1000, rate: 1 to 100 a second"))
		return
	}
	r, err := s.tags.Resync(c.Request.Context(), tags.ResyncOptions{Channel: c.Param("key"), Brand: in.Brand,
		Restart: in.Restart, Limit: in.Limit, Rate: in.Rate})
	if err != nil {
		s.channelFail(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}
