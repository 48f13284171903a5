package store

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"
)

// MemberTag is a tag a brand put on a member.
type MemberTag struct {
	MemberID  int64  `gorm:"primaryKey;autoIncrement:false"`
	BrandID   string `gorm:"primaryKey;size:64;index:idx_member_tags_tag"`
	Tag       string `gorm:"primaryKey;size:64;index:idx_member_tags_tag"`
	CreatedAt time.Time
}

// AddMemberTags tags a member for a brand and returns the tags that were
// new.
func (s *Store) AddMemberTags(ctx context.Context, memberID int64, brand string, tags []string, at time.Time) ([]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	var sql strings.Builder
	sql.WriteString("INSERT INTO member_tags (member_id, brand_id, tag, created_at) VALUES ")
	args := make([]any, 0, 4*len(tags))
	for i, tag := range tags {
		if err := requireText("tag", tag, 64); err != nil {
			return nil, err
		}
		if i > 0 {
			sql.WriteString(",")
		}
		sql.WriteString("(?,?,?,?)")
		args = append(args, memberID, brand, tag, utc(at))
	}
	sql.WriteString(" ON CONFLICT DO NOTHING RETURNING tag")
	rows, err := s.db.WithContext(ctx).Raw(sql.String(), args...).Rows()
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var added []string
	for rows.Next() {
		var tag string
		if err := rows.Scan(&tag); err != nil {
			return nil, translate(err)
		}
		added = append(added, tag)
	}
	return added, translate(rows.Err())
}

// RemoveMemberTags removes tags and returns those the member had.
func (s *Store) RemoveMemberTags(ctx context.Context, memberID int64, brand string, tags []string) ([]string, error) {
	var removed []string
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, tag := range tags {
			res := tx.Where("member_id = ? AND brand_id = ? AND tag = ?", memberID, brand, tag).Delete(&MemberTag{})
			if res.Error != nil {
				return translate(res.Error)
			}
			if res.RowsAffected == 1 {
				removed = append(removed, tag)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

// MemberTags returns a member's tags with a brand, sorted.
func (s *Store) MemberTags(ctx context.Context, memberID int64, brand string) ([]string, error) {
	var tags []string
	err := s.db.WithContext(ctx).Model(&MemberTag{}).Where("member_id = ? AND brand_id = ?", memberID, brand).
		Order("tag").Pluck("tag", &tags).Error
	return tags, translate(err)
}
