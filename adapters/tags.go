package adapters

import "context"

// ChannelTag is a tag a channel keeps of its own on its contacts (a WeCom
// corp tag, 企业客户标签). Its Name is the scrmgw tag it stands for.
type ChannelTag struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	GroupID   string `json:"group_id,omitempty"`
	GroupName string `json:"group_name,omitempty"`
}

// Tagger is implemented by channels that keep tags of their own on
// contacts, so that a member's scrmgw tags show there and tags set there
// become the member's (WeCom corp tags set by a guide).
type Tagger interface {
	// Tags lists the channel's tags as they are now.
	Tags(ctx context.Context) ([]ChannelTag, error)
	// CheckTag reports why name cannot be a tag on the channel (too
	// long, say): an error wrapping ErrInvalidMessage, or nil.
	CheckTag(name string) error
	// MarkTags adds and removes tags, by name, on a contact, as the guide
	// via (the guide's id on the channel) who has the contact; "" lets
	// the channel pick one who does. Tags to add that the channel does
	// not have yet are created first. A contact who is no longer one is
	// ErrInvalidRecipient.
	MarkTags(ctx context.Context, via, externalID string, add, remove []string) error
}
