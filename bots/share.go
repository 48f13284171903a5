package bots

import (
	"context"
	"errors"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/templates"
)

// IntentShareLink makes a guide a share link for a product their store
// carries; its pattern captures the SKU.
const IntentShareLink = "share_link"

// Template ids of the share link's replies.
const (
	TemplateShareLink    = "bot_share_link"
	TemplateShareUnknown = "bot_share_unknown"
)

// ShareLinker makes a guide's share link for a product of a brand their
// store carries. A product the store does not carry is a
// store.FieldError of "sku"; one without a page on the shop of "url"
// (the Share then names the product).
type ShareLinker interface {
	ShareLink(ctx context.Context, g *store.Guide, brand, sku string) (templates.Share, error)
}

// shareLink answers "分享 SKU": the link, or why there is none.
func (d Deps) shareLink(ctx context.Context, m *Message, g *store.Guide, sku string, data *templates.Data) ([]Reply, error) {
	brand := m.Brand
	if brand == "" {
		rs, err := d.Directory.RetailStore(ctx, g.StoreID, "")
		if err != nil {
			return nil, err
		}
		if len(rs.BrandIDs) > 0 {
			brand = rs.BrandIDs[0]
		}
	}
	sh, err := d.Shares.ShareLink(ctx, g, brand, sku)
	data.Guide = templates.Guide{Name: g.Name}
	data.TimeZone = d.guideZone(ctx, g).String()
	var fe *store.FieldError
	switch {
	case errors.As(err, &fe) && (fe.Field == "sku" || fe.Field == "url"):
		data.Share = templates.Share{SKU: sku}
		if fe.Field == "url" {
			data.Share.Product = sh.Product
		}
		return d.render(TemplateShareUnknown, m, data, nil)
	case err != nil:
		return nil, err
	}
	data.Share = sh
	return d.render(TemplateShareLink, m, data, nil)
}
