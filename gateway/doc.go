// Package gateway holds nothing itself: its sub-packages are the product's
// core, what cmd/scrmgw wires from the configuration and runs.
//
//	gateway/api        the admin REST API (/api/v1)
//	gateway/importer   CSV import of stores, guides, members and orders
//	gateway/httpserve  the HTTP edge: refusal rate limiting, metrics, metrics token
//	gateway/commerce   commerce events into members, orders, refunds, commissions; coupons
//	gateway/ledger     commission lines and settlement; guide points
//	gateway/inbox      durable inbox: recorder, processor, contact and message handlers, sweep
//	gateway/outbox     durable outbox: sender, send rates, recovery, delivery checks
//	gateway/queue      the asynq queues, queueing a row once, retry back-off (queuetest: a fake)
//	gateway/assign     nearest-store assignment, bulk assignment, guides leaving, handovers
//
// Who may import whom: floors, top to bottom; a package imports only
// packages on floors below its own (arrows point down, nothing points
// back up, and packages of one floor do not import each other):
//
//	1  cmd/scrmgw (flags, subcommands), cmd/scrmgw/internal/app (wiring, run loops)
//	2  gateway/api, gateway/importer, gateway/httpserve
//	3  gateway/commerce
//	4  gateway/inbox
//	5  gateway/outbox, gateway/ledger, gateway/assign, bots, workflows/engine
//	6  gateway/queue, workflows, adapters/wecom, adapters/dingtalk, adapters/webhook
//	7  adapters, templates, store (store/geo)
//
// Only the wiring imports configs and the channel packages: a gateway
// package takes plain values, and what it needs of a channel it declares
// as a small interface the wiring satisfies (assign.Transferer,
// assign.ResignedTransferer, api.ContactWayMaker) or reaches through
// adapters.Channel; what differs by channel (the kinds it sends, reaching
// a member through their guide, its send rate) it reads from the
// channels' specs (adapters.Specs, the Registry) and names no channel. The one exception is the commerce event schema, which
// still lives in adapters/webhook (api, commerce, importer and ledger
// import it; issue 16 moves it out). bots and the workflow engine reach
// the gateway only through interfaces the wiring satisfies (bots.Outbox,
// the engine's sender, api.Workflows).
package gateway
