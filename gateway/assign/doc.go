// Package assign binds members to guides: to the guide or store a QR code
// named, or to the least-loaded guide of the nearest active store that
// carries the brand and has room, falling back per policy. Stores live in
// an in-memory spatial index (store/geo) built from the database on start
// and kept fresh on change and by a periodic sync, shared by all requests.
//
// Departures hands the members of a guide who left to colleagues; with
// Handovers, the customers of a WeCom employee who left go through
// durable 离职继承 handovers.
//
// Imported by api, commerce and the wiring. It imports only adapters,
// store and store/geo; what it needs from a channel (transfers) it
// declares as interfaces the wiring satisfies.
package assign
