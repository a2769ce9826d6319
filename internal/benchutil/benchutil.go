// Package benchutil measures code inside a benchmark so that a benchmark can
// report the ratio of two costs measured in the same process, back to back.
// (testing.Benchmark cannot be called from inside a running benchmark.)
package benchutil

import (
	"math"
	"slices"
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

// PairedRatios measures base and then each of fs, back to back, in rounds
// of about chunk each (10 ms when zero), and returns for each f the median
// over the rounds of its time per operation divided by base's in the same
// round. It also returns the median nanoseconds per operation of base
// (ns[0]) and of each f (ns[1:]).
//
// Pairing each measurement with a baseline taken milliseconds before it
// cancels the machine's slow changes of speed (other tenants, clock
// boosts), and the median drops the rounds something interrupted: on a
// shared two-core machine, ratios measured so stay within a few thousandths
// from run to run, where ratios of best times spread over several
// hundredths.
func PairedRatios(rounds int, chunk time.Duration, base func(n int), fs ...func(n int)) (ratios, ns []float64) {
	if chunk <= 0 {
		chunk = 10 * time.Millisecond
	}
	rounds = max(rounds, 1)
	all := append([]func(n int){base}, fs...)
	// Operations per chunk, from a first measurement that also warms up.
	counts := make([]int, len(all))
	for i, f := range all {
		per := max(NsPerOp(chunk, f), 1) // a function too fast to time counts as 1 ns
		counts[i] = max(1, int(float64(chunk)/per))
	}
	perOp := make([][]float64, len(all))
	for range rounds {
		for i, f := range all {
			start := time.Now()
			f(counts[i])
			perOp[i] = append(perOp[i], float64(time.Since(start).Nanoseconds())/float64(counts[i]))
		}
	}
	ratios = make([]float64, len(fs))
	for i := range fs {
		r := make([]float64, rounds)
		for k := range r {
			r[k] = perOp[i+1][k] / perOp[0][k]
		}
		ratios[i] = Median(r)
	}
	ns = make([]float64, len(all))
	for i := range all {
		ns[i] = Median(perOp[i])
	}
	return ratios, ns
}

// Median returns the median of xs (the mean of the two middle values for
// an even count), leaving xs in sorted order; NaN for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	m := len(xs) / 2
	if len(xs)%2 == 1 {
		return xs[m]
	}
	return (xs[m-1] + xs[m]) / 2
}
