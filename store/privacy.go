package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// MemberErasure records that a member's part with a brand (BrandID), or
// the whole person (BrandID ""), was erased: when, by whom, and what was
// removed (counts per table). It is the erasure's idempotency record (a
// second erasure answers it again) and the outbox sender's guard (no send
// of the erased part is claimed). It holds only pseudonymous ids.
type MemberErasure struct {
	ID       int64  `gorm:"primaryKey;autoIncrement" json:"-"`
	MemberID int64  `gorm:"not null;uniqueIndex:idx_member_erasure" json:"member_id"`
	BrandID  string `gorm:"size:64;not null;uniqueIndex:idx_member_erasure" json:"brand,omitempty"`
	By       string `gorm:"size:200;not null" json:"-"`
	// Removed is the JSON of Erasure.Removed.
	Removed  string    `gorm:"type:text;not null" json:"-"`
	ErasedAt time.Time `gorm:"not null" json:"erased_at"`
}

// Erasure is what EraseMember did.
type Erasure struct {
	MemberID int64 `json:"member_id"`
	// Brand is the brand whose part was erased; "" for the whole person.
	Brand string `json:"brand,omitempty"`
	// Person is true when the person row was anonymised and their
	// identities deleted (no brand was left, or the admin erased them).
	Person   bool      `json:"person_erased"`
	ErasedAt time.Time `json:"erased_at"`
	// Withdraw are the erased part's message tasks that their guides had
	// not sent: recorded failed ("withdrawn: member erased", nothing is
	// delivered to an erased member), for the caller to stop at their
	// channel (outbox.Sender.WithdrawErased). Not kept: a repeated
	// erasure answers none.
	Withdraw []Withdrawal `json:"-"`
	// Removed counts the rows deleted or anonymised, by table.
	Removed map[string]int64 `json:"removed"`
}

// ErasedReason ends the runs of an erased member and fails their sends.
const ErasedReason = "erased"

// EraseMember erases a member's personal data: with a brand, that brand's
// part (its membership, bindings, tags, consent, cross-brand answers,
// identities collected under it, the personal attributes of its events,
// the texts of its inbox and outbox rows and the channel's answers to
// them, its handoffs' and guide tasks' texts, its handovers' channel ids
// and reasons, its run steps' outcomes and errors), and the person too
// when no brand is left; with brand "" (the
// admin), every brand's part and the person: the row is anonymised
// (phone, name, time zone), their identities deleted. Ledgers (orders,
// points, coupons, commissions, send counts) keep their amounts, dates and
// the pseudonymous member id. The member's active runs end (reason
// "erased") and their unsent messages fail, in the same transaction; the
// outbox claim refuses rows of an erased part (ClaimOutbox), so nothing is
// sent after the erasure commits. Erasing again answers the first
// erasure's record. A member unknown to brand is ErrNotFound.
func (s *Store) EraseMember(ctx context.Context, id int64, brand, by string) (*Erasure, error) {
	var out *Erasure
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Follow merges to the person.
		var m Member
		for hop := 0; ; hop++ {
			m = Member{}
			if err := tx.Where("id = ?", id).Take(&m).Error; err != nil {
				return translate(err)
			}
			if m.MergedInto == nil {
				break
			}
			if hop == maxMergeHops {
				return fmt.Errorf("member %d: merge chain longer than %d", id, maxMergeHops)
			}
			id = *m.MergedInto
		}
		if done, err := erasureRecord(tx, id, brand); err != nil || done != nil {
			out = done
			return err
		}
		if m.ErasedAt != nil {
			if brand == "" {
				return fmt.Errorf("member %d erased without a record", id)
			}
			return ErrNotFound
		}
		// The member and every member merged into them: their rows were
		// moved, but the merged rows keep what they had (a name).
		ids := []int64{id}
		for from := []int64{id}; len(from) > 0; {
			var more []int64
			if err := tx.Model(&Member{}).Where("merged_into IN ?", from).Pluck("id", &more).Error; err != nil {
				return translate(err)
			}
			ids, from = append(ids, more...), more
		}
		var brands []string
		if err := tx.Model(&Membership{}).Where("member_id = ?", id).Order("brand_id").Pluck("brand_id", &brands).Error; err != nil {
			return translate(err)
		}
		if brand != "" {
			found := false
			for _, b := range brands {
				found = found || b == brand
			}
			if !found {
				return ErrNotFound
			}
			brands = []string{brand}
		}
		at := time.Now().UTC().Truncate(time.Microsecond) // as the database keeps it
		e := &Erasure{MemberID: id, Brand: brand, ErasedAt: at, Removed: map[string]int64{}}
		for _, b := range brands {
			if err := s.eraseBrandPart(tx, ids, b, at, e.Removed); err != nil {
				return fmt.Errorf("erasing member %d's part with %s: %w", id, b, err)
			}
		}
		var left int64
		if err := tx.Model(&Membership{}).Where("member_id = ?", id).Count(&left).Error; err != nil {
			return translate(err)
		}
		if left == 0 {
			if err := s.erasePerson(tx, ids, at, e.Removed); err != nil {
				return fmt.Errorf("erasing member %d: %w", id, err)
			}
			e.Person = true
		}
		if err := withdrawErased(tx, ids, brands, e); err != nil {
			return fmt.Errorf("erasing member %d: pending sends: %w", id, err)
		}
		// One record per brand erased answers a later erasure by that
		// brand; the person's record (brand "") one by the admin.
		for _, b := range brands {
			part := *e
			part.Brand = b
			if err := saveErasure(tx, &part, by); err != nil {
				return err
			}
		}
		if e.Person {
			person := *e
			person.Brand = ""
			if err := saveErasure(tx, &person, by); err != nil {
				return err
			}
		}
		out = e
		return nil
	})
	return out, err
}

func erasureJSON(e *Erasure) string {
	b, _ := json.Marshal(struct {
		Person  bool             `json:"person"`
		Removed map[string]int64 `json:"removed"`
	}{e.Person, e.Removed})
	return string(b)
}

func saveErasure(tx *gorm.DB, e *Erasure, by string) error {
	return translate(tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&MemberErasure{
		MemberID: e.MemberID, BrandID: e.Brand, By: truncate(by, 200), Removed: erasureJSON(e), ErasedAt: e.ErasedAt}).Error)
}

// erasureRecord returns the recorded erasure of (id, brand), or nil.
func erasureRecord(tx *gorm.DB, id int64, brand string) (*Erasure, error) {
	var rec MemberErasure
	err := tx.Where("member_id = ? AND brand_id = ?", id, brand).Take(&rec).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(err)
	}
	var body struct {
		Person  bool             `json:"person"`
		Removed map[string]int64 `json:"removed"`
	}
	if err := json.Unmarshal([]byte(rec.Removed), &body); err != nil {
		return nil, fmt.Errorf("reading erasure of member %d: %w", id, err)
	}
	return &Erasure{MemberID: id, Brand: brand, Person: body.Person, ErasedAt: rec.ErasedAt.UTC(), Removed: body.Removed}, nil
}

// count adds a statement's rows to removed[table].
func count(removed map[string]int64, table string, res *gorm.DB) error {
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected > 0 {
		removed[table] += res.RowsAffected
	}
	return nil
}

// emptyPayload is what an erased or expired payload becomes.
var emptyPayload = []byte("{}")

func (s *Store) eraseBrandPart(tx *gorm.DB, ids []int64, brand string, at time.Time, removed map[string]int64) error {
	// Current bindings release their guide's capacity.
	var current []Binding
	if err := tx.Where("member_id IN ? AND brand_id = ? AND ended_at IS NULL", ids, brand).Find(&current).Error; err != nil {
		return translate(err)
	}
	for _, b := range current {
		if err := tx.Model(&Guide{}).Where("id = ? AND bound_count > 0", b.GuideID).
			Update("bound_count", gorm.Expr("bound_count - 1")).Error; err != nil {
			return translate(err)
		}
	}
	steps := []struct {
		table string
		run   func() *gorm.DB
	}{
		{"bindings", func() *gorm.DB { return tx.Where("member_id IN ? AND brand_id = ?", ids, brand).Delete(&Binding{}) }},
		{"memberships", func() *gorm.DB { return tx.Where("member_id IN ? AND brand_id = ?", ids, brand).Delete(&Membership{}) }},
		{"member_tags", func() *gorm.DB { return tx.Where("member_id IN ? AND brand_id = ?", ids, brand).Delete(&MemberTag{}) }},
		{"member_consent", func() *gorm.DB {
			return tx.Where("member_id IN ? AND brand_id = ?", ids, brand).Delete(&MemberConsent{})
		}},
		{"member_cross_brand", func() *gorm.DB {
			return tx.Where("member_id IN ? AND brand_id = ?", ids, brand).Delete(&CrossBrandOptIn{})
		}},
		{"handovers", func() *gorm.DB {
			return tx.Model(&Handover{}).Where("member_id IN ? AND brand_id = ? AND (external_userid <> '' OR reason <> '')", ids, brand).
				Updates(erasedHandover)
		}},
		{"handoffs", func() *gorm.DB {
			return tx.Model(&Handoff{}).Where("member_id IN ? AND brand_id = ?", ids, brand).Updates(map[string]any{
				"member_name": "", "member_tail": "", "member_address": "", "member_reply_to": ""})
		}},
		{"handoffs_ended", func() *gorm.DB {
			return tx.Model(&Handoff{}).Where("member_id IN ? AND brand_id = ? AND state = ?", ids, brand, HandoffOpen).
				Updates(map[string]any{"state": HandoffEnded, "end_reason": ErasedReason, "end_key": "erase", "ended_at": at, "notified_at": at})
		}},
		{"guide_tasks", func() *gorm.DB {
			return tx.Model(&GuideTask{}).Where("member_id IN ? AND brand_id = ?", ids, brand).Updates(map[string]any{"title": "-", "note": ""})
		}},
		{"guide_tasks_cancelled", func() *gorm.DB {
			return tx.Model(&GuideTask{}).Where("member_id IN ? AND brand_id = ? AND state = ?", ids, brand, GuideTaskOpen).
				Updates(map[string]any{"state": GuideTaskCancelled, "completed_at": at})
		}},
	}
	for _, st := range steps {
		if err := count(removed, st.table, st.run()); err != nil {
			return fmt.Errorf("%s: %w", st.table, err)
		}
	}
	if err := anonymiseLiveAudience(tx, tx.Where("member_id IN ? AND brand_id = ?", ids, brand), removed); err != nil {
		return fmt.Errorf("live audience: %w", err)
	}
	if err := s.endRunsErased(tx, ids, []string{brand}, at, removed); err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	if err := scrubRunSteps(tx, tx.Model(&WorkflowRun{}).Select("id").Where("member_id IN ? AND brand_id = ?", ids, brand), removed); err != nil {
		return fmt.Errorf("run steps: %w", err)
	}
	if err := eraseOutbox(tx, tx.Where("member_id IN ? AND brand_id = ?", ids, brand), at, removed); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if err := stripEvents(tx, tx.Where("member_id IN ? AND brand_id = ?", ids, brand), removed); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	var idents []MemberIdentity
	if err := tx.Where("member_id IN ? AND (brand_id = ? OR channel = ?)", ids, brand, "crm:"+brand).Find(&idents).Error; err != nil {
		return translate(err)
	}
	if err := s.eraseInbox(tx, idents, removed); err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	if err := eraseGroupMembers(tx, ids, idents, brand, at, removed); err != nil {
		return fmt.Errorf("customer groups: %w", err)
	}
	if err := eraseMomentCustomers(tx, idents, brand, removed); err != nil {
		return fmt.Errorf("moment tasks: %w", err)
	}
	return count(removed, "member_identities", tx.Where("member_id IN ? AND (brand_id = ? OR channel = ?)", ids, brand, "crm:"+brand).
		Delete(&MemberIdentity{}))
}

func (s *Store) erasePerson(tx *gorm.DB, ids []int64, at time.Time, removed map[string]int64) error {
	// What is left with no brand, or with brands the person has no
	// membership of (consent for all brands, history).
	for _, st := range []struct {
		table string
		res   *gorm.DB
	}{
		{"bindings", tx.Where("member_id IN ? AND ended_at IS NOT NULL", ids).Delete(&Binding{})},
		{"member_tags", tx.Where("member_id IN ?", ids).Delete(&MemberTag{})},
		{"member_consent", tx.Where("member_id IN ?", ids).Delete(&MemberConsent{})},
		{"member_cross_brand", tx.Where("member_id IN ?", ids).Delete(&CrossBrandOptIn{})},
		{"handovers", tx.Model(&Handover{}).Where("member_id IN ? AND (external_userid <> '' OR reason <> '')", ids).Updates(erasedHandover)},
		{"handoffs", tx.Model(&Handoff{}).Where("member_id IN ? AND (member_name <> '' OR member_address <> '')", ids).
			Updates(map[string]any{"member_name": "", "member_tail": "", "member_address": "", "member_reply_to": ""})},
		{"guide_tasks", tx.Model(&GuideTask{}).Where("member_id IN ? AND title <> '-'", ids).Updates(map[string]any{"title": "-", "note": ""})},
	} {
		if err := count(removed, st.table, st.res); err != nil {
			return fmt.Errorf("%s: %w", st.table, err)
		}
	}
	if err := anonymiseLiveAudience(tx, tx.Where("member_id IN ?", ids), removed); err != nil {
		return fmt.Errorf("live audience: %w", err)
	}
	if err := s.endRunsErased(tx, ids, nil, at, removed); err != nil {
		return err
	}
	if err := scrubRunSteps(tx, tx.Model(&WorkflowRun{}).Select("id").Where("member_id IN ?", ids), removed); err != nil {
		return fmt.Errorf("run steps: %w", err)
	}
	if err := eraseOutbox(tx, tx.Where("member_id IN ?", ids), at, removed); err != nil {
		return err
	}
	if err := stripEvents(tx, tx.Where("member_id IN ?", ids), removed); err != nil {
		return err
	}
	var idents []MemberIdentity
	if err := tx.Where("member_id IN ?", ids).Find(&idents).Error; err != nil {
		return translate(err)
	}
	if err := s.eraseInbox(tx, idents, removed); err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	if err := eraseGroupMembers(tx, ids, idents, "", at, removed); err != nil {
		return fmt.Errorf("customer groups: %w", err)
	}
	if err := eraseMomentCustomers(tx, idents, "", removed); err != nil {
		return fmt.Errorf("moment tasks: %w", err)
	}
	if err := count(removed, "member_identities", tx.Where("member_id IN ?", ids).Delete(&MemberIdentity{})); err != nil {
		return err
	}
	return count(removed, "members", tx.Model(&Member{}).Where("id IN ?", ids).Updates(map[string]any{
		"name": "", "phone_hash": nil, "phone_enc": nil, "phone_tail": "", "time_zone": "", "erased_at": at, "updated_at": at}))
}

// endRunsErased ends the active runs of the members (of brands, or all)
// with reason "erased", cancelling their open steps.
func (s *Store) endRunsErased(tx *gorm.DB, ids []int64, brands []string, at time.Time, removed map[string]int64) error {
	q := tx.Model(&WorkflowRun{}).Where("member_id IN ? AND state = ?", ids, RunActive)
	if brands != nil {
		q = q.Where("brand_id IN ?", brands)
	}
	var runIDs []int64
	if err := q.Pluck("id", &runIDs).Error; err != nil {
		return translate(err)
	}
	if len(runIDs) == 0 {
		return nil
	}
	if err := count(removed, "workflow_runs", tx.Model(&WorkflowRun{}).Where("id IN ? AND state = ?", runIDs, RunActive).
		Updates(endRunColumns(RunExited, ErasedReason, at))); err != nil {
		return err
	}
	return translate(tx.Model(&RunStep{}).Where("run_id IN ? AND state IN ?", runIDs, openStepStates).
		Updates(map[string]any{"state": StepCancelled, "finished_at": at, "outcome": ErasedReason}).Error)
}

// anonymiseLiveAudience unlinks the live audience rows q selects from
// their member, keeping what the sessions' funnels count: the member id
// becomes a random negative number (no member has one, and nothing
// derives it from the member), and each time set (announced, joined,
// left, ordered) becomes the session's start, so the row tells neither
// who nor when; the store and guide credited stay. The member's orders
// stay counted in live_orders, a ledger like orders.
func anonymiseLiveAudience(tx *gorm.DB, q *gorm.DB, removed map[string]int64) error {
	var rows []LiveAudience
	if err := q.Session(&gorm.Session{}).Model(&LiveAudience{}).Where("member_id > 0").Find(&rows).Error; err != nil {
		return translate(err)
	}
	starts := "(SELECT starts_at FROM live_sessions WHERE live_sessions.id = live_audiences.session_id)"
	upd := map[string]any{}
	for _, col := range []string{"invited_at", "joined_at", "left_at", "ordered_at"} {
		upd[col] = gorm.Expr("CASE WHEN " + col + " IS NULL THEN NULL ELSE " + starts + " END")
	}
	for _, a := range rows {
		anon, err := anonymousID()
		if err != nil {
			return err
		}
		upd["member_id"] = anon
		if err := count(removed, "live_audiences", tx.Model(&LiveAudience{}).
			Where("session_id = ? AND member_id = ?", a.SessionID, a.MemberID).Updates(upd)); err != nil {
			return err
		}
	}
	return nil
}

// eraseGroupMembers unlinks the member's rows in customer groups (of
// brand's groups; "" every group): those matched to the member, and those
// of one of the identities erased. The row stays for the group's counts,
// but its channel id becomes "erased:" and random hex, its name is
// emptied, its member unset, and it is marked left (a later sync of a
// group the person is still in finds them as a contact who joined).
func eraseGroupMembers(tx *gorm.DB, ids []int64, idents []MemberIdentity, brand string, at time.Time, removed map[string]int64) error {
	ext := []string{}
	for _, id := range idents {
		ext = append(ext, id.ExternalID)
	}
	q := tx.Model(&CustomerGroupMember{}).Where("NOT guide AND (member_id IN ? OR user_id IN ?)", ids, ext)
	if brand != "" {
		q = q.Where("chat_id IN (?)", tx.Model(&CustomerGroup{}).Select("chat_id").
			Where("brand_id = ? AND customer_groups.channel = customer_group_members.channel", brand))
	}
	var rows []CustomerGroupMember
	if err := q.Find(&rows).Error; err != nil {
		return translate(err)
	}
	for _, r := range rows {
		var b [12]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("drawing an anonymous id: %w", err)
		}
		left := at
		if r.LeftAt != nil {
			left = *r.LeftAt
		}
		if err := count(removed, "customer_group_members", tx.Model(&CustomerGroupMember{}).
			Where("channel = ? AND chat_id = ? AND user_id = ?", r.Channel, r.ChatID, r.UserID).
			Updates(map[string]any{"user_id": fmt.Sprintf("erased:%x", b), "name": "", "member_id": nil, "left_at": left})); err != nil {
			return err
		}
	}
	return nil
}

// eraseMomentCustomers unlinks the erased identities from the moment
// tasks (of brand; "" every brand) whose posts they could see: each row
// stays for the task's reach, its id "erased:" and random hex.
func eraseMomentCustomers(tx *gorm.DB, idents []MemberIdentity, brand string, removed map[string]int64) error {
	for _, mi := range idents {
		tasks := tx.Model(&MomentTask{}).Select("id").Where("channel = ?", mi.Channel)
		if brand != "" {
			tasks = tasks.Where("brand_id = ?", brand)
		}
		var rows []MomentTaskCustomer
		if err := tx.Where("external_id = ? AND task_id IN (?)", mi.ExternalID, tasks).Find(&rows).Error; err != nil {
			return translate(err)
		}
		for _, r := range rows {
			var b [12]byte
			if _, err := rand.Read(b[:]); err != nil {
				return fmt.Errorf("drawing an anonymous id: %w", err)
			}
			if err := count(removed, "moment_task_customers", tx.Model(&MomentTaskCustomer{}).
				Where("task_id = ? AND guide = ? AND external_id = ?", r.TaskID, r.Guide, r.ExternalID).
				Update("external_id", fmt.Sprintf("erased:%x", b))); err != nil {
				return err
			}
		}
	}
	return nil
}

// anonymousID is a random negative id: what an anonymised row names
// instead of its member.
func anonymousID() (int64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("drawing an anonymous id: %w", err)
	}
	return -1 - int64(binary.BigEndian.Uint64(b[:])>>2), nil
}

// erasedHandover clears what a handover holds of the member: their
// channel id, and the channel's answer (which may name them); the state,
// the guides and the channel's error code stay for the handover counts.
var erasedHandover = map[string]any{"external_userid": "", "reason": ""}

// scrubRunSteps clears the free text of the steps of the runs runs
// selects (a subquery of run ids): the outcome (a sentence that may quote
// a channel's answer or a message id) becomes "erased" and the last error
// is emptied. What the funnel and the workflow stats count stays: the
// step, its state, reason code, attempts, failures, outbox key and times.
func scrubRunSteps(tx *gorm.DB, runs *gorm.DB, removed map[string]int64) error {
	return count(removed, "run_steps", tx.Model(&RunStep{}).
		Where("run_id IN (?) AND ((outcome <> '' AND outcome <> ?) OR error <> '')", runs, ErasedReason).
		Updates(map[string]any{"outcome": gorm.Expr("CASE WHEN outcome = '' THEN '' ELSE ? END", ErasedReason), "error": ""}))
}

// erasedLastError replaces the channel's last answer about a message of
// an erased member (it may name the recipient).
const erasedLastError = "member erased"

// Withdrawal is a sent message whose delivery was pending (a message task
// its guide had not sent) when its member was erased: what its channel
// needs to stop it.
type Withdrawal struct {
	ID         int64
	Channel    string
	ExternalID string
}

// ErasedWithdrawn is the delivery detail of a message task withdrawn
// because its member was erased.
const ErasedWithdrawn = "withdrawn: member erased"

// withdrawErased records the erased part's pending deliveries failed (a
// check would find no recipient in their emptied payload) and lists them
// in e.Withdraw, for the caller to stop at their channels.
func withdrawErased(tx *gorm.DB, ids []int64, brands []string, e *Erasure) error {
	q := func() *gorm.DB {
		q := tx.Model(&OutboxMessage{}).Where("member_id IN ? AND state = ? AND delivery = ?", ids, OutboxSent, "pending")
		if !e.Person {
			q = q.Where("brand_id IN ?", brands)
		}
		return q
	}
	var ws []Withdrawal
	if err := q().Select("id, channel, external_id").Order("id").Find(&ws).Error; err != nil {
		return translate(err)
	}
	if len(ws) == 0 {
		return nil
	}
	e.Withdraw = ws
	return count(e.Removed, "outbox_withdrawn", q().Updates(map[string]any{"delivery": "failed", "delivery_detail": ErasedWithdrawn, "updated_at": e.ErasedAt}))
}

// eraseOutbox fails the unsent messages of q (a scope on outbox rows) and
// empties every one's payload and recipient.
func eraseOutbox(tx *gorm.DB, q *gorm.DB, at time.Time, removed map[string]int64) error {
	if err := count(removed, "outbox_unsent", q.Session(&gorm.Session{}).Model(&OutboxMessage{}).
		Where("state IN ?", []string{OutboxPending, OutboxSending}).
		Updates(map[string]any{"state": OutboxFailed, "failure": ErasedReason, "last_error": erasedLastError, "updated_at": at})); err != nil {
		return err
	}
	// The channel's answers may name the recipient.
	if err := count(removed, "send_attempts", tx.Model(&SendAttempt{}).Where("error <> ''").
		Where("outbox_id IN (?)", q.Session(&gorm.Session{}).Model(&OutboxMessage{}).Select("id")).Update("error", "")); err != nil {
		return err
	}
	return count(removed, "outbox_messages", q.Session(&gorm.Session{}).Model(&OutboxMessage{}).
		Where("recipient <> '' OR "+lengthOver("payload", 2)+" OR (last_error <> '' AND last_error <> ?)", erasedLastError).
		Updates(map[string]any{"payload": emptyPayload, "recipient": "", "delivery_detail": "", "updated_at": at,
			"last_error": gorm.Expr("CASE WHEN last_error IS NULL OR last_error = '' THEN last_error ELSE ? END", erasedLastError)}))
}

// lengthOver is a portable "length(col) > n" (bytea and blob alike).
func lengthOver(col string, n int) string { return fmt.Sprintf("length(%s) > %d", col, n) }

// stripEvents replaces the payloads of the events q selects with their
// non-personal attributes (StripAttributes).
func stripEvents(tx *gorm.DB, q *gorm.DB, removed map[string]int64) error {
	var evs []Event
	if err := q.Session(&gorm.Session{}).Model(&Event{}).Select("id", "payload").Find(&evs).Error; err != nil {
		return translate(err)
	}
	for _, e := range evs {
		stripped := StripAttributes(e.Payload)
		if stripped == e.Payload {
			continue
		}
		if err := count(removed, "events", tx.Model(&Event{}).Where("id = ?", e.ID).Update("payload", stripped)); err != nil {
			return err
		}
	}
	return nil
}

// eraseInbox empties the inbox rows that carry one of the identities (a
// member's messages and contact events name their sender's id).
func (s *Store) eraseInbox(tx *gorm.DB, idents []MemberIdentity, removed map[string]int64) error {
	for _, id := range idents {
		if len(id.ExternalID) < 6 {
			continue // too short to find without false matches
		}
		cond := "(instr(payload, CAST(? AS BLOB)) > 0 OR instr(dedup_key, ?) > 0)"
		if s.dialect == "postgres" {
			cond = "(position(convert_to(?, 'UTF8') in payload) > 0 OR strpos(dedup_key, ?) > 0)"
		}
		// A contact event's dedup key names the member's id: it becomes
		// the row's id (a redelivery this late is not expected).
		if err := count(removed, "inbox_messages", tx.Model(&InboxMessage{}).Where(cond, id.ExternalID, id.ExternalID).
			Updates(map[string]any{"payload": emptyPayload, "state": gorm.Expr("CASE WHEN state = ? THEN ? ELSE state END", InboxPending, InboxDone),
				"last_error": "", "dedup_key": gorm.Expr("'erased:' || CAST(id AS " + s.textType() + ")")})); err != nil {
			return err
		}
	}
	return nil
}

// keptAttributes are event attributes kept when a payload is stripped of
// personal data: ids, amounts and codes that ledgers and statistics need.
var keptAttributes = map[string]bool{
	"order_id": true, "store_id": true, "guide_id": true, "currency": true, "channel": true,
	"sku": true, "sku_id": true, "product_id": true, "coupon": true, "batch": true, "workflow": true,
	"reason": true, "level": true, "source": true, "kind": true, "attribution": true,
}

// StripAttributes returns a JSON object payload with only its numbers,
// booleans and keptAttributes (ids and codes; arrays and objects of such
// recursively), and every other string (names, texts, addresses, phone
// numbers) removed; anything that is not a JSON object becomes "{}".
func StripAttributes(payload string) string {
	if payload == "" || payload == "{}" {
		return payload
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(payload), &v); err != nil {
		return "{}"
	}
	b, _ := json.Marshal(stripObject(v))
	return string(b)
}

func stripObject(v map[string]any) map[string]any {
	out := make(map[string]any, len(v))
	for k, x := range v {
		if y, ok := stripValue(k, x); ok {
			out[k] = y
		}
	}
	return out
}

func stripValue(key string, x any) (any, bool) {
	switch t := x.(type) {
	case float64, bool, nil:
		return t, true
	case string:
		return t, keptAttributes[key]
	case map[string]any:
		return stripObject(t), true
	case []any:
		out := make([]any, 0, len(t))
		for _, y := range t {
			if z, ok := stripValue(key, y); ok {
				out = append(out, z)
			}
		}
		return out, true
	}
	return nil, false
}

// erasedOutboxGuard is the condition that an outbox row's member part was
// erased (ClaimOutbox refuses such rows).
const erasedOutboxGuard = `member_id IS NOT NULL AND EXISTS (SELECT 1 FROM member_erasures e
	WHERE e.member_id = outbox_messages.member_id AND (e.brand_id = '' OR e.brand_id = outbox_messages.brand_id))`

// textType is the SQL type a number is cast to for concatenation.
func (s *Store) textType() string {
	if s.dialect == "postgres" {
		return "text"
	}
	return "TEXT"
}
