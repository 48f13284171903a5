// Package ledger computes the commission lines of purchases and refunds
// from the brands' rules and settles them per store and day (T+1).
//
// A purchase's every item line earns each party (the attributed guide,
// the store of purchase, the store's distributor) what the first rule
// matching the item's category gives: a percentage of the line's amount
// or a fixed amount per unit. The store always gets a line, with a zero
// amount when no rule pays it, so that a day's store lines add up to its
// net sales (the settlement's reconciliation). A refund writes clawback
// lines that reverse, per party and item line, the share of the
// commission its units carried; the last refund of a line reverses
// exactly what is left, so a fully refunded order nets to zero.
//
// GuidePoints awards guides points for bindings, purchases and completed
// tasks, and claws them back on refunds, from the brands' points rules.
//
// Imported by commerce and the wiring. It imports store, the commerce
// event schema (adapters/webhook) and the workflow language's event names
// (workflows); never inbox or commerce, which feed it.
package ledger
