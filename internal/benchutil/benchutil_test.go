package benchutil

import (
	"math"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{1, 100, 1, 1, 100}, 1},
	} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if got := Median(nil); !math.IsNaN(got) {
		t.Errorf("Median(nil) = %v, want NaN", got)
	}
}

// PairedRatios must call every function the same number of rounds, with
// the counts it calibrated, and return one ratio per function.
func TestPairedRatiosCalls(t *testing.T) {
	calls := map[string]int{}
	f := func(name string) func(n int) {
		return func(n int) {
			calls[name]++
			if n < 1 {
				t.Fatalf("%s called with n=%d", name, n)
			}
		}
	}
	ratios, ns := PairedRatios(5, 0, f("base"), f("a"), f("b"))
	if len(ratios) != 2 || len(ns) != 3 {
		t.Fatalf("got %d ratios and %d times, want 2 and 3", len(ratios), len(ns))
	}
	if calls["a"] != calls["base"] || calls["b"] != calls["base"] || calls["base"] < 5 {
		t.Fatalf("calls %v: want equal counts of at least 5", calls)
	}
}
