package adapters

import (
	"context"
	"time"
)

// Group is a group chat of a channel's contacts and guides (a WeCom
// customer group, 客户群), owned by a guide.
type Group struct {
	ID   string
	Name string
	// Owner is the owning guide's id on the channel.
	Owner   string
	Notice  string
	Created time.Time
	Members []GroupMember
}

// GroupMember is one member of a Group.
type GroupMember struct {
	// ID is the contact's id on the channel (an external_userid), or a
	// guide's when Guide is true.
	ID    string
	Guide bool
	Name  string
	// JoinedAt and JoinScene say when and how they joined (WeCom: 1
	// invited directly, 2 by link, 3 by QR code).
	JoinedAt  time.Time
	JoinScene int
}

// GroupLookup is implemented by channels whose contacts meet in groups:
// LookupGroup describes one; a group that no longer exists is
// ErrInvalidRecipient. GroupIDs pages through the groups owners own
// (all, with none), from cursor "".
type GroupLookup interface {
	LookupGroup(ctx context.Context, id string) (*Group, error)
	GroupIDs(ctx context.Context, owners []string, cursor string) (ids []string, next string, err error)
}

// GroupSender is implemented by channels that send to groups through
// their owner (a WeCom message task the owner confirms): m goes to the
// groups, all owned by owner. MaxGroups is the most groups one call
// takes.
type GroupSender interface {
	SendToGroups(ctx context.Context, owner string, groupIDs []string, m *Outbound) (*Receipt, error)
	MaxGroups() int
}

// GroupReconciler is implemented by GroupSenders that can tell whether
// a SendToGroups whose answer was lost (the process died, or the call
// failed with ErrOutcomeUnknown) created its task: it looks among the
// tasks created from since on for one of m's content through owner to
// any of groupIDs, and returns the task's id (a Receipt's ExternalID)
// for each group it found. A group not in found did not get m. An
// error means the channel could not be asked now: nothing may be sent
// (wrapping ErrOutcomeUnknown: it cannot tell at all).
type GroupReconciler interface {
	ReconcileGroups(ctx context.Context, owner string, groupIDs []string, m *Outbound, since time.Time) (found map[string]string, err error)
}

// GroupDeliveryChecker is implemented by GroupSenders whose tasks go
// out later (a WeCom owner confirms the task): it tells what became of
// owner's task taskID for each of its groups, by group id
// (DeliveryPending while the owner has not sent it).
type GroupDeliveryChecker interface {
	CheckGroupDelivery(ctx context.Context, owner, taskID string) (map[string]Delivery, error)
}

// GroupWelcomer is implemented by channels with a welcome for new
// members of groups (a WeCom group welcome template, 入群欢迎语素材):
// it returns the template's id, which owners pick for their groups.
type GroupWelcomer interface {
	AddGroupWelcome(ctx context.Context, m *Outbound) (id string, err error)
}
