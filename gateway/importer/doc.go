// Package importer loads brands' existing stores, guides and CRM members
// from CSV files (scrmgw import). Every row is validated first and every
// problem reported with its line number; by default nothing is written when
// any row is bad, with SkipInvalid the good rows are written and the bad
// ones reported. Writes are upserts, so an import can be run again.
//
// Imported only by the wiring (cmd/scrmgw import). It imports store and
// the commerce event schema (adapters/webhook); purchases are imported
// through commerce, which the command hands it.
package importer
