package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// LegacyGuideIDFields are the guide fields of the API and the CSV import
// from before guides had identities, each an alias of the guide's
// identity on the default instance of a channel kind. A guide's JSON
// carries them beside "identities"; input may use either.
var LegacyGuideIDFields = []struct{ Field, Channel string }{
	{Field: "wecom_userid", Channel: "wecom"},
	{Field: "dingtalk_userid", Channel: "dingtalk"},
}

// maxExternalID is the longest external id of a guide or member.
const maxExternalID = 128

// Identity returns the guide's id on a channel instance, or "".
func (g *Guide) Identity(channel string) string {
	for _, id := range g.Identities {
		if id.Channel == channel {
			return id.ExternalID
		}
	}
	return ""
}

// SetIdentity sets (or with an empty id removes) the guide's id on a
// channel instance.
func (g *Guide) SetIdentity(channel, externalID string) {
	g.Identities = slices.DeleteFunc(g.Identities, func(id GuideIdentity) bool { return id.Channel == channel })
	if externalID != "" {
		g.Identities = append(g.Identities, GuideIdentity{GuideID: g.ID, Channel: channel, ExternalID: externalID})
	}
}

// MarshalJSON writes the guide with its identities (an empty list when it
// has none) and, for old clients, the LegacyGuideIDFields it has.
func (g Guide) MarshalJSON() ([]byte, error) {
	type plain Guide
	p := plain(g)
	if p.Identities == nil {
		p.Identities = []GuideIdentity{}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var extra []string
	for _, f := range LegacyGuideIDFields {
		if id := g.Identity(f.Channel); id != "" {
			v, _ := json.Marshal(id)
			k, _ := json.Marshal(f.Field)
			extra = append(extra, string(k)+":"+string(v))
		}
	}
	if len(extra) == 0 {
		return b, nil
	}
	return append(append(b[:len(b)-1], ","+strings.Join(extra, ",")...), '}'), nil
}

// validateIdentities checks a guide's identities: a channel key, an id of
// 1 to 128 bytes, one per channel.
func validateIdentities(ids []GuideIdentity) []error {
	var errs []error
	seen := map[string]bool{}
	for i, id := range ids {
		field := fmt.Sprintf("identities[%d]", i)
		switch {
		case id.Channel == "" || len(id.Channel) > 80 || strings.ContainsAny(id.Channel, " \t\r\n"):
			errs = append(errs, invalid(field+".channel", "must name a channel instance (1-80 characters, no spaces), got %q", id.Channel))
		case seen[id.Channel]:
			errs = append(errs, invalid(field+".channel", "the guide has another id on %q: one per channel", id.Channel))
		}
		seen[id.Channel] = true
		if id.ExternalID == "" || len(id.ExternalID) > maxExternalID {
			errs = append(errs, invalid(field+".external_id", "must be 1-%d bytes, got %d", maxExternalID, len(id.ExternalID)))
		}
	}
	return errs
}

// GuideByChannelID returns the guide with that id on a channel instance.
func (s *Store) GuideByChannelID(ctx context.Context, channel, id string) (*Guide, error) {
	db := s.db.WithContext(ctx)
	var gi GuideIdentity
	if err := db.Where("channel = ? AND external_id = ?", channel, id).Take(&gi).Error; err != nil {
		return nil, translate(err)
	}
	var g Guide
	if err := db.Where("id = ?", gi.GuideID).Take(&g).Error; err != nil {
		return nil, translate(err)
	}
	return &g, loadGuideIdentities(db, []*Guide{&g})
}

// loadGuideIdentities fills the guides' Identities, each in channel order.
func loadGuideIdentities(db *gorm.DB, guides []*Guide) error {
	if len(guides) == 0 {
		return nil
	}
	byID := make(map[string][]*Guide, len(guides))
	ids := make([]string, 0, len(guides))
	for _, g := range guides {
		g.Identities = nil
		if _, ok := byID[g.ID]; !ok {
			ids = append(ids, g.ID)
		}
		byID[g.ID] = append(byID[g.ID], g)
	}
	for chunk := range slices.Chunk(ids, 1000) {
		var rows []GuideIdentity
		if err := db.Where("guide_id IN ?", chunk).Order("guide_id, channel").Find(&rows).Error; err != nil {
			return fmt.Errorf("reading guide identities: %w", translate(err))
		}
		for _, r := range rows {
			for _, g := range byID[r.GuideID] {
				g.Identities = append(g.Identities, r)
			}
		}
	}
	return nil
}

// guidePtrs points at each guide of a slice.
func guidePtrs(gs []Guide) []*Guide {
	out := make([]*Guide, len(gs))
	for i := range gs {
		out[i] = &gs[i]
	}
	return out
}

// checkIdentitiesFree fails with ErrConflict when another guide than the
// ones written has an id the guides claim, or two of them claim one.
func checkIdentitiesFree(tx *gorm.DB, guides []Guide) error {
	writing := make([]string, 0, len(guides))
	claimed := map[[2]string]string{}
	byChannel := map[string][]string{}
	for i, g := range guides {
		writing = append(writing, g.ID)
		for _, id := range g.Identities {
			k := [2]string{id.Channel, id.ExternalID}
			if other, ok := claimed[k]; ok && other != g.ID {
				err := fmt.Errorf("%w: %s id %q is given to guides %q and %q", ErrConflict, id.Channel, id.ExternalID, other, g.ID)
				if len(guides) > 1 {
					return &RowError{Row: i, Err: err}
				}
				return err
			}
			claimed[k] = g.ID
			byChannel[id.Channel] = append(byChannel[id.Channel], id.ExternalID)
		}
	}
	for channel, ext := range byChannel {
		for chunk := range slices.Chunk(ext, 500) {
			var taken []GuideIdentity
			if err := tx.Where("channel = ? AND external_id IN ? AND guide_id NOT IN ?", channel, chunk, writing).
				Limit(1).Find(&taken).Error; err != nil {
				return translate(err)
			}
			if len(taken) > 0 {
				t := taken[0]
				err := fmt.Errorf("%w: %s id %q is guide %q's", ErrConflict, t.Channel, t.ExternalID, t.GuideID)
				if len(guides) == 1 {
					return err
				}
				for i, g := range guides {
					if g.Identity(t.Channel) == t.ExternalID {
						return &RowError{Row: i, Err: err}
					}
				}
				return err
			}
		}
	}
	return nil
}

// replaceGuideIdentities makes the guides' identities what they carry.
func replaceGuideIdentities(tx *gorm.DB, guides []Guide, now time.Time) error {
	ids := make([]string, 0, len(guides))
	var rows []GuideIdentity
	for _, g := range guides {
		ids = append(ids, g.ID)
		for _, id := range g.Identities {
			rows = append(rows, GuideIdentity{GuideID: g.ID, Channel: id.Channel, ExternalID: id.ExternalID, CreatedAt: now})
		}
	}
	for chunk := range slices.Chunk(ids, 500) {
		// An identity kept keeps its created_at.
		var old []GuideIdentity
		if err := tx.Where("guide_id IN ?", chunk).Find(&old).Error; err != nil {
			return translate(err)
		}
		for _, o := range old {
			for i := range rows {
				if rows[i].GuideID == o.GuideID && rows[i].Channel == o.Channel && rows[i].ExternalID == o.ExternalID {
					rows[i].CreatedAt = o.CreatedAt
				}
			}
		}
		if err := tx.Where("guide_id IN ?", chunk).Delete(&GuideIdentity{}).Error; err != nil {
			return translate(err)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	return translate(tx.Omit("Guide").CreateInBatches(rows, 500).Error)
}

// migrateGuideIdentities moves the guides' one column per channel into
// guide_identities rows on the channels' default instances and drops the
// columns.
func migrateGuideIdentities(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&GuideIdentity{}); err != nil {
		return fmt.Errorf("creating guide_identities: %w", err)
	}
	for _, f := range LegacyGuideIDFields {
		if !tx.Migrator().HasColumn("guides", f.Field) {
			continue // a database created after the columns were gone
		}
		err := tx.Exec(`INSERT INTO guide_identities (guide_id, channel, external_id, created_at)
			SELECT id, ?, `+f.Field+`, created_at FROM guides WHERE `+f.Field+` IS NOT NULL AND `+f.Field+` <> ''`, f.Channel).Error
		if err != nil {
			return fmt.Errorf("copying guides.%s: %w", f.Field, err)
		}
		if err := tx.Exec(`DROP INDEX IF EXISTS idx_guides_` + f.Field).Error; err != nil {
			return fmt.Errorf("dropping the index of guides.%s: %w", f.Field, err)
		}
		if err := tx.Exec(`ALTER TABLE guides DROP COLUMN ` + f.Field).Error; err != nil {
			return fmt.Errorf("dropping guides.%s: %w", f.Field, err)
		}
	}
	return nil
}
