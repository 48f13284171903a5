package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// ChannelTag is a tag a channel instance keeps of its own (a WeCom corp
// tag), as last read: what renames and deletions there are told apart
// by. Its Name is the scrmgw tag it stands for.
type ChannelTag struct {
	Channel   string `gorm:"primaryKey;size:80"`
	TagID     string `gorm:"primaryKey;size:128"`
	Name      string `gorm:"size:64;not null"`
	GroupID   string `gorm:"size:128"`
	GroupName string `gorm:"size:64"`
	UpdatedAt time.Time
}

func migrateChannelTags(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&ChannelTag{}); err != nil {
		return fmt.Errorf("creating channel_tags: %w", err)
	}
	return nil
}

// ChannelTags returns the tags of a channel instance as last stored,
// by tag id.
func (s *Store) ChannelTags(ctx context.Context, channel string) ([]ChannelTag, error) {
	var tags []ChannelTag
	err := s.db.WithContext(ctx).Where("channel = ?", channel).Order("tag_id").Find(&tags).Error
	return tags, translate(err)
}

// ReplaceChannelTags stores the tags of a channel instance as they are
// now, in place of those stored.
func (s *Store) ReplaceChannelTags(ctx context.Context, channel string, tags []ChannelTag) error {
	now := utc(time.Now())
	return translate(s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("channel = ?", channel).Delete(&ChannelTag{}).Error; err != nil {
			return err
		}
		for i := 0; i < len(tags); i += 500 {
			batch := make([]ChannelTag, 0, min(500, len(tags)-i))
			for _, t := range tags[i:min(i+500, len(tags))] {
				t.Channel, t.UpdatedAt = channel, now
				batch = append(batch, t)
			}
			if err := tx.Create(&batch).Error; err != nil {
				return err
			}
		}
		return nil
	}))
}

// MembersTagged lists, by id, the members of brand who have tag.
func (s *Store) MembersTagged(ctx context.Context, brand, tag string) ([]int64, error) {
	var ids []int64
	err := s.db.WithContext(ctx).Model(&MemberTag{}).Where("brand_id = ? AND tag = ?", brand, tag).
		Order("member_id").Pluck("member_id", &ids).Error
	return ids, translate(err)
}

// MembersWithIdentity lists, by id from after on, up to limit members who
// have an identity on channel, with that identity.
func (s *Store) MembersWithIdentity(ctx context.Context, channel string, after int64, limit int) ([]MemberIdentity, error) {
	var ids []MemberIdentity
	err := s.db.WithContext(ctx).Where("channel = ? AND member_id > ?", channel, after).
		Order("member_id").Limit(Page{Limit: limit}.limit()).Find(&ids).Error
	return ids, translate(err)
}
