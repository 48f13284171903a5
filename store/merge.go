package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// MemberMerge records that one member was found to be another: every
// identity, membership, binding and event of From moved to Into, and From
// now resolves to Into.
type MemberMerge struct {
	ID     int64  `gorm:"primaryKey;autoIncrement" json:"id"`
	FromID int64  `gorm:"not null;uniqueIndex" json:"from_member_id"`
	IntoID int64  `gorm:"not null;index" json:"into_member_id"`
	By     string `gorm:"size:200" json:"by"`
	// Moved says what moved, for the audit trail.
	Moved     string    `gorm:"size:1000" json:"moved"`
	CreatedAt time.Time `json:"created_at"`
}

// MergeHook moves rows of tables outside this file (tags, points ledger
// lines, workflow runs) from one member to another inside the merge's
// transaction. Packages that add member-owned tables register one.
type MergeHook func(tx *gorm.DB, from, into int64) error

var mergeHooks []MergeHook

// RegisterMergeHook adds a hook run by every merge; call it at init.
func RegisterMergeHook(h MergeHook) { mergeHooks = append(mergeHooks, h) }

// MergeMembers merges member from into member into, in one transaction:
// identities, brand memberships (points added, the higher level kept),
// bindings (into keeps its own guide for a brand both have; from's other
// bindings move), events and the phone number (when into has none) move;
// from is marked merged, so its id resolves to into. by names who merged,
// for the record.
func (s *Store) MergeMembers(ctx context.Context, from, into int64, by string) (*MemberMerge, error) {
	if from == into {
		return nil, invalid("into", "a member cannot be merged into itself")
	}
	rec := &MemberMerge{FromID: from, IntoID: into, By: by}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var a, b Member
		if err := tx.Where("id = ?", from).Take(&a).Error; err != nil {
			return translate(err)
		}
		if err := tx.Where("id = ?", into).Take(&b).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return invalid("into", "member %d does not exist", into)
			}
			return translate(err)
		}
		if a.MergedInto != nil {
			return fmt.Errorf("%w: member %d was already merged into %d", ErrConflict, from, *a.MergedInto)
		}
		if b.MergedInto != nil {
			return invalid("into", "member %d was itself merged into %d; merge into that one", into, *b.MergedInto)
		}
		moved := map[string]int64{}
		res := tx.Model(&MemberIdentity{}).Where("member_id = ?", from).Update("member_id", into)
		if res.Error != nil {
			return translate(res.Error)
		}
		moved["identities"] = res.RowsAffected

		var ms []Membership
		if err := tx.Where("member_id = ?", from).Find(&ms).Error; err != nil {
			return translate(err)
		}
		for _, m := range ms {
			var have Membership
			err := tx.Where("member_id = ? AND brand_id = ?", into, m.BrandID).Take(&have).Error
			switch {
			case errors.Is(err, gorm.ErrRecordNotFound):
				if err := tx.Omit("Member", "Brand").Create(&Membership{MemberID: into, BrandID: m.BrandID, Level: m.Level, Points: m.Points, Name: m.Name,
					PhoneKnown: m.PhoneKnown, CreatedAt: m.CreatedAt}).Error; err != nil {
					return translate(err)
				}
			case err != nil:
				return translate(err)
			default:
				level, name := have.Level, have.Name
				if level == "" {
					level = m.Level
				}
				if name == "" {
					name = m.Name
				}
				if err := tx.Model(&Membership{}).Where("member_id = ? AND brand_id = ?", into, m.BrandID).
					Updates(map[string]any{"points": gorm.Expr("points + ?", m.Points), "level": level, "name": name,
						"phone_known": have.PhoneKnown || m.PhoneKnown}).Error; err != nil {
					return translate(err)
				}
			}
		}
		if err := tx.Where("member_id = ?", from).Delete(&Membership{}).Error; err != nil {
			return translate(err)
		}
		moved["memberships"] = int64(len(ms))

		var bs []Binding
		if err := tx.Where("member_id = ? AND ended_at IS NULL", from).Find(&bs).Error; err != nil {
			return translate(err)
		}
		now := time.Now().UTC()
		for _, bd := range bs {
			var n int64
			if err := tx.Model(&Binding{}).Where("member_id = ? AND brand_id = ? AND ended_at IS NULL", into, bd.BrandID).Count(&n).Error; err != nil {
				return translate(err)
			}
			if n > 0 {
				// into keeps its guide; from's binding ends.
				if err := tx.Model(&Binding{}).Where("id = ?", bd.ID).Update("ended_at", now).Error; err != nil {
					return translate(err)
				}
				if err := tx.Model(&Guide{}).Where("id = ? AND bound_count > 0", bd.GuideID).Update("bound_count", gorm.Expr("bound_count - 1")).Error; err != nil {
					return translate(err)
				}
			}
		}
		res = tx.Model(&Binding{}).Where("member_id = ?", from).Update("member_id", into)
		if res.Error != nil {
			return translate(res.Error)
		}
		moved["bindings"] = res.RowsAffected
		res = tx.Model(&Event{}).Where("member_id = ?", from).Update("member_id", into)
		if res.Error != nil {
			return translate(res.Error)
		}
		moved["events"] = res.RowsAffected

		fromUpdate := map[string]any{"merged_into": into, "phone_hash": nil, "phone_enc": nil, "phone_tail": ""}
		if err := tx.Model(&Member{}).Where("id = ?", from).Updates(fromUpdate).Error; err != nil {
			return translate(err)
		}
		if b.PhoneHash == nil && a.PhoneHash != nil {
			if err := tx.Model(&Member{}).Where("id = ?", into).Updates(map[string]any{"phone_hash": *a.PhoneHash,
				"phone_enc": a.PhoneEnc, "phone_tail": a.PhoneTail}).Error; err != nil {
				return translate(err)
			}
		}
		if b.Name == "" && a.Name != "" {
			if err := tx.Model(&Member{}).Where("id = ?", into).Update("name", a.Name).Error; err != nil {
				return translate(err)
			}
		}
		if err := mergeEngineRows(tx, from, into, now, moved); err != nil {
			return err
		}
		for _, h := range mergeHooks {
			if err := h(tx, from, into); err != nil {
				return err
			}
		}
		rec.Moved = fmt.Sprintf("identities=%d memberships=%d bindings=%d events=%d tags=%d points_lines=%d runs=%d guide_tasks=%d",
			moved["identities"], moved["memberships"], moved["bindings"], moved["events"], moved["tags"], moved["points_lines"],
			moved["runs"], moved["guide_tasks"])
		return translate(tx.Create(rec).Error)
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// mergeEngineRows moves what the workflow engine keeps per member: the
// points ledger (already counted in the memberships), tags and consent
// (the survivor's win where both have one), sends (for frequency caps),
// guide tasks, and workflow runs; a run of a workflow the survivor also
// runs ends as "merged", since a member has one active run per workflow.
func mergeEngineRows(tx *gorm.DB, from, into int64, now time.Time, moved map[string]int64) error {
	res := tx.Model(&PointsLine{}).Where("member_id = ?", from).Update("member_id", into)
	if res.Error != nil {
		return translate(res.Error)
	}
	moved["points_lines"] = res.RowsAffected
	for _, tbl := range []struct {
		model any
		table string
		keys  string
	}{{&MemberTag{}, "member_tags", "brand_id, tag"}, {&MemberConsent{}, "member_consent", "brand_id, channel"},
		{&CrossBrandOptIn{}, "member_cross_brand", "brand_id"}} {
		q := fmt.Sprintf(`DELETE FROM %s WHERE member_id = ? AND (%s) IN (SELECT %s FROM %s WHERE member_id = ?)`,
			tbl.table, tbl.keys, tbl.keys, tbl.table)
		if err := tx.Exec(q, from, into).Error; err != nil {
			return translate(err)
		}
		res := tx.Model(tbl.model).Where("member_id = ?", from).Update("member_id", into)
		if res.Error != nil {
			return translate(res.Error)
		}
		if tbl.table == "member_tags" {
			moved["tags"] = res.RowsAffected
		}
	}
	if err := tx.Model(&MemberSend{}).Where("member_id = ?", from).Update("member_id", into).Error; err != nil {
		return translate(err)
	}
	// Orders, guide points and quota counts follow the member; purchase
	// figures add up.
	for _, m := range []any{&Order{}, &GuidePointsEntry{}, &QuotaSend{}, &IssuedCoupon{}, &CouponRedemption{}} {
		if err := tx.Model(m).Where("member_id = ?", from).Update("member_id", into).Error; err != nil {
			return translate(err)
		}
	}
	// Live sessions: the orders counted follow the member; in a session
	// both were in, the survivor's audience row stays (as tags do).
	if err := tx.Model(&LiveOrder{}).Where("member_id = ?", from).Update("member_id", into).Error; err != nil {
		return translate(err)
	}
	if err := tx.Exec(`DELETE FROM live_audiences WHERE member_id = ? AND session_id IN (SELECT session_id FROM live_audiences WHERE member_id = ?)`,
		from, into).Error; err != nil {
		return translate(err)
	}
	if err := tx.Model(&LiveAudience{}).Where("member_id = ?", from).Update("member_id", into).Error; err != nil {
		return translate(err)
	}
	if err := mergeStats(tx, from, into); err != nil {
		return err
	}
	res = tx.Model(&GuideTask{}).Where("member_id = ?", from).Update("member_id", into)
	if res.Error != nil {
		return translate(res.Error)
	}
	moved["guide_tasks"] = res.RowsAffected
	var runs []WorkflowRun
	if err := tx.Where("member_id = ?", from).Find(&runs).Error; err != nil {
		return translate(err)
	}
	for _, r := range runs {
		if r.State == RunActive {
			var n int64
			if err := tx.Model(&WorkflowRun{}).Where("member_id = ? AND brand_id = ? AND workflow = ? AND state = ?",
				into, r.BrandID, r.Workflow, RunActive).Count(&n).Error; err != nil {
				return translate(err)
			}
			if n > 0 {
				if err := tx.Model(&WorkflowRun{}).Where("id = ?", r.ID).
					Updates(map[string]any{"state": RunExited, "end_reason": "merged into member " + fmt.Sprint(into), "ended_at": now}).Error; err != nil {
					return translate(err)
				}
			}
		}
		// A run with the same trigger as one of the survivor's stays
		// with the merged member (its history is kept either way).
		var dup int64
		if err := tx.Model(&WorkflowRun{}).Where("member_id = ? AND brand_id = ? AND workflow = ? AND trigger_key = ?",
			into, r.BrandID, r.Workflow, r.TriggerKey).Count(&dup).Error; err != nil {
			return translate(err)
		}
		if dup == 0 {
			if err := tx.Model(&WorkflowRun{}).Where("id = ?", r.ID).Update("member_id", into).Error; err != nil {
				return translate(err)
			}
			moved["runs"]++
		}
	}
	return nil
}

// mergeStats adds a merged member's purchase figures to the survivor's.
func mergeStats(tx *gorm.DB, from, into int64) error {
	var rows []MemberStats
	if err := tx.Where("member_id = ?", from).Find(&rows).Error; err != nil {
		return translate(err)
	}
	for _, r := range rows {
		var have MemberStats
		err := tx.Where("member_id = ? AND brand_id = ?", into, r.BrandID).Take(&have).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			if err := tx.Model(&MemberStats{}).Where("member_id = ? AND brand_id = ?", from, r.BrandID).Update("member_id", into).Error; err != nil {
				return translate(err)
			}
			continue
		}
		if err != nil {
			return translate(err)
		}
		have.Orders += r.Orders
		have.SpentCents += r.SpentCents
		have.FirstPurchaseAt = earliest(have.FirstPurchaseAt, r.FirstPurchaseAt)
		have.LastPurchaseAt = latest(have.LastPurchaseAt, r.LastPurchaseAt)
		have.LastVisitAt = latest(have.LastVisitAt, r.LastVisitAt)
		if err := tx.Model(&MemberStats{}).Where("member_id = ? AND brand_id = ?", into, r.BrandID).Updates(map[string]any{
			"orders": have.Orders, "spent_cents": have.SpentCents, "first_purchase_at": have.FirstPurchaseAt,
			"last_purchase_at": have.LastPurchaseAt, "last_visit_at": have.LastVisitAt}).Error; err != nil {
			return translate(err)
		}
		if err := tx.Where("member_id = ? AND brand_id = ?", from, r.BrandID).Delete(&MemberStats{}).Error; err != nil {
			return translate(err)
		}
	}
	return nil
}

func earliest(a, b *time.Time) *time.Time {
	if a == nil || (b != nil && b.Before(*a)) {
		return b
	}
	return a
}

func latest(a, b *time.Time) *time.Time {
	if a == nil || (b != nil && b.After(*a)) {
		return b
	}
	return a
}
