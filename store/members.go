package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// NewMember is what a member is created or found from.
type NewMember struct {
	// Phone is any form NormalizePhone accepts; empty when unknown.
	Phone string
	Name  string
	// BrandID, when set, gives the member a membership of that brand.
	BrandID    string
	Identities []Identity
	// InboundAt, when set, is when the member did something on the
	// channel of Identities[0] (added a guide): that identity's
	// LastInboundAt moves forward to it in the member's write, as
	// TouchIdentity would in a statement of its own.
	InboundAt time.Time
	// Joined, when set with BrandID, is logged (with the member's id and
	// the brand filled in) in the transaction that gives the member that
	// membership: a crash cannot leave a new membership without its
	// event. An event with the same source and source id already logged
	// is kept.
	Joined *Event
}

// Identity is a member's id on a channel or system (wecom, dingtalk,
// wecom_unionid, shop, crm, ...).
type Identity struct {
	Channel    string `json:"channel"`
	ExternalID string `json:"external_id"`
}

// MemberView is a member with everything the API shows about them.
type MemberView struct {
	Member
	// Phone is the E.164 number, decrypted; callers mask it unless allowed.
	Phone       string
	Identities  []MemberIdentity
	Memberships []Membership
	Bindings    []Binding
}

// NameFor returns the member's name as brand knows it: the name given to
// that brand, else one given with no brand (by the operator). With brand
// "" (the admin), the operator's name or else the first brand's.
func (v *MemberView) NameFor(brand string) string {
	if brand == "" {
		if v.Member.Name != "" {
			return v.Member.Name
		}
		for _, ms := range v.Memberships {
			if ms.Name != "" {
				return ms.Name
			}
		}
		return ""
	}
	for _, ms := range v.Memberships {
		if ms.BrandID == brand && ms.Name != "" {
			return ms.Name
		}
	}
	return v.Member.Name
}

// TailFor returns the last digits of the member's phone for brand: empty
// unless the brand was given the phone (brand "": the admin sees it).
func (v *MemberView) TailFor(brand string) string {
	if brand == "" {
		return v.PhoneTail
	}
	for _, ms := range v.Memberships {
		if ms.BrandID == brand && ms.PhoneKnown {
			return v.PhoneTail
		}
	}
	return ""
}

// MarkPhoneKnown records that brand was given the member's phone number
// (a guide of the brand recorded it on the contact).
func (s *Store) MarkPhoneKnown(ctx context.Context, memberID int64, brand string) error {
	return translate(s.db.WithContext(ctx).Model(&Membership{}).Where("member_id = ? AND brand_id = ?", memberID, brand).
		Update("phone_known", true).Error)
}

// maxMergeHops bounds following MergedInto links.
const maxMergeHops = 8

// EnsureMember returns the member with the given phone number or channel
// identity, creating them when there is none, and attaches the brand
// membership and identities. With a brand, the member's Name is the name
// that brand was given. Concurrent calls for the same phone yield one
// member: the unique phone hash decides, and the loser re-reads. created
// reports whether a new member was inserted.
func (s *Store) EnsureMember(ctx context.Context, nm NewMember) (m *Member, created bool, err error) {
	m, created, _, err = s.EnsureMemberJoined(ctx, nm)
	return m, created, err
}

// EnsureMemberJoined is EnsureMember that also reports whether the member
// joined nm.BrandID in this call (a new membership): what a brand may be
// told, since whether the person was known to another brand is not its
// business.
func (s *Store) EnsureMemberJoined(ctx context.Context, nm NewMember) (m *Member, created, joined bool, err error) {
	return s.ensureMember(ctx, nm, nil)
}

// EnsureMemberThen is EnsureMember that also runs then, in the same
// transaction, with tx working in it (a binding, the event of the join):
// the member is not kept unless then succeeds, and then runs again when
// a lost race makes the member's write run again.
func (s *Store) EnsureMemberThen(ctx context.Context, nm NewMember, then func(tx *Store, m *Member, created bool) error) (m *Member, created bool, err error) {
	m, created, _, err = s.ensureMember(ctx, nm, then)
	return m, created, err
}

func (s *Store) ensureMember(ctx context.Context, nm NewMember, then func(tx *Store, m *Member, created bool) error) (m *Member, created, joined bool, err error) {
	var e164, hash string
	var errs []error
	if nm.Phone != "" {
		if e164, err = NormalizePhone(nm.Phone); err != nil {
			errs = append(errs, invalid("phone", "%v", err))
		} else {
			hash = s.phones.Hash(e164)
		}
	}
	if nm.Phone == "" && len(nm.Identities) == 0 {
		errs = append(errs, invalid("phone", "a phone number or an identity is required"))
	}
	errs = append(errs, limitText("name", nm.Name, 200))
	if nm.BrandID != "" {
		errs = append(errs, ValidateID("brand", nm.BrandID))
	}
	for i, id := range nm.Identities {
		if id.Channel == "" || len(id.Channel) > 80 {
			errs = append(errs, invalid(fmt.Sprintf("identities[%d].channel", i), "must be 1-80 characters"))
		}
		if id.ExternalID == "" || len(id.ExternalID) > 128 {
			errs = append(errs, invalid(fmt.Sprintf("identities[%d].external_id", i), "must be 1-128 characters"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, false, false, err
	}
	for attempt := 0; attempt < 3; attempt++ {
		m, created, joined, err = s.ensureMemberOnce(ctx, nm, e164, hash, then)
		if !isConflict(err) {
			return m, created, joined, err
		}
		// Lost a race on the phone hash or an identity: the other
		// writer's member exists now, so the next attempt finds it.
	}
	return m, created, joined, err
}

func (s *Store) ensureMemberOnce(ctx context.Context, nm NewMember, e164, hash string, then func(tx *Store, m *Member, created bool) error) (*Member, bool, bool, error) {
	var m Member
	created, joined := false, false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if nm.BrandID != "" {
			if err := tx.Where("id = ?", nm.BrandID).Take(&Brand{}).Error; err != nil {
				if errors.Is(err, gorm.ErrRecordNotFound) {
					return invalid("brand", "unknown brand %q", nm.BrandID)
				}
				return translate(err)
			}
		}
		found := false
		if hash != "" {
			err := tx.Where("phone_hash = ?", hash).Take(&m).Error
			switch {
			case err == nil:
				found = true
			case !errors.Is(err, gorm.ErrRecordNotFound):
				return translate(err)
			}
		}
		for _, id := range nm.Identities {
			var mi MemberIdentity
			err := tx.Where("channel = ? AND external_id = ?", id.Channel, id.ExternalID).Take(&mi).Error
			if errors.Is(err, gorm.ErrRecordNotFound) {
				continue
			}
			if err != nil {
				return translate(err)
			}
			if found && mi.MemberID != m.ID {
				return fmt.Errorf("%w: identity %s:%s belongs to member %d, phone to member %d", ErrConflict,
					id.Channel, id.ExternalID, mi.MemberID, m.ID)
			}
			if !found {
				if err := tx.Where("id = ?", mi.MemberID).Take(&m).Error; err != nil {
					return translate(err)
				}
				found = true
			}
		}
		if !found {
			m = Member{}
			if nm.BrandID == "" {
				// A name given with no brand is the operator's; one given
				// under a brand is that brand's (its membership's).
				m.Name = nm.Name
			}
			if hash != "" {
				enc, err := s.phones.Encrypt(e164)
				if err != nil {
					return err
				}
				m.PhoneHash, m.PhoneEnc, m.PhoneTail = &hash, enc, e164[len(e164)-4:]
			}
			if err := tx.Create(&m).Error; err != nil {
				return translate(err)
			}
			created = true
		} else if m.PhoneHash == nil && hash != "" {
			enc, err := s.phones.Encrypt(e164)
			if err != nil {
				return err
			}
			if err := tx.Model(&m).Updates(map[string]any{"phone_hash": hash, "phone_enc": enc, "phone_tail": e164[len(e164)-4:]}).Error; err != nil {
				return translate(err)
			}
		}
		for i, id := range nm.Identities {
			mi := &MemberIdentity{MemberID: m.ID, Channel: id.Channel, ExternalID: id.ExternalID, BrandID: nm.BrandID}
			touch := i == 0 && !nm.InboundAt.IsZero()
			if touch {
				at := nm.InboundAt.UTC()
				mi.LastInboundAt = &at
			}
			res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(mi)
			if res.Error != nil {
				return translate(res.Error)
			}
			if res.RowsAffected == 0 {
				// Taken since we looked, by a concurrent join: unless it
				// is ours, roll back (no member without it is left) and
				// let the retry find the other writer's member.
				var mi MemberIdentity
				if err := tx.Where("channel = ? AND external_id = ?", id.Channel, id.ExternalID).Take(&mi).Error; err != nil {
					return translate(err)
				}
				if mi.MemberID != m.ID {
					return fmt.Errorf("%w: identity %s:%s was taken by member %d meanwhile", ErrConflict, id.Channel, id.ExternalID, mi.MemberID)
				}
				if touch {
					at := nm.InboundAt.UTC()
					if err := tx.Model(&MemberIdentity{}).Where("id = ? AND (last_inbound_at IS NULL OR last_inbound_at < ?)", mi.ID, at).
						Update("last_inbound_at", at).Error; err != nil {
						return translate(err)
					}
				}
			}
		}
		if nm.BrandID != "" {
			res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&Membership{MemberID: m.ID, BrandID: nm.BrandID, Name: nm.Name, PhoneKnown: hash != ""})
			if res.Error != nil {
				return translate(res.Error)
			}
			joined = res.RowsAffected == 1
			if joined && !created {
				// A person who joins again after erasing their part with
				// the brand is a new member of it: sends may reach them.
				// (A member created now has erased nothing.)
				if err := tx.Where("member_id = ? AND brand_id = ?", m.ID, nm.BrandID).Delete(&MemberErasure{}).Error; err != nil {
					return translate(err)
				}
			} else if !joined {
				if nm.Name != "" {
					if err := tx.Model(&Membership{}).Where("member_id = ? AND brand_id = ? AND name = ''", m.ID, nm.BrandID).
						Update("name", nm.Name).Error; err != nil {
						return translate(err)
					}
				}
				if hash != "" {
					if err := tx.Model(&Membership{}).Where("member_id = ? AND brand_id = ? AND phone_known = ?", m.ID, nm.BrandID, false).
						Update("phone_known", true).Error; err != nil {
						return translate(err)
					}
				}
			}
			// The member as the brand knows them: the name it was given
			// (a new membership's is nm.Name, written just now).
			if joined {
				if nm.Name != "" {
					m.Name = nm.Name
				}
			} else {
				var names []string
				if err := tx.Model(&Membership{}).Where("member_id = ? AND brand_id = ?", m.ID, nm.BrandID).Pluck("name", &names).Error; err != nil {
					return translate(err)
				}
				if len(names) == 1 && names[0] != "" {
					m.Name = names[0]
				}
			}
			if res.RowsAffected == 1 && nm.Joined != nil {
				e, id := *nm.Joined, m.ID
				e.MemberID, e.BrandID = &id, nm.BrandID
				if e.OccurredAt.IsZero() {
					e.OccurredAt = time.Now().UTC()
				}
				if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&e).Error; err != nil {
					return translate(err)
				}
			}
		}
		if then != nil {
			mm := m
			return then(s.with(tx), &mm, created)
		}
		return nil
	})
	if err != nil {
		return nil, false, false, err
	}
	return &m, created, joined, nil
}

// Member returns a member by id, following merges to the surviving member.
// With a non-empty brand, a member without a membership of it is
// ErrNotFound.
func (s *Store) Member(ctx context.Context, id int64, brand string) (*MemberView, error) {
	var m Member
	for hop := 0; ; hop++ {
		m = Member{} // gorm adds a set primary key to the query
		if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&m).Error; err != nil {
			return nil, translate(err)
		}
		if m.ErasedAt != nil {
			return nil, ErrNotFound
		}
		if m.MergedInto == nil {
			break
		}
		if hop == maxMergeHops {
			return nil, fmt.Errorf("member %d: merge chain longer than %d", id, maxMergeHops)
		}
		id = *m.MergedInto
	}
	return s.memberView(ctx, &m, brand)
}

// MemberByPhone returns the member with that phone number (any form
// NormalizePhone accepts).
func (s *Store) MemberByPhone(ctx context.Context, phone, brand string) (*MemberView, error) {
	e164, err := NormalizePhone(phone)
	if err != nil {
		return nil, invalid("phone", "%v", err)
	}
	var v *MemberView
	if s.dialect == "postgres" {
		v, err = s.memberViewWhere(ctx, "SELECT * FROM members WHERE phone_hash = ?", []any{s.phones.Hash(e164)}, brand)
	} else {
		var m Member
		if err := s.db.WithContext(ctx).Where("phone_hash = ?", s.phones.Hash(e164)).Take(&m).Error; err != nil {
			return nil, translate(err)
		}
		v, err = s.memberViewOf(ctx, &m, brand)
	}
	if err == nil && v.Phone == "" {
		// The brand was not given this phone: to it, nobody has it.
		return nil, ErrNotFound
	}
	return v, err
}

// memberViewOf is the view of m, which was read alone: nobody when erased,
// the surviving member when merged.
func (s *Store) memberViewOf(ctx context.Context, m *Member, brand string) (*MemberView, error) {
	switch {
	case m.ErasedAt != nil:
		return nil, ErrNotFound
	case m.MergedInto != nil:
		return s.Member(ctx, *m.MergedInto, brand)
	default:
		return s.memberView(ctx, m, brand)
	}
}

// memberViewSQL reads the member that the query find selects (SELECT * FROM
// members …, at most one row) with their memberships, identities and
// current bindings in one statement (PostgreSQL): a row per item, its kind
// in k (0 the member, 1 a membership, 2 an identity, 3 a binding) and its
// columns in slots, in the order memberView reads them.
const memberViewSQL = `WITH m AS (%s)
SELECT 0 AS k, m.id, m.phone_hash AS s1, m.phone_tail AS s2, m.name AS s3, m.time_zone AS s4, NULL::text AS s5,
  m.merged_into AS n1, NULL::numeric AS f1, NULL::boolean AS b1, m.phone_enc AS by1,
  m.erased_at AS t1, m.created_at AS t2, m.updated_at AS t3 FROM m
UNION ALL
SELECT 1, ms.member_id, ms.brand_id, NULL, ms.level, ms.name, NULL, ms.points, NULL, ms.phone_known, NULL, ms.created_at, NULL, NULL
  FROM memberships ms JOIN m ON ms.member_id = m.id
UNION ALL
SELECT 2, mi.id, mi.channel, mi.external_id, mi.brand_id, NULL, NULL, mi.member_id, NULL, NULL, NULL, mi.last_inbound_at, mi.created_at, NULL
  FROM member_identities mi JOIN m ON mi.member_id = m.id
UNION ALL
SELECT 3, b.id, b.brand_id, b.guide_id, b.store_id, b.reason, b.remark, b.member_id, b.distance_m, NULL, NULL, b.created_at, b.ended_at, NULL
  FROM bindings b JOIN m ON b.member_id = m.id AND b.ended_at IS NULL
ORDER BY 1, 3, 4`

// memberViewWhere is memberView of the member that find selects, read in
// one statement (PostgreSQL); an erased member is nobody and a merged one
// is looked up as the member they were merged into.
func (s *Store) memberViewWhere(ctx context.Context, find string, args []any, brand string) (*MemberView, error) {
	rows, err := s.db.WithContext(ctx).Raw(fmt.Sprintf(memberViewSQL, find), args...).Rows()
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var m *Member
	// Empty, not nil, as gorm's Find leaves them (the API shows [] for none).
	ms, ids, binds := []Membership{}, []MemberIdentity{}, []Binding{}
	for rows.Next() {
		var (
			k                  int
			id                 int64
			s1, s2, s3, s4, s5 *string
			n1                 *int64
			f1                 *float64
			b1                 *bool
			by1                []byte
			t1, t2, t3         *time.Time
		)
		if err := rows.Scan(&k, &id, &s1, &s2, &s3, &s4, &s5, &n1, &f1, &b1, &by1, &t1, &t2, &t3); err != nil {
			return nil, translate(err)
		}
		str := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		tm := func(p *time.Time) time.Time {
			if p == nil {
				return time.Time{}
			}
			return *p
		}
		switch k {
		case 0:
			m = &Member{ID: id, PhoneHash: s1, PhoneEnc: by1, PhoneTail: str(s2), Name: str(s3), TimeZone: str(s4),
				MergedInto: n1, ErasedAt: t1, CreatedAt: tm(t2), UpdatedAt: tm(t3)}
		case 1:
			ms = append(ms, Membership{MemberID: id, BrandID: str(s1), Level: str(s3), Name: str(s4), Points: *n1,
				PhoneKnown: b1 != nil && *b1, CreatedAt: tm(t1)})
		case 2:
			ids = append(ids, MemberIdentity{ID: id, Channel: str(s1), ExternalID: str(s2), BrandID: str(s3), MemberID: *n1,
				LastInboundAt: t1, CreatedAt: tm(t2)})
		case 3:
			b := Binding{ID: id, BrandID: str(s1), GuideID: str(s2), StoreID: str(s3), Reason: str(s4), Remark: str(s5),
				MemberID: *n1, CreatedAt: tm(t1), EndedAt: t2}
			if f1 != nil {
				b.DistanceM = *f1
			}
			binds = append(binds, b)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	if m == nil {
		return nil, ErrNotFound
	}
	if m.ErasedAt != nil || m.MergedInto != nil {
		return s.memberViewOf(ctx, m, brand)
	}
	if brand != "" {
		// A brand sees the identities collected under it and its own
		// binding (memberView asks the database for these alone).
		ids = slices.DeleteFunc(ids, func(mi MemberIdentity) bool { return mi.BrandID != brand })
		binds = slices.DeleteFunc(binds, func(b Binding) bool { return b.BrandID != brand })
	}
	return s.assembleView(m, ms, ids, binds, brand)
}

func (s *Store) memberView(ctx context.Context, m *Member, brand string) (*MemberView, error) {
	db := s.db.WithContext(ctx)
	var (
		ms    []Membership
		ids   []MemberIdentity
		binds []Binding
	)
	if err := db.Where("member_id = ?", m.ID).Order("brand_id").Find(&ms).Error; err != nil {
		return nil, translate(err)
	}
	if brand != "" && !slices.ContainsFunc(ms, func(x Membership) bool { return x.BrandID == brand }) {
		return nil, ErrNotFound
	}
	iq := db.Where("member_id = ?", m.ID).Order("channel, external_id")
	if brand != "" {
		// A brand sees the identities collected under it.
		iq = iq.Where("brand_id = ?", brand)
	}
	if err := iq.Find(&ids).Error; err != nil {
		return nil, translate(err)
	}
	bq := db.Where("member_id = ? AND ended_at IS NULL", m.ID).Order("brand_id")
	if brand != "" {
		bq = bq.Where("brand_id = ?", brand)
	}
	if err := bq.Find(&binds).Error; err != nil {
		return nil, translate(err)
	}
	return s.assembleView(m, ms, ids, binds, brand)
}

// assembleView makes the view of m as brand sees it ("" the admin) from
// their memberships (all of them), and the identities and current
// bindings the brand sees.
func (s *Store) assembleView(m *Member, ms []Membership, ids []MemberIdentity, binds []Binding, brand string) (*MemberView, error) {
	v := &MemberView{Member: *m, Memberships: ms, Identities: ids, Bindings: binds}
	if brand != "" {
		filtered := v.Memberships[:0]
		for _, x := range v.Memberships {
			if x.BrandID == brand {
				filtered = append(filtered, x)
			}
		}
		if len(filtered) == 0 {
			return nil, ErrNotFound
		}
		v.Memberships = filtered
	}
	v.Name = v.NameFor(brand)
	showPhone := brand == "" || len(v.Memberships) > 0 && v.Memberships[0].PhoneKnown
	if !showPhone {
		// The phone is shown to the brands that were given it.
		v.Member.PhoneEnc, v.Member.PhoneHash, v.Member.PhoneTail = nil, nil, ""
	}
	if showPhone && len(m.PhoneEnc) > 0 {
		p, err := s.phones.Decrypt(m.PhoneEnc)
		if err != nil {
			return nil, err
		}
		v.Phone = p
	}
	return v, nil
}

// SetMembership sets a member's level and, when points is not nil, points
// with a brand (creating the membership), as a CRM import carries them.
func (s *Store) SetMembership(ctx context.Context, memberID int64, brand, level string, points *int64) error {
	if err := errors.Join(ValidateID("brand", brand), limitText("level", level, 32)); err != nil {
		return err
	}
	ms := Membership{MemberID: memberID, BrandID: brand, Level: level}
	cols := []string{"level"}
	if points != nil {
		ms.Points = *points
		cols = append(cols, "points")
	}
	return translate(s.db.WithContext(ctx).Omit("Member", "Brand").Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "member_id"}, {Name: "brand_id"}},
		DoUpdates: clause.AssignmentColumns(cols),
	}).Create(&ms).Error)
}
