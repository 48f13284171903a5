// Package geo is the in-memory spatial index of stores ("sites") that finds,
// for a member's location and a brand, the nearest eligible stores,
// nearest-first by great-circle distance.
//
// It is pure: no database, no project imports. The store package feeds it
// plain Site values, in bulk with Build at start-up and one by one with
// Upsert and Remove when a store changes.
//
// # Method
//
// Each point is mapped to a unit vector of 3D space. The straight-line
// (chord) distance c between two unit vectors is a strictly increasing
// function of the great-circle angle θ between them, c = 2·sin(θ/2), so
// ordering by chord is ordering by great-circle distance, with no special
// case at the antimeridian or the poles (3D space has neither). The active
// sites of each brand are held in a bulk-loaded R-tree of 3D boxes. A walk
// is a best-first search with a min-heap: the key of a box is the squared
// Euclidean distance from the query to the box, which is a lower bound of
// the squared chord to every site inside the box (a site on the sphere is
// still a point of the box); the key of a site is its exact squared chord.
// A site is handed out only when it is at the top of the heap, i.e. no box
// still closed could contain a nearer one, so the walk is exactly in
// increasing great-circle distance. Distances are reported as
// 2R·asin(c/2) with R = EarthRadius, identical to the haversine formula.
//
// The bound also holds in floating point: box bounds and chords are computed
// with the same sequence of correctly rounded, monotone operations (no
// fused multiply-add), and a box's corners are the exact minimum and maximum
// coordinates of its points, so the computed bound never exceeds the
// computed chord of a point inside. Equal keys put boxes before sites and
// sites in order of ID, so ties come out deterministically by ID.
//
// # Concurrency
//
// Lookups read an immutable snapshot (an atomic pointer) and never block.
// Writers are serialised; each publishes a new snapshot that shares every
// unchanged brand. A brand's shard is a base tree plus a small delta tree of
// sites added since and a sorted list of base sites removed since; an update
// rebuilds only the delta, and when delta and removals outgrow about 1/64 of
// the base the brand is rebuilt into one tree.
package geo
