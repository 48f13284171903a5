package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

// brandInput is the JSON a brand is written from.
type brandInput struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (in brandInput) brand() store.Brand { return store.Brand{ID: in.ID, Name: in.Name} }

// validBrand converts and validates.
func (in brandInput) validBrand() (store.Brand, error) {
	b := in.brand()
	return b, b.Validate()
}

// The body's id of a single write, for decodeWrite.
func (in *brandInput) bodyID() *string { return &in.ID }
func (in *storeInput) bodyID() *string { return &in.ID }
func (in *guideInput) bodyID() *string { return &in.ID }

func brandID(b store.Brand) string        { return b.ID }
func brandInID(b brandInput) string       { return b.ID }
func storeID(rs store.RetailStore) string { return rs.ID }
func storeInID(in storeInput) string      { return in.ID }
func guideID(g store.Guide) string        { return g.ID }
func guideInID(in guideInput) string      { return in.ID }

func (s *Server) listBrands(c *gin.Context) {
	p, e := page(c)
	if e != nil {
		abort(c, e)
		return
	}
	items, err := s.store.Brands(c.Request.Context(), principal(c).Brand, p)
	if err != nil {
		s.fail(c, err)
		return
	}
	list(c, p, items, brandID)
}

func (s *Server) getBrand(c *gin.Context) {
	if b := principal(c).Brand; b != "" && b != c.Param("id") {
		s.fail(c, store.ErrNotFound)
		return
	}
	b, err := s.store.Brand(c.Request.Context(), c.Param("id"))
	s.answer(c, http.StatusOK, b, err)
}

func (s *Server) createBrand(c *gin.Context) {
	if !adminOnly(c) {
		return
	}
	var in brandInput
	if !s.decodeBody(c, &in) {
		return
	}
	b := in.brand()
	if err := s.store.CreateBrand(c.Request.Context(), &b); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, b)
}

func (s *Server) putBrand(c *gin.Context) {
	p := principal(c)
	if !p.Admin() && p.Brand != c.Param("id") {
		s.fail(c, store.ErrNotFound)
		return
	}
	b, ok := decodeWrite(s, c, (*brandInput).bodyID, brandInput.validBrand)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if err := s.store.UpsertBrands(ctx, []store.Brand{b}); err != nil {
		s.fail(c, err)
		return
	}
	got, err := s.store.Brand(ctx, b.ID)
	s.answer(c, http.StatusOK, got, err)
}

func (s *Server) bulkBrands(c *gin.Context) {
	if !adminOnly(c) {
		return
	}
	brands, ok := decodeBulk(s, c, brandInID, brandInput.validBrand)
	if !ok {
		return
	}
	if err := s.store.UpsertBrands(c.Request.Context(), brands); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"upserted": len(brands)})
}

func (s *Server) deleteBrand(c *gin.Context) {
	if !adminOnly(c) {
		return
	}
	if err := s.store.DeleteBrand(c.Request.Context(), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// storeInput is the JSON a store is written from. Lat and Lng are
// required; Active defaults to true.
type storeInput struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Brands       []string `json:"brands"`
	Lat          *float64 `json:"lat"`
	Lng          *float64 `json:"lng"`
	Address      string   `json:"address"`
	TimeZone     string   `json:"time_zone"`
	OpeningHours string   `json:"opening_hours"`
	Active       *bool    `json:"active"`
	Distributor  string   `json:"distributor"`
}

// retailStore converts and validates.
func (in storeInput) retailStore() (store.RetailStore, error) {
	rs := store.RetailStore{ID: in.ID, Name: in.Name, BrandIDs: in.Brands, Address: in.Address,
		TimeZone: in.TimeZone, OpeningHours: in.OpeningHours, Active: in.Active == nil || *in.Active, Distributor: in.Distributor}
	var missing []error
	if in.Lat == nil {
		missing = append(missing, &store.FieldError{Field: "lat", Message: "is required"})
	} else {
		rs.Lat = *in.Lat
	}
	if in.Lng == nil {
		missing = append(missing, &store.FieldError{Field: "lng", Message: "is required"})
	} else {
		rs.Lng = *in.Lng
	}
	if len(missing) > 0 {
		// Fill the coordinates with a valid point so the remaining checks
		// report only real problems.
		if in.Lat == nil {
			rs.Lat = 1
		}
		if in.Lng == nil {
			rs.Lng = 1
		}
	}
	err := rs.Validate()
	if len(missing) > 0 {
		return rs, joinErrs(append(missing, err)...)
	}
	return rs, err
}

// checkStoreWrite enforces what a brand token may write: stores of its own
// brand alone. existing is the store as stored, or nil when it is new.
func checkStoreWrite(p *Principal, rs *store.RetailStore, existing *store.RetailStore) *apiError {
	if p.Admin() {
		return nil
	}
	if len(rs.BrandIDs) != 1 || rs.BrandIDs[0] != p.Brand {
		return newError(http.StatusForbidden, CodeForbidden, "a brand token may only write stores that carry exactly its own brand %q", p.Brand)
	}
	if existing != nil && (len(existing.BrandIDs) != 1 || existing.BrandIDs[0] != p.Brand) {
		return newError(http.StatusForbidden, CodeForbidden, "store %q is shared with other brands; ask an administrator to change it", rs.ID)
	}
	return nil
}

func (s *Server) listStores(c *gin.Context) {
	p, e := page(c)
	if e != nil {
		abort(c, e)
		return
	}
	brand := principal(c).Brand
	if q := c.Query("brand"); q != "" {
		if brand != "" && q != brand {
			list(c, p, []store.RetailStore{}, storeID)
			return
		}
		brand = q
	}
	items, err := s.store.RetailStores(c.Request.Context(), brand, p)
	if err != nil {
		s.fail(c, err)
		return
	}
	list(c, p, items, storeID)
}

func (s *Server) getStore(c *gin.Context) {
	rs, err := s.store.RetailStore(c.Request.Context(), c.Param("id"), principal(c).Brand)
	s.answer(c, http.StatusOK, rs, err)
}

func (s *Server) createStore(c *gin.Context) {
	rs, ok := decodeWrite(s, c, nil, storeInput.retailStore)
	if !ok {
		return
	}
	if e := checkStoreWrite(principal(c), &rs, nil); e != nil {
		abort(c, e)
		return
	}
	if err := s.store.CreateRetailStore(c.Request.Context(), &rs); err != nil {
		s.fail(c, err)
		return
	}
	s.refreshIndex(c, rs.ID)
	s.respondStore(c, http.StatusCreated, rs.ID)
}

func (s *Server) respondStore(c *gin.Context, status int, id string) {
	got, err := s.store.RetailStore(c.Request.Context(), id, "")
	s.answer(c, status, got, err)
}

// existingStore returns the stored store, nil when it does not exist, and
// ErrNotFound when it exists but the principal may not see it.
func (s *Server) existingStore(c *gin.Context, id string) (*store.RetailStore, error) {
	rs, err := s.store.RetailStore(c.Request.Context(), id, "")
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if b := principal(c).Brand; b != "" {
		for _, x := range rs.BrandIDs {
			if x == b {
				return rs, nil
			}
		}
		return nil, store.ErrNotFound
	}
	return rs, nil
}

func (s *Server) putStore(c *gin.Context) {
	rs, ok := decodeWrite(s, c, (*storeInput).bodyID, storeInput.retailStore)
	if !ok {
		return
	}
	existing, err := s.existingStore(c, rs.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	if e := checkStoreWrite(principal(c), &rs, existing); e != nil {
		abort(c, e)
		return
	}
	if err := s.store.UpsertRetailStores(c.Request.Context(), []store.RetailStore{rs}); err != nil {
		s.fail(c, err)
		return
	}
	s.refreshIndex(c, rs.ID)
	s.respondStore(c, createdOr(existing == nil), rs.ID)
}

func (s *Server) bulkStores(c *gin.Context) {
	stores, ok := decodeBulk(s, c, storeInID, storeInput.retailStore)
	if !ok {
		return
	}
	p := principal(c)
	if !p.Admin() {
		for i := range stores {
			existing, err := s.existingStore(c, stores[i].ID)
			if isNotFound(err) {
				abort(c, rowError(i, http.StatusForbidden, CodeForbidden, "row %d: store id %q is taken by another brand's store", i, stores[i].ID))
				return
			}
			if err != nil {
				s.fail(c, err)
				return
			}
			if e := checkStoreWrite(p, &stores[i], existing); e != nil {
				abort(c, rowError(i, e.Status, e.Code, "row %d: %s", i, e.Message))
				return
			}
		}
	}
	if err := s.store.UpsertRetailStores(c.Request.Context(), stores); err != nil {
		s.fail(c, err)
		return
	}
	ids := make([]string, len(stores))
	for i := range stores {
		ids[i] = stores[i].ID
	}
	s.refreshIndex(c, ids...)
	c.JSON(http.StatusOK, gin.H{"upserted": len(stores)})
}

func (s *Server) deleteStore(c *gin.Context) {
	existing, err := s.existingStore(c, c.Param("id"))
	if err == nil && existing == nil {
		err = store.ErrNotFound
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	if e := checkStoreWrite(principal(c), existing, existing); e != nil {
		abort(c, e)
		return
	}
	if err := s.store.DeleteRetailStore(c.Request.Context(), existing.ID); err != nil {
		s.fail(c, err)
		return
	}
	s.refreshIndex(c, existing.ID)
	c.Status(http.StatusNoContent)
}

// checkGuideWrite enforces that a brand token writes guides of stores that
// carry its brand alone, and never takes over another brand's guide id. A
// guide of a store shared with other brands serves their members too: it
// is theirs as much as the brand's, so only an administrator changes it
// (403, as for the shared store itself).
func (s *Server) checkGuideWrite(c *gin.Context, g *store.Guide) *apiError {
	p := principal(c)
	if p.Admin() {
		return nil
	}
	ctx := c.Request.Context()
	rs, err := s.store.RetailStore(ctx, g.StoreID, p.Brand)
	if isNotFound(err) {
		return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidArgument,
			Message: "store_id: unknown store " + g.StoreID, Details: []Detail{{Field: "store_id", Message: "unknown store " + g.StoreID}}}
	} else if err != nil {
		return newError(http.StatusInternalServerError, CodeInternal, "internal error")
	}
	if !ownStore(p, rs) {
		return newError(http.StatusForbidden, CodeForbidden, "store %q is shared with other brands; ask an administrator to change its guides", rs.ID)
	}
	if old, err := s.store.Guide(ctx, g.ID, ""); err == nil {
		if _, err := s.store.Guide(ctx, g.ID, p.Brand); isNotFound(err) {
			return newError(http.StatusConflict, CodeConflict, "guide id %q is taken", g.ID)
		}
		if e := s.checkGuideOwned(c, old); e != nil {
			return e
		}
	}
	return nil
}

// ownStore reports whether the principal may write the store's staff: an
// administrator, or a brand token whose brand the store carries alone.
func ownStore(p *Principal, rs *store.RetailStore) bool {
	return p.Admin() || len(rs.BrandIDs) == 1 && rs.BrandIDs[0] == p.Brand
}

// ownedGuide loads the path's guide for a change: not found unless the
// principal sees it, 403 unless they may change it (checkGuideOwned).
// ok is false when it answered.
func (s *Server) ownedGuide(c *gin.Context) (g *store.Guide, ok bool) {
	g, err := s.store.Guide(c.Request.Context(), c.Param("id"), principal(c).Brand)
	if err != nil {
		s.fail(c, err)
		return nil, false
	}
	if e := s.checkGuideOwned(c, g); e != nil {
		abort(c, e)
		return nil, false
	}
	return g, true
}

// checkGuideOwned answers 403 when a brand token would change a guide of
// a store shared with other brands (see checkGuideWrite). g is a guide
// the principal can see.
func (s *Server) checkGuideOwned(c *gin.Context, g *store.Guide) *apiError {
	p := principal(c)
	if p.Admin() {
		return nil
	}
	rs, err := s.store.RetailStore(c.Request.Context(), g.StoreID, "")
	if err != nil {
		return newError(http.StatusInternalServerError, CodeInternal, "internal error")
	}
	if !ownStore(p, rs) {
		return newError(http.StatusForbidden, CodeForbidden, "guide %q works in store %q, which is shared with other brands; ask an administrator", g.ID, rs.ID)
	}
	return nil
}

func (s *Server) listGuides(c *gin.Context) {
	p, e := page(c)
	if e != nil {
		abort(c, e)
		return
	}
	items, err := s.store.Guides(c.Request.Context(), principal(c).Brand, c.Query("store_id"), p)
	if err != nil {
		s.fail(c, err)
		return
	}
	list(c, p, items, guideID)
}

func (s *Server) getGuide(c *gin.Context) {
	g, err := s.store.Guide(c.Request.Context(), c.Param("id"), principal(c).Brand)
	s.answer(c, http.StatusOK, g, err)
}

func (s *Server) createGuide(c *gin.Context) {
	g, ok := decodeWrite(s, c, nil, s.guideOf)
	if !ok {
		return
	}
	if e := s.checkGuideWrite(c, &g); e != nil {
		abort(c, e)
		return
	}
	if err := s.store.CreateGuide(c.Request.Context(), &g); err != nil {
		s.fail(c, err)
		return
	}
	s.respondGuide(c, http.StatusCreated, g.ID)
}

func (s *Server) respondGuide(c *gin.Context, status int, id string) {
	got, err := s.store.Guide(c.Request.Context(), id, "")
	s.answer(c, status, got, err)
}

func (s *Server) putGuide(c *gin.Context) {
	g, ok := decodeWrite(s, c, (*guideInput).bodyID, s.guideOf)
	if !ok {
		return
	}
	if e := s.checkGuideWrite(c, &g); e != nil {
		abort(c, e)
		return
	}
	ctx := c.Request.Context()
	_, err := s.store.Guide(ctx, g.ID, "")
	created := isNotFound(err)
	if err := s.store.UpsertGuides(ctx, []store.Guide{g}); err != nil {
		s.fail(c, err)
		return
	}
	s.respondGuide(c, createdOr(created), g.ID)
}

func (s *Server) bulkGuides(c *gin.Context) {
	guides, ok := decodeBulk(s, c, guideInID, s.guideOf)
	if !ok {
		return
	}
	for i := range guides {
		if e := s.checkGuideWrite(c, &guides[i]); e != nil {
			abort(c, rowError(i, e.Status, e.Code, "row %d: %s", i, e.Message))
			return
		}
	}
	if err := s.store.UpsertGuides(c.Request.Context(), guides); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"upserted": len(guides)})
}

func (s *Server) deleteGuide(c *gin.Context) {
	ctx := c.Request.Context()
	if _, ok := s.ownedGuide(c); !ok {
		return
	}
	if err := s.store.DeleteGuide(ctx, c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
