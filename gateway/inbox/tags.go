package inbox

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/scrmgw/scrmgw/adapters"
)

// contactTags makes the member's tags what the channel's guides put on
// the contact, when the channel keeps tags (c.Tags): added and removed
// with member.tagged and member.untagged. Without a Syncer, or on a
// channel that keeps no tags, the guide's tags are only added.
func (c *Contacts) contactTags(ctx context.Context, in *adapters.Inbound, memberID int64, info *adapters.Contact, follow adapters.ContactFollow, changed map[string]string) error {
	if c.Tags == nil || !c.Tags.Keeps(in.Channel) {
		var tags []string
		for _, t := range follow.Tags {
			if t = strings.TrimSpace(t); t != "" && len([]rune(t)) <= 64 {
				tags = append(tags, t)
			}
		}
		added, err := c.store.AddMemberTags(ctx, memberID, in.Brand, tags, in.At)
		if err != nil {
			return fmt.Errorf("tagging member: %w", err)
		}
		if len(added) > 0 {
			changed["tags_added"] = strings.Join(added, ",")
		}
		return nil
	}
	ch, err := c.Tags.ApplyFollows(ctx, in.Channel, in.Brand, memberID, info.Follows, in.DedupKey, in.At)
	if err != nil {
		return fmt.Errorf("syncing the contact's tags: %w", err)
	}
	if len(ch.Added) > 0 {
		changed["tags_added"] = strings.Join(ch.Added, ",")
	}
	if len(ch.Removed) > 0 {
		changed["tags_removed"] = strings.Join(ch.Removed, ",")
	}
	return nil
}

// tagsChanged: the channel's tag library changed (a tag created,
// renamed, deleted, reordered). It is read again, whatever the event
// names (an unknown tag is no error): renames and deletions apply to the
// members of the brands the channel serves.
func (c *Contacts) tagsChanged(ctx context.Context, in *adapters.Inbound) error {
	if c.Tags == nil || !c.Tags.Keeps(in.Channel) {
		return nil
	}
	ch, err := c.Tags.Refresh(ctx, in.Channel, in.Brands(), in.DedupKey, in.At)
	if err != nil {
		return fmt.Errorf("reading the tags of %s again: %w", in.Channel, err)
	}
	c.log.Info("channel tags changed", slog.String("channel", in.Channel), slog.String("change_type", in.Attrs["change_type"]),
		slog.Int("created", len(ch.Created)), slog.Int("renamed", len(ch.Renamed)), slog.Int("deleted", len(ch.Deleted)),
		slog.Int("members", ch.Members))
	return nil
}
