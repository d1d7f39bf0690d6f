//go:build race

package keystore_test

// raceEnabled: the race detector slows modernc.org/sqlite (C translated to
// Go, every memory access instrumented) about sixfold.
const raceEnabled = true
