package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/assign"
	"github.com/scrmgw/scrmgw/store"
)

// nearestStore is a store with its distance from the query point.
type nearestStore struct {
	store.RetailStore
	DistanceM float64 `json:"distance_m"`
}

// nearestStores answers GET /stores/nearest?lat=&lng=&brand=&limit=&max_km=:
// the active stores carrying the brand, nearest first.
func (s *Server) nearestStores(c *gin.Context) {
	if !serving(c, s.assigner != nil, "the store index is") {
		return
	}
	var details []Detail
	num := func(name string, required bool) float64 {
		v := c.Query(name)
		if v == "" {
			if required {
				details = append(details, Detail{Field: name, Message: "is required"})
			}
			return 0
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			details = append(details, Detail{Field: name, Message: "want a number, got " + strconv.Quote(v)})
		}
		return f
	}
	lat, lng, maxKm := num("lat", true), num("lng", true), num("max_km", false)
	limit := 3
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 50 {
			details = append(details, Detail{Field: "limit", Message: "want a whole number from 1 to 50"})
		}
		limit = n
	}
	brand := c.Query("brand")
	if !scopeBrand(c, &brand, nil) {
		return
	}
	if brand == "" {
		details = append(details, Detail{Field: "brand", Message: "is required"})
	}
	if maxKm < 0 {
		details = append(details, Detail{Field: "max_km", Message: "must not be negative"})
	}
	if len(details) == 0 {
		if err := store.ValidateCoordinates(lat, lng); err != nil {
			details = append(details, fieldDetails(err, -1)...)
		}
	}
	if len(details) > 0 {
		abort(c, invalidFields(details))
		return
	}
	ctx := c.Request.Context()
	if _, err := s.store.Brand(ctx, brand); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			abort(c, &apiError{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Message: "brand: unknown brand " + strconv.Quote(brand),
				Details: []Detail{{Field: "brand", Message: "unknown brand"}}})
			return
		}
		s.fail(c, err)
		return
	}
	items := []nearestStore{}
	for _, h := range s.assigner.Nearest(lat, lng, brand, maxKm, limit) {
		rs, err := s.store.RetailStore(ctx, h.ID, "")
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since the index saw it
		}
		if err != nil {
			s.fail(c, err)
			return
		}
		items = append(items, nearestStore{RetailStore: *rs, DistanceM: h.DistM})
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
}

type assignInput struct {
	Brand         string   `json:"brand"`
	Lat           *float64 `json:"lat"`
	Lng           *float64 `json:"lng"`
	StoreID       string   `json:"store_id"`
	GuideID       string   `json:"guide_id"`
	MaxDistanceKm float64  `json:"max_distance_km"`
	// Rebind moves a bound member (a manual reassignment).
	Rebind bool `json:"rebind"`
}

// assignMember answers POST /members/{id}/assign: binds the member per the
// body and returns the binding.
func (s *Server) assignMember(c *gin.Context) {
	if !serving(c, s.assigner != nil, "the store index is") {
		return
	}
	id, ok := positiveIDParam(c)
	if !ok {
		return
	}
	var in assignInput
	if !s.decodeScoped(c, &in, &in.Brand, nil) {
		return
	}
	p := principal(c)
	ctx := c.Request.Context()
	if _, err := s.store.Member(ctx, id, p.Brand); err != nil {
		s.fail(c, err)
		return
	}
	if in.Brand == "" {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "brand: is required"))
		return
	}
	reason := ""
	if in.Rebind || in.GuideID != "" {
		reason = assign.ReasonManual
	}
	b, err := s.assigner.Assign(ctx, assign.Request{MemberID: id, Brand: in.Brand, Lat: in.Lat, Lng: in.Lng, StoreID: in.StoreID,
		GuideID: in.GuideID, MaxDistanceKm: in.MaxDistanceKm, Rebind: in.Rebind, Reason: reason})
	if errors.Is(err, assign.ErrUnassigned) {
		abort(c, newError(http.StatusConflict, "unassigned", "no guide with room in a store carrying %s within reach; the member stays unassigned", in.Brand))
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, b)
}

// guideLeave answers POST /guides/{id}/leave: the guide stops taking
// members and each of theirs is handed to a colleague.
func (s *Server) guideLeave(c *gin.Context) {
	if !serving(c, s.assigner != nil, "the store index is") {
		return
	}
	ctx := c.Request.Context()
	if _, ok := s.ownedGuide(c); !ok {
		return
	}
	moves, err := s.assigner.GuideLeft(ctx, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	if moves == nil {
		moves = []assign.Move{}
	}
	c.JSON(http.StatusOK, gin.H{"reassigned": len(moves), "moves": moves})
}
