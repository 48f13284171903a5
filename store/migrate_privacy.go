package store

import (
	"fmt"

	"gorm.io/gorm"
)

// migratePrivacy (0026_privacy_brand_profiles) gives each
// brand its own profile: the name moves from the person row to the
// membership of the brand that collected it, and identities are tagged
// with their brand; erasures are recorded.
//
// Which brand collected an existing name: EnsureMember set a name only
// when it created the person, in the same transaction as the membership
// it was created with, so the member's earliest membership (ties by
// brand id) is that brand. Names of people with no membership stay on the
// person row (given by the operator, shown to the admin only). Identities:
// crm:<brand> ids are that brand's; any other is the earliest
// membership's brand (the one the person joined through), else none.
// The phone: every brand of a person with a phone saw it so far, so each
// keeps it (phone_known). Nothing is dropped.
func migratePrivacy(tx *gorm.DB) error {
	m := tx.Migrator()
	for _, c := range []struct {
		model any
		field string
	}{{&Membership{}, "Name"}, {&Membership{}, "PhoneKnown"}, {&MemberIdentity{}, "BrandID"}, {&Member{}, "ErasedAt"}} {
		if !m.HasColumn(c.model, c.field) {
			if err := m.AddColumn(c.model, c.field); err != nil {
				return err
			}
		}
	}
	if !m.HasIndex(&MemberIdentity{}, "idx_member_identities_brand_id") {
		if err := m.CreateIndex(&MemberIdentity{}, "BrandID"); err != nil {
			return err
		}
	}
	if err := tx.AutoMigrate(&MemberErasure{}); err != nil {
		return err
	}
	// Every brand of a person with a phone saw it so far: they keep it.
	if err := tx.Exec(`UPDATE memberships SET phone_known = ? WHERE member_id IN (SELECT id FROM members WHERE phone_hash IS NOT NULL)`, true).Error; err != nil {
		return err
	}
	const earliest = `(SELECT e.brand_id FROM memberships e WHERE e.member_id = %s ORDER BY e.created_at, e.brand_id LIMIT 1)`
	for _, q := range []string{
		`UPDATE memberships SET name = (SELECT p.name FROM members p WHERE p.id = memberships.member_id)
			WHERE brand_id = ` + fmt.Sprintf(earliest, "memberships.member_id"),
		`UPDATE members SET name = '' WHERE EXISTS (SELECT 1 FROM memberships e WHERE e.member_id = members.id)`,
		`UPDATE member_identities SET brand_id = substr(channel, 5) WHERE channel LIKE 'crm:%'`,
		`UPDATE member_identities SET brand_id = COALESCE(` + fmt.Sprintf(earliest, "member_identities.member_id") + `, '')
			WHERE channel NOT LIKE 'crm:%'`,
	} {
		if err := tx.Exec(q).Error; err != nil {
			return err
		}
	}
	return nil
}
