package store

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
