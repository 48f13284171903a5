package store

import "context"

// GuideCard is a guide with what a new contact's welcome says about them:
// their store's name, address and opening hours, and the name of a brand.
type GuideCard struct {
	// Guide is the guide, without Identities.
	Guide
	StoreName         string
	StoreAddress      string
	StoreOpeningHours string
	// BrandID is the brand the card was read for; BrandName is its name,
	// and BrandFound whether it exists.
	BrandID    string
	BrandName  string
	BrandFound bool
}

// GuideCardByChannelID returns the guide with id on a channel instance
// (GuideByChannelID, without the guide's identities), their store's
// name, address and opening hours (empty when the store is gone) and
// brand's name, in one statement: what a new contact's handling reads
// about the guide they added, instead of five statements.
func (s *Store) GuideCardByChannelID(ctx context.Context, channel, externalID, brand string) (*GuideCard, error) {
	var row struct {
		Guide
		StoreName         string
		StoreAddress      string
		StoreOpeningHours string
		BrandFound        string
		BrandName         string
	}
	res := s.db.WithContext(ctx).Raw(`SELECT g.*, COALESCE(s.name, '') AS store_name, COALESCE(s.address, '') AS store_address,
	COALESCE(s.opening_hours, '') AS store_opening_hours, COALESCE(b.id, '') AS brand_found, COALESCE(b.name, '') AS brand_name
FROM guide_identities gi
JOIN guides g ON g.id = gi.guide_id
LEFT JOIN stores s ON s.id = g.store_id
LEFT JOIN brands b ON b.id = ?
WHERE gi.channel = ? AND gi.external_id = ?
LIMIT 1`, brand, channel, externalID).Scan(&row)
	if res.Error != nil {
		return nil, translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, ErrNotFound
	}
	return &GuideCard{Guide: row.Guide, StoreName: row.StoreName, StoreAddress: row.StoreAddress, StoreOpeningHours: row.StoreOpeningHours,
		BrandID: brand, BrandName: row.BrandName, BrandFound: row.BrandFound != ""}, nil
}
