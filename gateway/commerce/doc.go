// Package commerce turns the brands' commerce events (CloudEvents of
// sign-ups, purchases, refunds and visits, from the webhook channel or the
// CSV import) into members, orders, refunds, commission lines and the
// event log, and issues the coupons workflows give (CouponIssuer, from the
// coupon batches file).
//
// Imported by the wiring (and, in tests, by ledger and importer). It
// imports inbox (its handler is registered on the Processor), ledger,
// assign, workflows/engine (the coupon types), templates, adapters and
// store.
package commerce
