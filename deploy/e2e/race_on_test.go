//go:build race

package e2e

// raceEnabled builds the stack's binaries with the race detector when the
// suite itself runs with it (as `make test` does).
const raceEnabled = true
