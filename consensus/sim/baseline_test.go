package sim

import (
	"os"
	"strings"
	"testing"
)

// TestBaselineFile checks that the recorded baseline decodes.
func TestBaselineFile(t *testing.T) {
	data, err := os.ReadFile(baselineFile)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeBaseline(data)
	if err != nil {
		t.Fatal(err)
	}
	if b.Seeds != ciSeeds {
		t.Fatalf("baseline of %d seeds, TestSimulator runs %d", b.Seeds, ciSeeds)
	}
}

// TestBaselineCompare checks the tolerances one by one: at the baseline
// and within a tolerance nothing is worse, past one exactly that measure
// is named.
func TestBaselineCompare(t *testing.T) {
	base := Baseline{Seeds: 10, Rounds: []uint64{800, 100, 50, 30, 10, 5, 3, 2}, RoundsPerHeight: 1.5,
		RecoveryP50: 2000, RecoveryP90: 5000, RecoveryP99: 9000, RecoveryMax: 12000}
	same := base
	if w := base.Compare(same); len(w) != 0 {
		t.Fatalf("the baseline is worse than itself: %v", w)
	}
	tests := []struct {
		name string
		edit func(b *Baseline)
		want string // "" : not worse
	}{
		{"fewer rounds", func(b *Baseline) { b.RoundsPerHeight = 1.2 }, ""},
		{"rounds within tolerance", func(b *Baseline) { b.RoundsPerHeight = 1.5 * (1 + TolRoundsPerHeight/2) }, ""},
		{"rounds past tolerance", func(b *Baseline) { b.RoundsPerHeight = 1.5 * (1 + 2*TolRoundsPerHeight) }, "rounds per height"},
		{"more late heights", func(b *Baseline) { b.Rounds = []uint64{700, 200, 50, 30, 10, 5, 3, 2} }, "after round 0"},
		{"p50 past tolerance", func(b *Baseline) { b.RecoveryP50 = Millis(2000 * (1 + 2*TolRecovery)) }, "recovery p50"},
		{"p90 within tolerance", func(b *Baseline) { b.RecoveryP90 = Millis(5000 * (1 + TolRecovery/2)) }, ""},
		{"p90 past tolerance", func(b *Baseline) { b.RecoveryP90 = Millis(5000 * (1 + 2*TolRecovery)) }, "recovery p90"},
		{"p99 past tolerance", func(b *Baseline) { b.RecoveryP99 = Millis(9000 * (1 + 2*TolRecoveryP99)) }, "recovery p99"},
		{"max is not compared", func(b *Baseline) { b.RecoveryMax = 50000 }, ""},
		{"other seeds", func(b *Baseline) { b.Seeds = 11 }, "baseline is of 10 seeds"},
	}
	for _, tt := range tests {
		cur := base
		cur.Rounds = append([]uint64(nil), base.Rounds...)
		tt.edit(&cur)
		w := base.Compare(cur)
		switch {
		case tt.want == "" && len(w) > 0:
			t.Errorf("%s: worse: %v", tt.name, w)
		case tt.want != "" && (len(w) != 1 || !strings.Contains(w[0], tt.want)):
			t.Errorf("%s: got %v, want one line about %q", tt.name, w, tt.want)
		}
	}
}

func TestDecodeBaseline(t *testing.T) {
	good := Baseline{Seeds: 3, Rounds: make([]uint64, RoundBuckets), RoundsPerHeight: 1.2, RecoveryP50: 1, RecoveryP90: 2, RecoveryP99: 3, RecoveryMax: 3}
	if b, err := DecodeBaseline(good.Encode()); err != nil || b.Seeds != 3 || b.RecoveryMax != 3 {
		t.Fatalf("round trip: %+v, %v", b, err)
	}
	for name, in := range map[string]string{
		"empty":         ``,
		"not json":      `seeds`,
		"unknown field": `{"seeds":1,"rounds":[0,0,0,0,0,0,0,0],"extra":1}`,
		"trailing":      string(good.Encode()) + `{}`,
		"no seeds":      `{"seeds":0,"rounds":[0,0,0,0,0,0,0,0]}`,
		"few buckets":   `{"seeds":1,"rounds":[0,0]}`,
		"negative":      `{"seeds":1,"rounds":[0,0,0,0,0,0,0,0],"rounds_per_height":-1}`,
		"disordered":    `{"seeds":1,"rounds":[0,0,0,0,0,0,0,0],"recovery_p50_ms":5,"recovery_p90_ms":4,"recovery_p99_ms":6,"recovery_max_ms":6}`,
		"oversized":     `{"seeds":1,"rounds":[0,0,0,0,0,0,0,0]}` + strings.Repeat(" ", MaxBaselineSize),
	} {
		if _, err := DecodeBaseline([]byte(in)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func FuzzDecodeBaseline(f *testing.F) {
	good := Baseline{Seeds: 3, Rounds: make([]uint64, RoundBuckets), RoundsPerHeight: 1.2, RecoveryP50: 1, RecoveryP90: 2, RecoveryP99: 3, RecoveryMax: 3}
	f.Add(good.Encode())
	f.Add([]byte(`{"seeds":1,"rounds":[0,0,0,0,0,0,0,0],"rounds_per_height":1e308}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBaseline(data)
		if err != nil {
			return
		}
		// What decodes encodes and decodes to the same thing, and
		// compares with itself as not worse.
		again, err := DecodeBaseline(b.Encode())
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(again.Rounds) != RoundBuckets || again.Seeds != b.Seeds || again.RecoveryMax != b.RecoveryMax {
			t.Fatalf("round trip changed %+v to %+v", b, again)
		}
		if w := b.Compare(b); len(w) != 0 {
			t.Fatalf("worse than itself: %v", w)
		}
	})
}
