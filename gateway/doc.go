// Package gateway holds nothing itself: its sub-packages are the product's
// core, what cmd/scrmgw wires from the configuration and runs.
//
//	gateway/console    the web console (/console/): server-rendered pages on the API's auth, the store and the engine
//	gateway/api        the admin REST API (/api/v1)
//	gateway/importer   CSV import of stores, guides, members and orders
//	gateway/httpserve  the HTTP edge: refusal rate limiting, metrics, metrics token
//	gateway/commerce   commerce events into members, orders, refunds, commissions; coupons
//	gateway/ledger     commission lines and settlement; guide points
//	gateway/inbox      durable inbox: recorder, processor, contact and message handlers, sweep
//	gateway/outbox     durable outbox: sender, send rates, recovery, delivery checks
//	gateway/queue      the asynq queues, queueing a row once, retry back-off (queuetest: a fake)
//	gateway/assign     nearest-store assignment, bulk assignment, guides leaving, handovers
//	gateway/audit      the audit trail's buffered batch writer; tokens' last use
//	gateway/membercode the member code shown at the till: rotating codes, links to the code page, barcodes
//	gateway/storepage  the pages members open on their phones: the store page (/m/stores), the member code page
//	gateway/groups     customer groups (WeCom 客户群) and messages to them through their owners, checked at the channel
//	gateway/links      acquisition links (WeCom 获客链接) per store or guide, and their quota warnings
//	gateway/tags       members' tags and the channels' own tags in step both ways, resync
//	gateway/moments    content for guides to post on their Moments (朋友圈), and who posted it
//	gateway/sharelink  the signed tokens of guides' share links to the brand's shop (云店)
//
// Who may import whom (floors_test.go holds the code to it): floors, top
// to bottom; a package imports only packages on floors below its own
// (arrows point down, nothing points back up, and packages of one floor
// do not import each other):
//
//	1  cmd/scrmgw (flags, subcommands), cmd/scrmgw/internal/app (wiring, run loops)
//	2  gateway/console
//	3  gateway/api, gateway/importer, gateway/httpserve, gateway/storepage
//	4  gateway/commerce, gateway/groups, gateway/links
//	5  gateway/inbox
//	6  gateway/outbox, gateway/ledger, gateway/assign, gateway/tags, gateway/moments, bots, workflows/engine
//	7  gateway/queue, gateway/audit, gateway/membercode, gateway/sharelink, workflows, adapters/wecom, adapters/dingtalk, adapters/webhook, adapters/wechatoa
//	8  adapters, templates, store (store/geo)
//	9  events (the event types and the commerce event schema; imports nothing of scrmgw)
//
// Only the wiring imports configs and the channel packages: a gateway
// package takes plain values, and what it needs of a channel it declares
// as a small interface the wiring satisfies (assign.Transferer,
// assign.ResignedTransferer, api.ContactWayMaker) or reaches through
// adapters.Channel; what differs by channel (the kinds it sends, reaching
// a member through their guide, its send rate) it reads from the
// channels' specs (adapters.Specs, the Registry) and names no channel.
// The commerce event schema is not the webhook
// channel's: it is the leaf package events, which the wiring hands the
// channel as its webhook.Check. The one exception left is gateway/api,
// which imports adapters/webhook for its event sources' secrets and the
// events body limit. bots and the workflow engine reach
// the gateway only through interfaces the wiring satisfies (bots.Outbox,
// the engine's sender, api.Workflows).
package gateway
