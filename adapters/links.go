package adapters

import (
	"context"
	"time"
)

// LinkMaker is implemented by channels with web links that add one of
// some guides as a contact (a WeCom acquisition link, 获客链接): a contact
// who comes through a link comes with its state, as through a
// contact-way QR code, and is bound the same way. Links draw on a quota.
type LinkMaker interface {
	// CreateLink creates a link named name to the guides (their ids on
	// the channel) and returns its id and the URL to hand out, which
	// carries state.
	CreateLink(ctx context.Context, name string, guides []string, state string) (id, url string, err error)
	// LinkQuota is what is left of the links' quota.
	LinkQuota(ctx context.Context) (*LinkQuota, error)
}

// LinkQuota is a channel's quota of contacts added through links.
type LinkQuota struct {
	Total   int `json:"total"`
	Balance int `json:"balance"`
	// Lots are the parts of the balance by expiry.
	Lots []QuotaLot `json:"lots"`
	// Low is true when the balance is under a tenth of the total (or
	// gone): operators are warned.
	Low bool `json:"low"`
}

// QuotaLot is a part of a quota that expires at one time.
type QuotaLot struct {
	Balance int       `json:"balance"`
	Expires time.Time `json:"expires"`
}
