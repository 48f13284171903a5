// Package inbox carries every platform delivery from acknowledgement to
// effect: the Recorder writes deliveries to the inbox table (batching
// commits across concurrent callbacks) and queues them; the Processor
// handles each queued delivery once, through the handlers the wiring
// registered; Contacts turns contact events into members, bindings and
// welcome messages (TemplateWelcomer renders them; the welcome is sent by
// the contact's handler at once), Messages hands messages to the bots and
// sends their replies at once, in order; Sweep re-queues inbox
// and outbox rows that were saved but never handed to a worker.
//
// Imported by commerce and the wiring. It imports outbox (replies
// and welcomes are sent through it), queue, bots, templates, adapters and
// store; never api, commerce or ledger.
package inbox
