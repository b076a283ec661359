package staking

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestFractionParseAndFormat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Fraction
		out  string
	}{
		{"0", 0, "0"},
		{"1", 1_000_000, "1"},
		{"1.0", 1_000_000, "1"},
		{"0.05", 50_000, "0.05"},
		{"0.050000", 50_000, "0.05"},
		{"0.000001", 1, "0.000001"},
		{"0.5", 500_000, "0.5"},
		{"00.25", 250_000, "0.25"},
	} {
		got, err := ParseFraction(tc.in)
		if err != nil || got != tc.want || got.String() != tc.out {
			t.Errorf("ParseFraction(%q) = %d (%q), %v; want %d (%q)", tc.in, got, got, err, tc.want, tc.out)
		}
	}
	for _, bad := range []string{"", ".5", "5.", "1.000001", "2", "0.0000001", "-0.1", "+0.1", "1e-2", " 0.1", "0x1", "0.1.2", "99999999999"} {
		if f, err := ParseFraction(bad); err == nil {
			t.Errorf("ParseFraction(%q) = %d, want an error", bad, f)
		}
	}
}

func TestParamsJSONRoundTrip(t *testing.T) {
	p := DefaultParams()
	b, err := json.Marshal(p)
	must(t, err)
	for _, want := range []string{`"power_unit":"1000"`, `"slash_fraction_double_sign":"0.05"`, `"slash_fraction_downtime":"0.0001"`, `"min_signed_per_window":"0.5"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	var q Params
	must(t, json.Unmarshal(b, &q))
	if q != p {
		t.Fatalf("round trip: %+v, want %+v", q, p)
	}
	if err := json.Unmarshal([]byte(`{"slash_fraction_downtime":"1.5"}`), &q); err == nil {
		t.Fatal("a fraction above 1 parsed")
	}
}

func TestParamsValidate(t *testing.T) {
	d := DefaultParams()
	must(t, d.Validate())
	must(t, func() *Params { p := testParams(); return &p }().Validate())
	for _, tc := range []struct {
		name string
		mod  func(*Params)
		want string
	}{
		{"power unit too small", func(p *Params) { p.PowerUnit = 15 }, "power_unit 15 is below 16"},
		{"no validators", func(p *Params) { p.MaxValidators = 0 }, "max_validators must be at least 1"},
		{"too many validators", func(p *Params) { p.MaxValidators = 1001 }, "max_validators 1001 is above"},
		{"no unbonding delay", func(p *Params) { p.UnbondingHeights = 0 }, "unbonding_heights must be at least 1"},
		{"huge unbonding delay", func(p *Params) { p.UnbondingHeights = 1 << 41 }, "unbonding_heights"},
		{"no entries", func(p *Params) { p.MaxEntries = 0 }, "max_entries must be at least 1"},
		{"too many entries", func(p *Params) { p.MaxEntries = 101 }, "max_entries 101"},
		{"no window", func(p *Params) { p.SignedBlocksWindow = 0 }, "signed_blocks_window must be at least 1"},
		{"huge window", func(p *Params) { p.SignedBlocksWindow = MaxWindow + 1 }, "signed_blocks_window"},
		{"huge jail", func(p *Params) { p.DowntimeJailHeights = 1 << 41 }, "downtime_jail_heights"},
		{"double sign above 1", func(p *Params) { p.SlashFractionDoubleSign = 1_000_001 }, "slash_fraction_double_sign"},
		{"downtime above 1", func(p *Params) { p.SlashFractionDowntime = 2_000_000 }, "slash_fraction_downtime"},
		{"min signed above 1", func(p *Params) { p.MinSignedPerWindow = 1_000_001 }, "min_signed_per_window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			tc.mod(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
			// Every operation refuses to run under invalid parameters.
			s := New(newMemStore(), p)
			if err := s.Delegate(1, addr(1), addr(2), 5); err == nil || !strings.Contains(err.Error(), "invalid parameters") {
				t.Fatalf("Delegate under invalid parameters: %v", err)
			}
			if _, err := s.EndBlock(BlockInfo{Height: 1}); err == nil {
				t.Fatal("EndBlock ran under invalid parameters")
			}
		})
	}
}

func TestMaxMissedRoundsSignedUp(t *testing.T) {
	for _, tc := range []struct {
		window uint64
		min    Fraction
		want   uint64
	}{
		{10, 500_000, 5},
		{3, 500_000, 1},     // must sign ceil(1.5) = 2
		{1000, 50_000, 950}, // 0.05
		{7, 0, 7},           // may miss everything
		{7, 1_000_000, 0},   // may miss nothing
		{1000, 999_999, 0},  // ceil(999.999) = 1000
	} {
		p := testParams()
		p.SignedBlocksWindow, p.MinSignedPerWindow = tc.window, tc.min
		if got := p.maxMissed(); got != tc.want {
			t.Errorf("window %d, min %s: maxMissed %d, want %d", tc.window, tc.min, got, tc.want)
		}
	}
}
