package bench

import (
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	ten := make([]time.Duration, 10)
	for i := range ten {
		ten[i] = time.Duration(i+1) * time.Millisecond // 1..10 ms
	}
	for _, tc := range []struct {
		name   string
		values []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty gives zero", nil, 50, 0},
		{"single value is every percentile", []time.Duration{7}, 99, 7},
		{"p50 of ten is the fifth", ten, 50, 5 * time.Millisecond},
		{"p90 of ten is the ninth", ten, 90, 9 * time.Millisecond},
		{"p99 of ten is the largest", ten, 99, 10 * time.Millisecond},
		{"p100 is the maximum", ten, 100, 10 * time.Millisecond},
		{"p0 is the minimum", ten, 0, 1 * time.Millisecond},
		{"p10 of ten is the first", ten, 10, 1 * time.Millisecond},
		{"p11 of ten rounds up to the second", ten, 11, 2 * time.Millisecond},
		{"above 100 is clamped", ten, 150, 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.values, tc.p); got != tc.want {
				t.Fatalf("Percentile(%v, %v) = %v, want %v", tc.values, tc.p, got, tc.want)
			}
		})
	}
}

func TestPercentileOfThousand(t *testing.T) {
	v := make([]time.Duration, 1000)
	for i := range v {
		v[i] = time.Duration(i + 1)
	}
	for p, want := range map[float64]time.Duration{50: 500, 90: 900, 99: 990, 99.9: 999} {
		if got := Percentile(v, p); got != want {
			t.Errorf("p%v of 1..1000 = %d, want %d", p, got, want)
		}
	}
}

func TestSummarizeSortsAndReportsMilliseconds(t *testing.T) {
	ds := []time.Duration{30 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 1500 * time.Microsecond}
	s := Summarize(ds)
	want := Summary{Count: 4, Min: 1.5, Mean: 15.375, P50: 10, P90: 30, P99: 30, Max: 30}
	if s != want {
		t.Fatalf("Summarize = %+v, want %+v", s, want)
	}
	if Summarize(nil) != (Summary{}) {
		t.Fatal("Summarize(nil) is not the zero Summary")
	}
}
