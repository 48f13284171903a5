package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

func joinErrs(errs ...error) error { return errors.Join(errs...) }

// memberJSON is a member as the API shows it. Phone is masked unless the
// token may view phone numbers.
type memberJSON struct {
	ID          int64              `json:"id"`
	Name        string             `json:"name"`
	Phone       string             `json:"phone,omitempty"`
	PhoneMasked bool               `json:"phone_masked,omitempty"`
	Identities  []store.Identity   `json:"identities"`
	Memberships []store.Membership `json:"memberships"`
	Bindings    []store.Binding    `json:"bindings"`
	TimeZone    string             `json:"time_zone,omitempty"`
	CreatedAt   time.Time          `json:"created_at"`
}

// memberOut shows v to p; a full phone number shown is in the audit trail.
func memberOut(c *gin.Context, v *store.MemberView, p *Principal) memberJSON {
	out := memberJSON{ID: v.ID, Name: v.Name, Identities: []store.Identity{}, Memberships: v.Memberships,
		Bindings: v.Bindings, TimeZone: v.TimeZone, CreatedAt: v.CreatedAt}
	if v.Phone != "" {
		if p.CanViewPhone {
			out.Phone = v.Phone
			phoneShown(c, v.ID)
		} else {
			out.Phone, out.PhoneMasked = store.MaskPhone(v.Phone), true
		}
	}
	for _, id := range v.Identities {
		out.Identities = append(out.Identities, store.Identity{Channel: id.Channel, ExternalID: id.ExternalID})
	}
	if out.Memberships == nil {
		out.Memberships = []store.Membership{}
	}
	if out.Bindings == nil {
		out.Bindings = []store.Binding{}
	}
	return out
}

func (s *Server) getMember(c *gin.Context) {
	id, ok := positiveIDParam(c)
	if !ok {
		return
	}
	p := principal(c)
	v, err := s.store.Member(c.Request.Context(), id, p.Brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, memberOut(c, v, p))
}

// memberUpdate is the body of PATCH /members/{id}: the fields given are
// changed.
type memberUpdate struct {
	// TimeZone is the member's IANA zone; "" clears it.
	TimeZone *string `json:"time_zone"`
}

// updateMember answers PATCH /members/{id}.
func (s *Server) updateMember(c *gin.Context) {
	id, ok := positiveIDParam(c)
	if !ok {
		return
	}
	var in memberUpdate
	if !s.decodeBody(c, &in) {
		return
	}
	p := principal(c)
	ctx := c.Request.Context()
	v, err := s.store.Member(ctx, id, p.Brand) // a brand token sees its members only
	if err != nil {
		s.fail(c, err)
		return
	}
	if in.TimeZone != nil {
		if err := s.store.SetMemberTimeZone(ctx, v.ID, *in.TimeZone); err != nil {
			s.fail(c, err)
			return
		}
	}
	if v, err = s.store.Member(ctx, v.ID, p.Brand); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, memberOut(c, v, p))
}

// findMember answers GET /members?phone=...: the member with that phone.
func (s *Server) findMember(c *gin.Context) {
	phone := c.Query("phone")
	if phone == "" {
		s.listMembers(c)
		return
	}
	p := principal(c)
	v, err := s.store.MemberByPhone(c.Request.Context(), phone, p.Brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, memberOut(c, v, p))
}

type memberInput struct {
	Phone      string           `json:"phone"`
	Name       string           `json:"name"`
	Brand      string           `json:"brand"`
	Identities []store.Identity `json:"identities"`
	// TimeZone is the member's own IANA zone (send rules with
	// time_zone: member read it); left out, it is not changed.
	TimeZone string `json:"time_zone"`
}

// createMember finds or creates the member with the given phone or
// identities: 201 when created, 200 when an existing member was found (the
// brand membership and identities are attached to them).
func (s *Server) createMember(c *gin.Context) {
	var in memberInput
	if !s.decodeScoped(c, &in, &in.Brand, func(own, named string) *apiError {
		return newError(http.StatusForbidden, CodeForbidden, "brand: a brand token can only add members to %q", own)
	}) {
		return
	}
	p := principal(c)
	ctx := c.Request.Context()
	if err := store.ValidateTimeZone("time_zone", in.TimeZone); err != nil {
		s.fail(c, err)
		return
	}
	m, created, joined, err := s.store.EnsureMemberJoined(ctx, store.NewMember{Phone: in.Phone, Name: in.Name, BrandID: in.Brand, Identities: in.Identities})
	if err != nil {
		s.fail(c, err)
		return
	}
	auditID(c, "member", strconv.FormatInt(m.ID, 10))
	if in.TimeZone != "" {
		if err := s.store.SetMemberTimeZone(ctx, m.ID, in.TimeZone); err != nil {
			s.fail(c, err)
			return
		}
	}
	v, err := s.store.Member(ctx, m.ID, p.Brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	status := http.StatusOK
	if created || (!p.Admin() && joined) {
		// A brand is not told that the person was known to another
		// brand: to it, a new member of its own is created.
		status = http.StatusCreated
	}
	c.JSON(status, memberOut(c, v, p))
}

type mergeInput struct {
	Into int64 `json:"into"`
}

// mergeMember answers POST /members/{id}/merge {"into": N}: member id is
// the same person as N and is merged into them (see store.MergeMembers).
func (s *Server) mergeMember(c *gin.Context) {
	id, ok := positiveIDParam(c)
	if !ok {
		return
	}
	var in mergeInput
	if !s.decodeBody(c, &in) {
		return
	}
	if in.Into < 1 {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "into: want the id of the member to keep"))
		return
	}
	p := principal(c)
	ctx := c.Request.Context()
	for _, m := range []int64{id, in.Into} {
		if _, err := s.store.Member(ctx, m, p.Brand); err != nil {
			s.fail(c, err)
			return
		}
	}
	for _, m := range []int64{id, in.Into} {
		if p.Admin() {
			break
		}
		// Merging moves every brand's rows: a brand may merge only
		// members who are its alone.
		all, err := s.store.Member(ctx, m, "")
		if err != nil {
			s.fail(c, err)
			return
		}
		for _, ms := range all.Memberships {
			if ms.BrandID != p.Brand {
				abort(c, newError(http.StatusForbidden, CodeForbidden,
					"member %d belongs to other brands too: only an admin token may merge them", m))
				return
			}
		}
	}
	auditID(c, "into", strconv.FormatInt(in.Into, 10))
	rec, err := s.store.MergeMembers(ctx, id, in.Into, p.Name)
	if err != nil {
		s.fail(c, err)
		return
	}
	v, err := s.store.Member(ctx, in.Into, p.Brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"merge": rec, "member": memberOut(c, v, p)})
}

// memberBulkInput is one row of POST /members/bulk.
type memberBulkInput struct {
	Phone  string `json:"phone"`
	Name   string `json:"name"`
	Brand  string `json:"brand"`
	CRMID  string `json:"crm_id"`
	Level  string `json:"level"`
	Points *int64 `json:"points"`
}

// bulkMembers answers POST /members/bulk {"items": [...]}: the bulk form
// of scrmgw import members. Every row is checked first; any bad row
// refuses the request and writes nothing.
func (s *Server) bulkMembers(c *gin.Context) {
	var in bulkBody[memberBulkInput]
	if e := decodeJSON(c, s.maxBulk, &in); e != nil {
		abort(c, e)
		return
	}
	p := principal(c)
	ctx := c.Request.Context()
	key := func(m memberBulkInput) string {
		if e164, err := store.NormalizePhone(m.Phone); err == nil {
			return "phone:" + e164
		}
		if m.CRMID != "" {
			return "crm:" + m.Brand + ":" + m.CRMID
		}
		return ""
	}
	brands := map[string]bool{}
	e := checkBulk(in.Items, key, func(i int, m memberBulkInput) error {
		if !p.Admin() {
			if m.Brand != "" && m.Brand != p.Brand {
				return &store.FieldError{Field: "brand", Message: "a brand token can only add members to " + p.Brand}
			}
			in.Items[i].Brand, m.Brand = p.Brand, p.Brand
		}
		var errs []error
		if err := store.ValidateID("brand", m.Brand); err != nil {
			errs = append(errs, err)
		}
		brands[m.Brand] = true
		if m.Phone == "" && m.CRMID == "" {
			errs = append(errs, &store.FieldError{Field: "phone", Message: "phone or crm_id is required"})
		}
		if m.Phone != "" {
			if _, err := store.NormalizePhone(m.Phone); err != nil {
				errs = append(errs, &store.FieldError{Field: "phone", Message: err.Error()})
			}
		}
		if m.Points != nil && *m.Points < 0 {
			errs = append(errs, &store.FieldError{Field: "points", Message: "must not be negative"})
		}
		return joinErrs(errs...)
	})
	if e != nil {
		abort(c, e)
		return
	}
	ids := make([]string, 0, len(brands))
	for b := range brands {
		ids = append(ids, b)
	}
	missing, err := s.store.MissingIDs(ctx, "brands", ids)
	if err != nil {
		s.fail(c, err)
		return
	}
	if len(missing) > 0 {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "unknown brand %q; nothing was written", missing[0]))
		return
	}
	created := 0
	for i, m := range in.Items {
		nm := store.NewMember{Phone: m.Phone, Name: m.Name, BrandID: m.Brand}
		if m.CRMID != "" {
			nm.Identities = []store.Identity{{Channel: "crm:" + m.Brand, ExternalID: m.CRMID}}
		}
		mem, isNew, joined, err := s.store.EnsureMemberJoined(ctx, nm)
		if !p.Admin() {
			// To a brand, a person new to it is created.
			isNew = joined
		}
		if err == nil && (m.Level != "" || m.Points != nil) {
			err = s.store.SetMembership(ctx, mem.ID, m.Brand, m.Level, m.Points)
		}
		if err != nil {
			s.fail(c, &store.RowError{Row: i, Err: err})
			return
		}
		if isNew {
			created++
		}
	}
	c.JSON(http.StatusOK, gin.H{"upserted": len(in.Items), "created": created})
}
