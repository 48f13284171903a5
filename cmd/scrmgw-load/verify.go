package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// durabilityCheck compares what wrk had acknowledged with the inbox.
type durabilityCheck struct {
	Round int `json:"round"`
	Conns int `json:"conns"`
	// Sent and Acked count requests (positions in the cycle) over the
	// level's gateway runs, warm-up included; InFlight is Sent-Acked:
	// requests still unanswered when wrk stopped (or failed).
	Sent, Acked, InFlight int64
	// DistinctSent is how many different callbacks were sent.
	DistinctSent int64
	// AckedDistinctMin/Max bound how many different callbacks were
	// acknowledged (exact when the cycle did not wrap).
	AckedDistinctMin, AckedDistinctMax int64
	// Rows are the inbox rows of the channel; Foreign those whose key is
	// not among the sent callbacks; Missing the sent callbacks with no row.
	Rows, Foreign, Missing int64
	// Queued is the tasks waiting in asynq's inbox queues.
	Queued  int64  `json:"queued"`
	OK      bool   `json:"ok"`
	Summary string `json:"summary"`
}

// verify checks the inbox after a level: every acknowledged callback has
// exactly one row (the unique key makes more impossible; the count and
// key comparison check none is missing), and nothing else is there.
func (h *harness) verify(ctx context.Context, conns int, runs []*wrkResult) (*durabilityCheck, error) {
	n := int64(len(h.keys))
	chk := &durabilityCheck{Conns: conns}
	if len(runs) == 0 {
		return chk, nil
	}
	first := runs[0].Offset
	for _, r := range runs {
		chk.Sent += r.Sent
		chk.Acked += r.Acked()
	}
	chk.InFlight = chk.Sent - chk.Acked
	// The runs of a level continue one cycle: positions first .. first+Sent-1.
	sent := make([]bool, n)
	for p := first; p < first+chk.Sent; p++ {
		sent[p%n] = true
		if p-first >= n {
			break
		}
	}
	for _, s := range sent {
		if s {
			chk.DistinctSent++
		}
	}
	if chk.Sent <= n {
		// Every position is a different callback.
		chk.AckedDistinctMin, chk.AckedDistinctMax = chk.Acked, chk.Acked
	} else {
		// Each unanswered position can leave at most one callback
		// without an acknowledged delivery.
		chk.AckedDistinctMin, chk.AckedDistinctMax = max(n-chk.InFlight, 0), n
	}

	conn, err := pgx.Connect(ctx, h.dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	index := make(map[string]int, n)
	for i, k := range h.keys {
		index[k] = i
	}
	rows, err := conn.Query(ctx, "SELECT dedup_key FROM inbox_messages WHERE channel = 'wecom'")
	if err != nil {
		return nil, err
	}
	seen := make([]bool, n)
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return nil, err
		}
		chk.Rows++
		i, ok := index[k]
		if !ok || !sent[i] || seen[i] {
			chk.Foreign++
			continue
		}
		seen[i] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range sent {
		if sent[i] && !seen[i] {
			chk.Missing++
		}
	}
	if rdb, err := redisClient(h.redis); err == nil {
		for _, q := range []string{"default", "critical"} {
			l, _ := rdb.LLen(ctx, "asynq:{"+q+"}:pending").Result()
			chk.Queued += l
		}
		rdb.Close()
	}

	// Acknowledged ⊆ recorded ⊆ sent, and each recorded once.
	chk.OK = chk.Foreign == 0 && chk.Rows >= chk.AckedDistinctMin && chk.Rows <= chk.DistinctSent &&
		(chk.Sent <= n || chk.Missing == 0)
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests sent, %d acknowledged (%d in flight when wrk stopped or failed); ", chk.Sent, chk.Acked, chk.InFlight)
	if chk.Sent <= n {
		fmt.Fprintf(&b, "all distinct: %d callbacks acknowledged; inbox rows %d (= acknowledged + %d of the in-flight ones, committed after wrk stopped)",
			chk.Acked, chk.Rows, chk.Rows-chk.Acked)
	} else {
		fmt.Fprintf(&b, "cycle wrapped: all %d callbacks sent, %d..%d distinct acknowledged, %d redeliveries; inbox rows %d, missing %d",
			n, chk.AckedDistinctMin, chk.AckedDistinctMax, chk.Sent-n, chk.Rows, chk.Missing)
	}
	fmt.Fprintf(&b, ", rows not among the sent callbacks %d; asynq tasks waiting (one per commit and queue) %d", chk.Foreign, chk.Queued)
	if chk.OK {
		b.WriteString(": OK")
	} else {
		b.WriteString(": FAILED")
	}
	chk.Summary = b.String()
	return chk, nil
}
