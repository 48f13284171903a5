package store

import (
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// UndoSendOutcomes drops what migration 0015_send_outcomes adds (and
// 0042_funnel_deltas, whose triggers read its columns) and
// forgets that they were applied: the schema of a database migrated
// before them, for a test to migrate again.
func UndoSendOutcomes(s *Store) error {
	// The funnel counters' triggers (0042) read those columns: a
	// database before 0015 has no counters either.
	if err := UndoFunnelDeltas(s); err != nil {
		return err
	}
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

// UndoFunnelDeltas drops what migration 0042_funnel_deltas
// makes (the counters, their triggers and functions) and forgets that it
// was applied: a database migrated before it, for a test to migrate
// again.
func UndoFunnelDeltas(s *Store) error {
	var stmts []string
	for _, tr := range funnelTriggerNames {
		table := map[string]string{"runs": "workflow_runs", "steps": "run_steps", "outbox": "outbox_messages"}[strings.Split(tr, "_")[1]]
		if s.dialect == "postgres" {
			stmts = append(stmts, "DROP TRIGGER "+tr+" ON "+table, "DROP FUNCTION "+tr+"()")
		} else {
			stmts = append(stmts, "DROP TRIGGER "+tr)
		}
	}
	stmts = append(stmts, "DROP TABLE funnel_run_totals", "DROP TABLE funnel_run_deltas", "DROP TABLE funnel_step_totals", "DROP TABLE funnel_step_deltas")
	for _, stmt := range stmts {
		if err := s.db.Exec(stmt).Error; err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return s.db.Where("id = ?", "0042_funnel_deltas").Delete(&schemaMigration{}).Error
}

// InTx runs fn in one transaction, its statements through exec: a test
// holds a transaction open while another writes.
func InTx(s *Store, fn func(exec func(sql string, args ...any) error) error) error {
	return s.db.Transaction(func(tx *gorm.DB) error {
		return fn(func(sql string, args ...any) error { return tx.Exec(sql, args...).Error })
	})
}
