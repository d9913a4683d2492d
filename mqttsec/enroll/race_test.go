//go:build race

package enroll

// raceEnabled: the race detector slows the guessing test about tenfold.
const raceEnabled = true
