package ledger

import "time"

// SetNow sets the clock of g, for the external tests.
func (g *GuidePoints) SetNow(now func() time.Time) { g.now = now }
