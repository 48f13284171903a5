// Package workflows is the language brand marketers write their member
// journeys in: welcome, recall, repurchase and win-back workflows in YAML,
// loaded into a model the engine executes.
//
// A workflow has a trigger (an event, or a schedule over a segment of
// members, with a filter expression), entry rules (brand, re-entry),
// goals (events that end a run as converted), send rules (quiet hours,
// send window and days in the member's or store's zone, frequency caps)
// and a list of steps:
//
//	name: new-member-welcome
//	trigger:
//	  event: member.joined
//	entry:
//	  brand: camellia
//	goal: purchase.completed
//	steps:
//	  - id: assign
//	    assign_guide: nearest
//	  - id: welcome
//	    send: welcome
//	  - id: wait_3d
//	    wait: 3d
//	  - id: not_bought_yet
//	    if: member.orders == 0
//	    else: end
//	  - id: coupon
//	    send: first_purchase_coupon
//	    coupon: NEW-MEMBER-50
//
// Load decodes strictly from the YAML nodes, so an unknown key is an
// error, and validates everything it can before a run exists: step kinds
// and fields, durations (3d, 2w, 90m, 1h30m), expressions (compiled with
// github.com/expr-lang/expr and type-checked against Env), templates
// (against a registry), step ids named by transitions, unreachable steps,
// loops without a wait, a sending workflow without a goal, quiet hours,
// caps and schedules. It reports every problem at once, each with
// file:line:column and, for misspellings, a suggestion:
//
//	recall.yaml:10:14: steps[0].channel: unknown channel "wecomm" (did you mean "wecom"?)
//
// The model is built to be executed: every step has a stable id, every
// transition is resolved to a step id or End (a step without next goes on
// to the one below it), durations are time.Duration, and the workflow's
// Version is the hash of its file, which runs are pinned to. Schedule.Next,
// SendRules.SendTime and ReEntry.Allows compute the timing rules; the
// engine on Asynq builds on them. docs/workflows.md is the marketers'
// reference.
package workflows
