package staking

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/wire"
)

func TestDecodersRejectWhatNoStateHolds(t *testing.T) {
	val := Validator{Operator: addr(1), ConsKey: fuzzKey(1), Tokens: 5, Shares: 5}
	entry := func(c, done, init, bal uint64) UnbondingEntry {
		return UnbondingEntry{CreationHeight: c, CompletionHeight: done, InitialBalance: init, Balance: bal}
	}
	ms := []Member{{Operator: addr(1), ConsKey: fuzzKey(1), Power: 1}, {Operator: addr(2), ConsKey: fuzzKey(2), Power: 1}}
	sortMembers(ms)
	var zero MissChunk
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"validator without operator", func() error {
			v := val
			v.Operator = crypto.Address{}
			_, err := DecodeValidator(v.Encode())
			return err
		}, "zero operator"},
		{"validator without key", func() error { v := val; v.ConsKey = crypto.PubKey{}; _, err := DecodeValidator(v.Encode()); return err }, "zero consensus key"},
		{"tokens without shares", func() error { v := val; v.Shares = 0; _, err := DecodeValidator(v.Encode()); return err }, "5 tokens and no shares"},
		{"tombstoned, not jailed", func() error { v := val; v.Tombstoned = true; _, err := DecodeValidator(v.Encode()); return err }, "tombstoned but not jailed"},
		{"moniker too long", func() error {
			v := val
			v.Moniker = strings.Repeat("m", 65)
			_, err := DecodeValidator(v.Encode())
			return err
		}, "moniker length"},
		{"moniker with a control character", func() error { v := val; v.Moniker = "\x07"; _, err := DecodeValidator(v.Encode()); return err }, "control character"},
		{"flag not 0 or 1", func() error {
			b := val.Encode()
			b[1+20+32+1+16] = 2 // Jailed
			_, err := DecodeValidator(b)
			return err
		}, "flag 2"},
		{"zero delegation", func() error { _, err := DecodeDelegation(Delegation{}.Encode()); return err }, "zero shares"},
		{"no entries", func() error { _, err := DecodeUnbonding((&Unbonding{}).Encode()); return err }, "no unbonding entries"},
		{"entries out of order", func() error {
			_, err := DecodeUnbonding((&Unbonding{Entries: []UnbondingEntry{entry(5, 15, 1, 1), entry(5, 15, 1, 1)}}).Encode())
			return err
		}, "not increasing"},
		{"completion before creation", func() error {
			_, err := DecodeUnbonding((&Unbonding{Entries: []UnbondingEntry{entry(5, 5, 1, 1)}}).Encode())
			return err
		}, "not after its creation"},
		{"balance above initial", func() error {
			_, err := DecodeUnbonding((&Unbonding{Entries: []UnbondingEntry{entry(5, 6, 1, 2)}}).Encode())
			return err
		}, "above its initial"},
		{"too many entries", func() error {
			u := Unbonding{}
			for i := range MaxEntriesLimit + 1 {
				u.Entries = append(u.Entries, entry(uint64(i), uint64(i)+1, 1, 1))
			}
			_, err := DecodeUnbonding(u.Encode())
			return err
		}, "at most 100"},
		{"forged entry count", func() error { _, err := DecodeUnbonding([]byte{1, 50, 0, 0}); return err }, "truncated"},
		{"missed count above any window", func() error {
			_, err := DecodeSigningInfo(SigningInfo{MissedCount: MaxWindow + 1}.Encode())
			return err
		}, "above the largest window"},
		{"empty chunk", func() error { _, err := DecodeMissChunk(zero.Encode()); return err }, "no bit set"},
		{"active set unsorted", func() error { _, err := DecodeActive(EncodeActive([]Member{ms[1], ms[0]})); return err }, "not sorted"},
		{"active member without power", func() error { m := ms[0]; m.Power = 0; _, err := DecodeActive(EncodeActive([]Member{m})); return err }, "zero power"},
		{"active operator twice", func() error {
			m := []Member{ms[0], ms[1]}
			m[1].Operator = m[0].Operator
			_, err := DecodeActive(EncodeActive(m))
			return err
		}, "twice"},
		{"unknown version", func() error { b := Pool{}.Encode(); b[0] = 2; _, err := DecodePool(b); return err }, "unknown encoding version 2"},
		{"pool with too many candidates", func() error { _, err := DecodePool(Pool{Candidates: MaxCandidates + 1}.Encode()); return err }, "candidates"},
		{"trailing bytes", func() error { _, err := DecodeSigningInfo(append(SigningInfo{}.Encode(), 0)); return err }, "trailing"},
		{"marker with a payload", func() error { return DecodeMarker([]byte{1, 1}) }, "trailing"},
		{"power record with a bad moniker", func() error {
			_, err := DecodePowerRecord(PowerRecord{Operator: addr(1), ConsKey: fuzzKey(1), Moniker: "\xff"}.Encode())
			return err
		}, "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// Truncation at every length fails cleanly.
	b := val.Encode()
	for n := range len(b) {
		if _, err := DecodeValidator(b[:n]); !errors.Is(err, wire.ErrTruncated) && n > 0 {
			t.Fatalf("validator cut at %d: %v", n, err)
		}
	}
}

func TestOverlayMergesStagedWritesInKeyOrder(t *testing.T) {
	base := newMemStore()
	base.apply([]Change{
		{Key: []byte("stk/a/1"), Value: []byte("b1")},
		{Key: []byte("stk/a/3"), Value: []byte("b3")},
		{Key: []byte("stk/a/5"), Value: []byte("b5")},
		{Key: []byte("stk/b/1"), Value: []byte("other")},
	})
	o := newOverlay(base)
	o.set([]byte("stk/a/0"), []byte("s0"))
	o.set([]byte("stk/a/3"), []byte("s3")) // overrides the base
	o.del([]byte("stk/a/5"))               // hides the base
	o.set([]byte("stk/a/9"), []byte("s9"))
	o.del([]byte("stk/a/7")) // deleting an absent key shows nothing
	var got []string
	must(t, o.iterate([]byte("stk/a/"), func(k, v []byte) error {
		got = append(got, string(k)+"="+string(v))
		return nil
	}))
	want := "stk/a/0=s0 stk/a/1=b1 stk/a/3=s3 stk/a/9=s9"
	if strings.Join(got, " ") != want {
		t.Fatalf("iterate: %v, want %s", got, want)
	}
	for k, want := range map[string]string{"stk/a/3": "s3", "stk/a/1": "b1", "stk/a/5": "", "stk/a/0": "s0"} {
		v, err := o.get([]byte(k))
		if err != nil || string(v) != want {
			t.Fatalf("get %s = %q %v, want %q", k, v, err, want)
		}
	}
	// Early stop, from a staged key and from a base key.
	for _, stopAt := range []string{"stk/a/0", "stk/a/1", "stk/a/9"} {
		var seen []string
		must(t, o.iterate([]byte("stk/a/"), func(k, _ []byte) error {
			seen = append(seen, string(k))
			if string(k) == stopAt {
				return errStop
			}
			return nil
		}))
		if seen[len(seen)-1] != stopAt {
			t.Fatalf("stop at %s: saw %v", stopAt, seen)
		}
	}
	// Other errors come through.
	boom := errors.New("boom")
	if err := o.iterate([]byte("stk/a/"), func([]byte, []byte) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("iterate error %v", err)
	}
	cs := o.changes()
	for i := 1; i < len(cs); i++ {
		if bytes.Compare(cs[i-1].Key, cs[i].Key) >= 0 {
			t.Fatal("changes not sorted")
		}
	}
	if len(cs) != 5 || cs[2].Value != nil || string(cs[1].Value) != "s3" {
		t.Fatalf("changes %q", cs)
	}
}
