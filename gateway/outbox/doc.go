// Package outbox delivers outbox messages through their channel exactly
// once: the Sender claims a row, sends it, and records the outcome (a
// handler's own reply or welcome is saved already claimed and sent at
// once, SendNow; the rest by a queued task, SendTask); send
// rates are shared across replicas through Redis (Limiter), with a lane
// for critical messages; Recover settles sends whose worker died (asking
// the channel when it can reconcile), and delivery checks follow sends
// that complete later.
//
// Imported by inbox and the wiring (the engine's and the bots' sends reach
// it through interfaces the wiring satisfies). It imports queue, adapters
// and store only.
package outbox
