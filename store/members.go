package store

import (
	"context"
	"errors"
	"fmt"
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
		m, created, joined, err = s.ensureMemberOnce(ctx, nm, e164, hash)
		if !isConflict(err) {
			return m, created, joined, err
		}
		// Lost a race on the phone hash or an identity: the other
		// writer's member exists now, so the next attempt finds it.
	}
	return m, created, joined, err
}

func (s *Store) ensureMemberOnce(ctx context.Context, nm NewMember, e164, hash string) (*Member, bool, bool, error) {
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
		for _, id := range nm.Identities {
			res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&MemberIdentity{
				MemberID: m.ID, Channel: id.Channel, ExternalID: id.ExternalID, BrandID: nm.BrandID})
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
			}
		}
		if nm.BrandID != "" {
			res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&Membership{MemberID: m.ID, BrandID: nm.BrandID, Name: nm.Name, PhoneKnown: hash != ""})
			if res.Error != nil {
				return translate(res.Error)
			}
			joined = res.RowsAffected == 1
			if joined {
				// A person who joins again after erasing their part with
				// the brand is a new member of it: sends may reach them.
				if err := tx.Where("member_id = ? AND brand_id = ?", m.ID, nm.BrandID).Delete(&MemberErasure{}).Error; err != nil {
					return translate(err)
				}
			} else {
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
			// The member as the brand knows them: the name it was given.
			var names []string
			if err := tx.Model(&Membership{}).Where("member_id = ? AND brand_id = ?", m.ID, nm.BrandID).Pluck("name", &names).Error; err != nil {
				return translate(err)
			}
			if len(names) == 1 && names[0] != "" {
				m.Name = names[0]
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
	var m Member
	if err := s.db.WithContext(ctx).Where("phone_hash = ?", s.phones.Hash(e164)).Take(&m).Error; err != nil {
		return nil, translate(err)
	}
	var v *MemberView
	switch {
	case m.ErasedAt != nil:
		return nil, ErrNotFound
	case m.MergedInto != nil:
		v, err = s.Member(ctx, *m.MergedInto, brand)
	default:
		v, err = s.memberView(ctx, &m, brand)
	}
	if err == nil && v.Phone == "" {
		// The brand was not given this phone: to it, nobody has it.
		return nil, ErrNotFound
	}
	return v, err
}

func (s *Store) memberView(ctx context.Context, m *Member, brand string) (*MemberView, error) {
	v := &MemberView{Member: *m}
	db := s.db.WithContext(ctx)
	if err := db.Where("member_id = ?", m.ID).Order("brand_id").Find(&v.Memberships).Error; err != nil {
		return nil, translate(err)
	}
	if brand != "" {
		in := false
		for _, ms := range v.Memberships {
			in = in || ms.BrandID == brand
		}
		if !in {
			return nil, ErrNotFound
		}
		filtered := v.Memberships[:0]
		for _, ms := range v.Memberships {
			if ms.BrandID == brand {
				filtered = append(filtered, ms)
			}
		}
		v.Memberships = filtered
	}
	v.Name = v.NameFor(brand)
	showPhone := brand == "" || len(v.Memberships) > 0 && v.Memberships[0].PhoneKnown
	if !showPhone {
		// The phone is shown to the brands that were given it.
		v.Member.PhoneEnc, v.Member.PhoneHash, v.Member.PhoneTail = nil, nil, ""
	}
	iq := db.Where("member_id = ?", m.ID).Order("channel, external_id")
	if brand != "" {
		// A brand sees the identities collected under it.
		iq = iq.Where("brand_id = ?", brand)
	}
	if err := iq.Find(&v.Identities).Error; err != nil {
		return nil, translate(err)
	}
	bq := db.Where("member_id = ? AND ended_at IS NULL", m.ID).Order("brand_id")
	if brand != "" {
		bq = bq.Where("brand_id = ?", brand)
	}
	if err := bq.Find(&v.Bindings).Error; err != nil {
		return nil, translate(err)
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
