//go:build !race

package main

// raceEnabled: the test binary runs with the race detector.
const raceEnabled = false
