// Package benchutil measures code inside a benchmark so that a benchmark can
// report the ratio of two costs measured in the same process, back to back.
// (testing.Benchmark cannot be called from inside a running benchmark.)
package benchutil

import (
	"math"
	"time"
)

// NsPerOp runs f(n) with growing n until one run lasts at least target
// (default 200 ms when zero) and returns the nanoseconds per operation.
// f must perform n operations.
func NsPerOp(target time.Duration, f func(n int)) float64 {
	if target <= 0 {
		target = 200 * time.Millisecond
	}
	n := 1
	for {
		start := time.Now()
		f(n)
		d := time.Since(start)
		if d >= target || n >= 1<<30 {
			return float64(d.Nanoseconds()) / float64(n)
		}
		next := n * 100
		if d > 0 {
			next = int(math.Ceil(float64(n) * 1.2 * float64(target) / float64(d)))
		}
		n = min(max(next, n+1), n*100)
	}
}

// Best returns the lowest of rounds NsPerOp measurements of f: the least
// disturbed by other work on the machine.
func Best(rounds int, target time.Duration, f func(n int)) float64 {
	best := math.Inf(1)
	for range max(rounds, 1) {
		best = min(best, NsPerOp(target, f))
	}
	return best
}

// Interleaved measures several functions in turn, rounds times, and
// returns the best time of each. Interleaving spreads slow periods of the
// machine over all of them, so that their ratios stay meaningful.
func Interleaved(rounds int, target time.Duration, fs ...func(n int)) []float64 {
	best := make([]float64, len(fs))
	for i := range best {
		best[i] = math.Inf(1)
	}
	for range max(rounds, 1) {
		for i, f := range fs {
			best[i] = min(best[i], NsPerOp(target, f))
		}
	}
	return best
}
