package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/scrmgw/scrmgw/events"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// AppendEvent adds an event to the log. An event whose (source, source_id)
// is already logged is not added again: fresh is false and e is filled from
// the logged row.
func (s *Store) AppendEvent(ctx context.Context, e *Event) (fresh bool, err error) {
	var errs []error
	if e.Type == "" || len(e.Type) > 64 {
		errs = append(errs, invalid("type", "must be 1-64 characters"))
	}
	if e.Source == "" || e.SourceID == "" {
		errs = append(errs, invalid("source", "source and source_id are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return false, err
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = time.Now().UTC()
	}
	if e.Type != events.TypePurchaseCompleted || e.MemberID == nil || e.BrandID == "" {
		// One statement: no transaction around it.
		res := s.single(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(e)
		if res.Error != nil {
			return false, translate(res.Error)
		}
		fresh = res.RowsAffected == 1
	} else {
		err = s.appendPurchase(ctx, e, &fresh)
	}
	if err != nil {
		return false, err
	}
	if fresh {
		return true, nil
	}
	err = s.db.WithContext(ctx).Where("source = ? AND source_id = ?", e.Source, e.SourceID).Take(e).Error
	return false, translate(err)
}

// appendPurchase logs a purchase and adds it to member_stats, together.
func (s *Store) appendPurchase(ctx context.Context, e *Event, fresh *bool) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(e)
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		*fresh = true
		// Segments read the last purchase from member_stats; orders and
		// spend are counted where orders are recorded.
		return addPurchase(tx, *e.MemberID, e.BrandID, 0, 0, e.OccurredAt, true)
	})
	return translate(err)
}

// EventBySource returns the event logged with source and sourceID, or
// ErrNotFound.
func (s *Store) EventBySource(ctx context.Context, source, sourceID string) (*Event, error) {
	var e Event
	if err := s.db.WithContext(ctx).Where("source = ? AND source_id = ?", source, sourceID).Take(&e).Error; err != nil {
		return nil, translate(err)
	}
	return &e, nil
}

// Event returns one event of the log.
func (s *Store) Event(ctx context.Context, id int64) (*Event, error) {
	return byID[Event](ctx, s.db, id)
}

// EventFilter selects events.
type EventFilter struct {
	MemberID int64
	Type     string
	// AfterID pages by id.
	AfterID int64
	Limit   int
}

// Events lists events in id order.
func (s *Store) Events(ctx context.Context, f EventFilter) ([]Event, error) {
	q := s.db.WithContext(ctx).Order("id").Limit(Page{Limit: f.Limit}.limit())
	if f.MemberID != 0 {
		q = q.Where("member_id = ?", f.MemberID)
	}
	if f.Type != "" {
		q = q.Where("type = ?", f.Type)
	}
	if f.AfterID != 0 {
		q = q.Where("id > ?", f.AfterID)
	}
	var out []Event
	return out, translate(q.Find(&out).Error)
}

// MemberByIdentity returns the member (after merges) with an identity.
func (s *Store) MemberByIdentity(ctx context.Context, channel, externalID string) (*MemberView, error) {
	if s.dialect == "postgres" {
		return s.memberViewWhere(ctx, "SELECT members.* FROM member_identities i JOIN members ON members.id = i.member_id "+
			"WHERE i.channel = ? AND i.external_id = ?", []any{channel, externalID}, "")
	}
	var mi MemberIdentity
	err := s.db.WithContext(ctx).Where("channel = ? AND external_id = ?", channel, externalID).Take(&mi).Error
	if err != nil {
		return nil, translate(err)
	}
	return s.Member(ctx, mi.MemberID, "")
}

// Bind makes b the member's current binding for its brand unless one
// exists; it returns the current binding either way, and whether b was
// created. The database allows one current binding per member and brand,
// so concurrent binds agree. The guide's capacity is not checked: Bind
// records a relationship that exists on the channel (the member added the
// guide); BindWithin assigns within capacity.
func (s *Store) Bind(ctx context.Context, b *Binding) (*Binding, bool, error) {
	return s.bind(ctx, b, false)
}

// BindNew is Bind for a member created in the transaction s works in (the
// store EnsureMemberThen hands then, with created): such a member has no
// binding to find, so it only counts the guide's member and writes the
// binding, in that transaction (no savepoint, no read). Outside a
// transaction it is Bind.
func (s *Store) BindNew(ctx context.Context, b *Binding) (*Binding, error) {
	if _, inTx := s.db.Statement.ConnPool.(gorm.TxCommitter); !inTx {
		bound, _, err := s.Bind(ctx, b)
		return bound, err
	}
	if err := validBinding(b); err != nil {
		return nil, err
	}
	tx := s.db.WithContext(ctx)
	res := tx.Model(&Guide{}).Where("id = ?", b.GuideID).Update("bound_count", gorm.Expr("bound_count + 1"))
	if res.Error != nil {
		return nil, translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, invalid("guide_id", "unknown guide %q", b.GuideID)
	}
	b.ID, b.EndedAt = 0, nil
	if err := tx.Create(b).Error; err != nil {
		return nil, translate(err)
	}
	bound := *b
	return &bound, nil
}

func validBinding(b *Binding) error {
	var errs []error
	if b.MemberID == 0 {
		errs = append(errs, invalid("member_id", "is required"))
	}
	errs = append(errs, ValidateID("brand", b.BrandID), ValidateID("guide_id", b.GuideID), ValidateID("store_id", b.StoreID))
	if b.Reason == "" {
		errs = append(errs, invalid("reason", "is required"))
	}
	return errors.Join(errs...)
}

// ErrGuideFull means the guide is at capacity.
var ErrGuideFull = fmt.Errorf("%w: guide is at capacity", ErrConflict)

// BindWithin is Bind for an assignment: it fails with ErrGuideFull when
// the guide is at capacity, checked and counted in the same transaction.
func (s *Store) BindWithin(ctx context.Context, b *Binding) (*Binding, bool, error) {
	return s.bind(ctx, b, true)
}

func (s *Store) bind(ctx context.Context, b *Binding, withinCapacity bool) (*Binding, bool, error) {
	if err := validBinding(b); err != nil {
		return nil, false, err
	}
	var current Binding
	created := false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Where("member_id = ? AND brand_id = ? AND ended_at IS NULL", b.MemberID, b.BrandID).Take(&current).Error
		if err == nil {
			return nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return translate(err)
		}
		q := tx.Model(&Guide{}).Where("id = ?", b.GuideID)
		if withinCapacity {
			q = q.Where("capacity = 0 OR bound_count < capacity")
		}
		res := q.Update("bound_count", gorm.Expr("bound_count + 1"))
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			if withinCapacity {
				return ErrGuideFull
			}
			return invalid("guide_id", "unknown guide %q", b.GuideID)
		}
		b.ID, b.EndedAt = 0, nil
		if err := tx.Create(b).Error; err != nil {
			return translate(err)
		}
		current, created = *b, true
		return nil
	})
	if errors.Is(err, ErrGuideFull) || errors.Is(err, ErrInvalid) {
		return nil, false, err
	}
	if isConflict(err) {
		// A concurrent bind won; its binding is the current one.
		err = s.db.WithContext(ctx).Where("member_id = ? AND brand_id = ? AND ended_at IS NULL", b.MemberID, b.BrandID).Take(&current).Error
		return &current, false, translate(err)
	}
	if err != nil {
		return nil, false, err
	}
	return &current, created, nil
}

// EndBinding ends a current binding (a reassignment or a member leaving)
// and releases the guide's capacity. Ending an ended binding does nothing.
func (s *Store) EndBinding(ctx context.Context, id int64) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var b Binding
		if err := tx.Where("id = ?", id).Take(&b).Error; err != nil {
			return translate(err)
		}
		res := tx.Model(&Binding{}).Where("id = ? AND ended_at IS NULL", id).Update("ended_at", time.Now().UTC())
		if res.Error != nil || res.RowsAffected == 0 {
			return translate(res.Error)
		}
		return translate(tx.Model(&Guide{}).Where("id = ? AND bound_count > 0", b.GuideID).
			Update("bound_count", gorm.Expr("bound_count - 1")).Error)
	})
}
