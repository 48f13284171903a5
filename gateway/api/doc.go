// Package api is scrmgw's admin REST API under /api/v1: brands, stores,
// guides, members and API tokens, guarded by bearer tokens. The admin token
// sees everything; a brand-scoped token sees only its brand's data (other
// brands' records answer 404) and may write only what belongs to its brand
// alone. Errors have one stable shape:
//
//	{"error": {"code": "invalid_argument", "message": "...", "details": [{"row": 3, "field": "lat", "message": "..."}]}}
//
// Imported only by the wiring (cmd/scrmgw). It imports assign, store,
// the workflow language and the engine's types (workflows,
// workflows/engine; the engine itself is reached through the Workflows
// interface, which the wiring satisfies) and the commerce event schema
// (adapters/webhook).
package api
