package store

import (
	"context"
	"fmt"
	"time"

	"github.com/scrmgw/scrmgw/events"
	"gorm.io/gorm"
)

// schemaMigration records an applied migration.
type schemaMigration struct {
	ID        string `gorm:"primaryKey;size:100"`
	AppliedAt time.Time
}

func (schemaMigration) TableName() string { return "schema_migrations" }

// migration is one ordered schema change. Applied migrations are never
// edited: a later change is a new entry.
type migration struct {
	id string
	up func(tx *gorm.DB) error
}

var migrations = []migration{
	{id: "0001_initial", up: func(tx *gorm.DB) error { return tx.AutoMigrate(allModels...) }},
	{id: "0002_cursors", up: func(tx *gorm.DB) error { return tx.AutoMigrate(&Cursor{}) }},
	{id: "0003_contact_ways", up: func(tx *gorm.DB) error { return tx.AutoMigrate(&ContactWay{}) }},
	{id: "0004_workflows", up: migrateWorkflows},
	{id: "0005_guide_load", up: func(tx *gorm.DB) error { return tx.AutoMigrate(&Guide{}) }},
	{id: "0006_member_merges", up: func(tx *gorm.DB) error { return tx.AutoMigrate(&MemberMerge{}) }},
	{id: "0007_outbox_delivery", up: func(tx *gorm.DB) error { return tx.AutoMigrate(&OutboxMessage{}) }},
	{id: "0008_commerce", up: func(tx *gorm.DB) error {
		return tx.AutoMigrate(&RetailStore{}, &MemberIdentity{}, &EventSource{}, &Product{}, &Order{}, &OrderItem{}, &Refund{}, &MemberStats{},
			&CommissionLine{}, &Settlement{}, &SendAttempt{}, &WebhookEndpoint{})
	}},
	{id: "0009_member_stats_backfill", up: func(tx *gorm.DB) error {
		// Purchases logged before orders were kept: their times.
		return tx.Exec(`INSERT INTO member_stats (member_id, brand_id, orders, spent_cents, first_purchase_at, last_purchase_at)
			SELECT member_id, brand_id, COUNT(*), 0, MIN(occurred_at), MAX(occurred_at) FROM events
			WHERE type = ? AND member_id IS NOT NULL AND brand_id <> '' GROUP BY member_id, brand_id`, events.TypePurchaseCompleted).Error
	}},
	{id: "0010_handoffs", up: migrateHandoffs},
	{id: "0011_send_rules", up: func(tx *gorm.DB) error { return tx.AutoMigrate(&Member{}, &QuotaSend{}) }},
	{id: "0012_guide_points", up: func(tx *gorm.DB) error { return tx.AutoMigrate(&GuidePointsEntry{}, &CrossBrandOptIn{}) }},
	{id: "0013_coupons", up: func(tx *gorm.DB) error { return tx.AutoMigrate(&IssuedCoupon{}) }},
	{id: "0014_cross_brand_runs", up: func(tx *gorm.DB) error {
		// Earlier migrations create workflow_runs from today's model.
		if tx.Migrator().HasColumn(&WorkflowRun{}, "ViaBrandID") {
			return nil
		}
		return tx.Migrator().AddColumn(&WorkflowRun{}, "ViaBrandID")
	}},
	{id: "0015_send_outcomes", up: migrateSendOutcomes},
	// Handovers of a leaving guide's members, and the guide's remark on
	// bindings.
	{id: "0016_handovers", up: migrateHandovers},
	{id: "0017_task_reminders", up: migrateTaskReminders},
	// Scoped tokens (read-only, resources, expiry, last use) and the
	// append-only audit trail.
	{id: "0018_audit_token_scopes", up: migrateTokenScopes},
	{id: "0019_audit_log", up: migrateAuditLog},
	// Each brand's key for the member codes shown at the till.
	{id: "0020_retail_member_code_secrets", up: migrateMemberCodeSecrets},
	// Console sign-ins.
	{id: "0021_console_sessions", up: migrateConsole},
	// The console's funnel over a period.
	{id: "0022_console2_funnel", up: migrateFunnel},
	// A guide's ids on channels become rows, one per channel instance.
	{id: "0023_guide_identities", up: migrateGuideIdentities},
	// Coupon redemptions and whose message carried each coupon.
	{id: "0024_coupons_redemptions", up: migrateCouponRedemptions},
	// The settlements' status, and the automatic T+1 settlement's runs.
	{id: "0025_coupons_settlement_runs", up: migrateSettlementRuns},
	// Each brand's own profile (names, identities) and member erasures.
	{id: "0026_privacy_brand_profiles", up: migratePrivacy},
	// Every handover names the channel instance (WeCom corp) it runs on.
	{id: "0027_handover_instances", up: migrateHandoverInstances},
	// Audit entries older than privacy.audit_retention may be deleted
	// (never younger than 30 days).
	{id: "0028_audit_prune", up: migrateAuditPrune},
	// Indexes of the keyset lists and segments at 10M members.
	{id: "0029_scale_indexes", up: migrateScaleIndexes},
	// When a member last wrote on each of their channel ids (the
	// windows some channels send in).
	{id: "0030_identity_last_inbound", up: func(tx *gorm.DB) error {
		if tx.Migrator().HasColumn(&MemberIdentity{}, "LastInboundAt") {
			return nil
		}
		return tx.Migrator().AddColumn(&MemberIdentity{}, "LastInboundAt")
	}},
	// A WeChat UnionID is one identity whichever channel instance
	// reported it (adapters.UnionIDChannel): a second WeCom corp's
	// "wecom:<name>_unionid" becomes "wecom_unionid", unless the id is
	// there already (then it is dropped, as a copy).
	{id: "0031_unionid", up: func(tx *gorm.DB) error {
		if err := tx.Exec(`DELETE FROM member_identities WHERE channel LIKE 'wecom:%' AND channel LIKE '%_unionid'
			AND external_id IN (SELECT external_id FROM member_identities WHERE channel = 'wecom_unionid')`).Error; err != nil {
			return err
		}
		if err := tx.Exec(`DELETE FROM member_identities WHERE channel LIKE 'wecom:%' AND channel LIKE '%_unionid'
			AND id NOT IN (SELECT MIN(id) FROM member_identities WHERE channel LIKE 'wecom:%' AND channel LIKE '%_unionid' GROUP BY external_id)`).Error; err != nil {
			return err
		}
		return tx.Exec(`UPDATE member_identities SET channel = 'wecom_unionid' WHERE channel LIKE 'wecom:%' AND channel LIKE '%_unionid'`).Error
	}},
	// Store live sessions (their audience and orders) and the cloud
	// store's per-store assortment.
	{id: "0032_live_cloudstore", up: migrateLive},
	// The retention job finds run steps by when they finished.
	{id: "0033_retention_steps", up: migrateRetentionSteps},
	// Each channel instance's own tags (WeCom corp tags) as last read.
	{id: "0034_channel_tags", up: migrateChannelTags},
	// Customer groups (WeCom 客户群), their members and daily sends.
	{id: "0035_customer_groups", up: migrateCustomerGroups},
	// Moment tasks (WeCom 朋友圈) and who posted.
	{id: "0036_moment_tasks", up: migrateMomentTasks},
	// A contact way is unique per channel and state (a store's WeCom
	// code and its Official Account code share the state), and a
	// temporary code records when it expires.
	{id: "0037_contact_way_channels", up: migrateContactWayChannels},
	// Moment tasks read on a schedule: who can see the posts.
	{id: "0038_moment_results", up: migrateMomentResults},
	// Live sessions are edited (a revision announced again) and
	// cancelled.
	{id: "0039_live_edits", up: migrateLiveEdits},
	// Each step visit carries its run's brand, workflow and start time:
	// the funnel at millions of runs.
	{id: "0040_funnel_steps", up: migrateFunnelSteps},
	// When a group send began calling its channel: a retry whose
	// earlier attempt's answer was lost asks the channel first. Whose
	// task it was and whether the owner sent it.
	{id: "0041_group_send_attempts", up: migrateGroupSendAttempts},
	// Per-day funnel counters: deltas appended by statement triggers in
	// the writes they count, folded into totals by one periodic job; the
	// brand-wide funnel and the workflow list at millions of runs.
	{id: "0042_funnel_deltas", up: migrateFunnelDeltas},
	// The console at 1M members and 200,000 stores: a member's bindings
	// (ended ones too), a brand's settlements of a day and their
	// commission lines.
	{id: "0043_console_indexes", up: migrateConsoleIndexes},
	// The brand's member search by name reads one index: each
	// membership's lower-cased name, kept by triggers.
	{id: "0044_membership_search_name", up: migrateMembershipSearchName},
	// A run that ends withdraws its pending sends: their keys indexed.
	{id: "0045_outbox_pending_keys", up: migrateOutboxPendingKeys},
}

// migrateLockKey is the PostgreSQL advisory lock that serialises replicas
// migrating at the same time.
const migrateLockKey = 0x5c7a_0001

// Migrate applies every migration not yet applied, in order. It is safe to
// run from several replicas at once and returns the ids it applied.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	var applied []string
	err := s.db.WithContext(ctx).Connection(func(pinned *gorm.DB) error {
		// Each statement gets a fresh session on the pinned connection.
		conn := pinned.Session(&gorm.Session{NewDB: true})
		if s.dialect == "postgres" {
			if err := conn.Exec("SELECT pg_advisory_lock(?)", migrateLockKey).Error; err != nil {
				return fmt.Errorf("taking migration lock: %w", err)
			}
			defer conn.Exec("SELECT pg_advisory_unlock(?)", migrateLockKey)
		}
		if err := conn.AutoMigrate(&schemaMigration{}); err != nil {
			return fmt.Errorf("creating schema_migrations: %w", err)
		}
		var done []schemaMigration
		if err := conn.Find(&done).Error; err != nil {
			return fmt.Errorf("reading schema_migrations: %w", err)
		}
		have := make(map[string]bool, len(done))
		for _, m := range done {
			have[m.ID] = true
		}
		for _, m := range migrations {
			if have[m.id] {
				continue
			}
			err := conn.Transaction(func(tx *gorm.DB) error {
				if err := m.up(tx.Session(&gorm.Session{NewDB: true})); err != nil {
					return err
				}
				return tx.Create(&schemaMigration{ID: m.id, AppliedAt: time.Now().UTC()}).Error
			})
			if err != nil {
				return fmt.Errorf("applying migration %s: %w", m.id, err)
			}
			applied = append(applied, m.id)
		}
		return nil
	})
	return applied, err
}
