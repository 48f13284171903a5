package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// AuditMinRetention is how young an audit entry the database refuses to
// delete: pruning (PruneAudit) removes only older ones, and nothing else
// may remove any (configs.AuditMinRetention must be the same).
const AuditMinRetention = 30 * 24 * time.Hour

// AuditPrune is the entry the retention job appends after deleting old
// entries (resource_ids: deleted=N&before=RFC 3339).
const AuditPrune = "audit.prune"

// migrateAuditPrune lets old audit entries be deleted, and no others:
// UPDATE and TRUNCATE stay refused; a row trigger refuses to DELETE an
// entry younger than AuditMinRetention (30 days), so a bug or someone
// with SQL access still cannot remove recent history without dropping
// the trigger (which needs the table's owner).
func migrateAuditPrune(tx *gorm.DB) error {
	var stmts []string
	if tx.Dialector.Name() == "postgres" {
		stmts = []string{
			`DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log`,
			`CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()`,
			`CREATE OR REPLACE FUNCTION audit_log_keep_recent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_log is append-only: DELETE of an entry younger than 30 days refused (entry %)', OLD.id
		USING ERRCODE = 'insufficient_privilege';
END
$$`,
			`DROP TRIGGER IF EXISTS audit_log_keep_recent ON audit_log`,
			`CREATE TRIGGER audit_log_keep_recent BEFORE DELETE ON audit_log
	FOR EACH ROW WHEN (OLD.at >= now() - interval '30 days') EXECUTE FUNCTION audit_log_keep_recent()`,
		}
	} else {
		// at is stored as "2006-01-02 15:04:05.999999999+00:00" (UTC),
		// which compares as text with datetime()'s "2006-01-02 15:04:05".
		stmts = []string{
			`DROP TRIGGER IF EXISTS audit_log_no_delete`,
			`CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
	WHEN OLD.at >= datetime('now', '-30 days')
	BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE of an entry younger than 30 days refused'); END`,
		}
	}
	for _, q := range stmts {
		if err := tx.Exec(q).Error; err != nil {
			return fmt.Errorf("letting audit_log be pruned: %w", err)
		}
	}
	return nil
}

// PruneAudit deletes at most limit audit entries recorded before before
// (the oldest first) and returns how many it deleted; call it again while
// it returns limit. before must be at least AuditMinRetention ago
// (ErrInvalid otherwise: the database would refuse); within an hour of
// that it is moved an hour back, so that the database's clock being a
// little behind this process's does not make the trigger refuse the
// batch.
func (s *Store) PruneAudit(ctx context.Context, before time.Time, limit int) (int64, error) {
	if time.Since(before) < AuditMinRetention {
		return 0, fmt.Errorf("%w: audit entries younger than %v are kept, asked to prune before %s", ErrInvalid, AuditMinRetention, before.UTC().Format(time.RFC3339))
	}
	if margin := time.Now().Add(-AuditMinRetention - time.Hour); before.After(margin) {
		before = margin
	}
	db := s.db.WithContext(ctx)
	res := db.Where("id IN (?)", db.Model(&AuditEntry{}).Select("id").Where("at < ?", utc(before)).Order("id").Limit(limit)).
		Delete(&AuditEntry{})
	if res.Error != nil {
		return 0, fmt.Errorf("pruning the audit log: %w", translate(res.Error))
	}
	return res.RowsAffected, nil
}
