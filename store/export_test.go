package store

import (
	"fmt"
	"strings"
)

// UndoSendOutcomes drops what migration 0015_send_outcomes adds and
// forgets that it was applied: the schema of a database migrated before
// it, for a test to migrate again.
func UndoSendOutcomes(s *Store) error {
	m := s.db.Migrator()
	for _, c := range []struct {
		model any
		field string
	}{{&RunStep{}, "OutboxKey"}, {&RunStep{}, "Reason"}, {&OutboxMessage{}, "Failure"}} {
		if err := m.DropColumn(c.model, c.field); err != nil {
			return err
		}
	}
	return s.db.Where("id = ?", "0015_send_outcomes").Delete(&schemaMigration{}).Error
}

// AppendCommissionLines writes ledger lines as they are, for a test of a
// ledger completed after its day was settled.
func AppendCommissionLines(s *Store, lines []CommissionLine) error {
	return s.db.Create(&lines).Error
}

// Traces reads every table and returns, per table and column, the values
// that contain one of the needles (plain text, or a phone number's hash
// for each phone given): what is left of a person after an erasure.
func Traces(s *Store, needles, phones []string) (map[string][]string, error) {
	for _, p := range phones {
		e164, err := NormalizePhone(p)
		if err != nil {
			return nil, err
		}
		needles = append(needles, s.phones.Hash(e164))
	}
	tables, err := s.db.Migrator().GetTables()
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, table := range tables {
		var rows []map[string]any
		if err := s.db.Table(table).Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("reading %s: %w", table, err)
		}
		for _, row := range rows {
			for col, v := range row {
				var text string
				switch x := v.(type) {
				case string:
					text = x
				case []byte:
					text = string(x)
				default:
					continue
				}
				for _, n := range needles {
					if strings.Contains(text, n) {
						out[table+"."+col] = append(out[table+"."+col], n)
					}
				}
			}
		}
	}
	return out, nil
}

// PhoneCiphertexts counts members rows of id with a phone ciphertext.
func PhoneCiphertexts(s *Store, id int64) (n int64, err error) {
	err = s.db.Model(&Member{}).Where("id = ? AND phone_enc IS NOT NULL", id).Count(&n).Error
	return n, err
}

// Rows counts a table's rows of a member (member_id = id).
func Rows(s *Store, table string, id int64) (n int64, err error) {
	err = s.db.Table(table).Where("member_id = ?", id).Count(&n).Error
	return n, err
}

// Exec runs a statement, for tests that age rows.
func Exec(s *Store, sql string, args ...any) error { return s.db.Exec(sql, args...).Error }

// UndoPrivacy puts a database's data back as it was before migration
// 0026_privacy_brand_profiles (names on the person row, identities with no
// brand; the columns stay) and forgets that it was applied, for a test to
// migrate again.
func UndoPrivacy(s *Store) error {
	for _, q := range []string{
		`UPDATE members SET name = (SELECT e.name FROM memberships e WHERE e.member_id = members.id AND e.name <> '' ORDER BY e.created_at LIMIT 1)
		WHERE EXISTS (SELECT 1 FROM memberships e WHERE e.member_id = members.id AND e.name <> '')`,
		`UPDATE memberships SET name = ''`,
		`UPDATE member_identities SET brand_id = ''`,
		`UPDATE memberships SET phone_known = false`,
	} {
		if err := s.db.Exec(q).Error; err != nil {
			return err
		}
	}
	return s.db.Where("id = ?", "0026_privacy_brand_profiles").Delete(&schemaMigration{}).Error
}

// LiveAudienceRows returns every audience row of a live session, by
// member id.
func LiveAudienceRows(s *Store, session int64) ([]LiveAudience, error) {
	var out []LiveAudience
	err := s.db.Where("session_id = ?", session).Order("member_id").Find(&out).Error
	return out, err
}

// ByQueries is s reading member views a table at a time, as on SQLite
// (PostgreSQL's lookups read them in one statement), to compare the two.
func ByQueries(s *Store) *Store {
	c := *s
	c.dialect = ""
	return &c
}
