package privval

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

const chain = "test-chain"

func testKey(t testing.TB, b byte) crypto.PrivKey {
	t.Helper()
	k, err := crypto.PrivKeyFromSeed(bytes.Repeat([]byte{b}, crypto.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func block(b byte) crypto.Hash {
	if b == 0 {
		return crypto.Hash{} // nil
	}
	return crypto.Sum([]byte{b})
}

// req is one signing request of a guard test.
type req struct {
	step   Step
	h      uint64
	r      uint32
	blk    byte  // 0 = nil (votes only)
	pol    int32 // proposals: POL round
	chain  string
	result string // "new", "same" (the signature of the previous successful request), "double", "invalid"
}

func (q req) String() string {
	return fmt.Sprintf("%s h=%d r=%d block=%d pol=%d", q.step, q.h, q.r, q.blk, q.pol)
}

// do sends q to s and returns the signature set on the message, or the error.
func (q req) do(s *Signer) (crypto.Signature, []byte, error) {
	c := q.chain
	if c == "" {
		c = chain
	}
	switch q.step {
	case StepPropose:
		p := &ledger.Proposal{Height: q.h, Round: q.r, POLRound: q.pol, BlockID: block(q.blk),
			Parts: ledger.PartSetHeader{Total: 1, Root: block(q.blk)}}
		err := s.SignProposal(c, p)
		if err == nil && p.Proposer != s.Address() {
			return crypto.Signature{}, nil, errors.New("proposer not set")
		}
		return p.Sig, p.SignBytes(c), err
	default:
		t := ledger.Prevote
		if q.step == StepPrecommit {
			t = ledger.Precommit
		} else if q.step != StepPrevote {
			t = ledger.VoteType(9)
		}
		v := &ledger.Vote{Type: t, Height: q.h, Round: q.r, BlockID: block(q.blk)}
		err := s.SignVote(c, v)
		if err == nil && v.Validator != s.Address() {
			return crypto.Signature{}, nil, errors.New("validator not set")
		}
		return v.Sig, v.SignBytes(c), err
	}
}

func TestSignerGuard(t *testing.T) {
	pv, pc, pp := StepPrevote, StepPrecommit, StepPropose
	tests := []struct {
		name string
		reqs []req
	}{
		{"first signature at any height", []req{{step: pc, h: 7, r: 3, blk: 1, result: "new"}}},
		{"higher height signs", []req{
			{step: pv, h: 1, blk: 1, result: "new"},
			{step: pv, h: 2, blk: 1, result: "new"},
		}},
		{"lower height refused", []req{
			{step: pv, h: 2, blk: 1, result: "new"},
			{step: pc, h: 1, r: 5, blk: 1, result: "double"},
		}},
		{"lower round refused", []req{
			{step: pv, h: 1, r: 1, blk: 1, result: "new"},
			{step: pc, h: 1, r: 0, blk: 1, result: "double"},
		}},
		{"lower step refused", []req{
			{step: pc, h: 1, blk: 1, result: "new"},
			{step: pv, h: 1, blk: 1, result: "double"},
		}},
		{"same vote again returns the same signature", []req{
			{step: pv, h: 1, blk: 1, result: "new"},
			{step: pv, h: 1, blk: 1, result: "same"},
			{step: pv, h: 1, blk: 1, result: "same"},
		}},
		{"same HRS, different block refused", []req{
			{step: pv, h: 1, blk: 1, result: "new"},
			{step: pv, h: 1, blk: 2, result: "double"},
		}},
		{"nil then block at same HRS refused", []req{
			{step: pc, h: 1, blk: 0, result: "new"},
			{step: pc, h: 1, blk: 1, result: "double"},
		}},
		{"block then nil at same HRS refused", []req{
			{step: pc, h: 1, blk: 1, result: "new"},
			{step: pc, h: 1, blk: 0, result: "double"},
		}},
		{"same HRS on another chain refused", []req{
			{step: pv, h: 1, blk: 1, result: "new"},
			{step: pv, h: 1, blk: 1, chain: "other-chain", result: "double"},
		}},
		{"propose, prevote, precommit in a round", []req{
			{step: pp, h: 1, pol: -1, blk: 1, result: "new"},
			{step: pv, h: 1, blk: 1, result: "new"},
			{step: pc, h: 1, blk: 1, result: "new"},
		}},
		{"proposal after a vote in the same round refused", []req{
			{step: pv, h: 1, blk: 1, result: "new"},
			{step: pp, h: 1, pol: -1, blk: 1, result: "double"},
		}},
		{"proposal in the next round after precommit", []req{
			{step: pc, h: 1, r: 0, blk: 0, result: "new"},
			{step: pp, h: 1, r: 1, pol: -1, blk: 2, result: "new"},
		}},
		{"same proposal again returns the same signature", []req{
			{step: pp, h: 3, r: 1, pol: -1, blk: 1, result: "new"},
			{step: pp, h: 3, r: 1, pol: -1, blk: 1, result: "same"},
		}},
		{"proposal with another block refused", []req{
			{step: pp, h: 3, r: 1, pol: -1, blk: 1, result: "new"},
			{step: pp, h: 3, r: 1, pol: -1, blk: 2, result: "double"},
		}},
		{"proposal with another POL round refused", []req{
			{step: pp, h: 3, r: 2, pol: -1, blk: 1, result: "new"},
			{step: pp, h: 3, r: 2, pol: 1, blk: 1, result: "double"},
		}},
		{"invalid messages refused without touching the state", []req{
			{step: pv, h: 2, blk: 1, result: "new"},
			{step: pv, h: 0, blk: 1, result: "invalid"},
			{step: Step(9), h: 3, blk: 1, result: "invalid"},
			{step: pp, h: 3, r: 0, pol: 0, blk: 1, result: "invalid"}, // POL round must be below the round
			{step: pp, h: 3, pol: -1, blk: 0, result: "invalid"},      // proposal of nil
			{step: pv, h: 3, blk: 1, chain: "bad chain id", result: "invalid"},
			{step: pv, h: 3, r: ledger.MaxRound + 1, blk: 1, result: "invalid"},
			{step: pv, h: 2, blk: 1, result: "same"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := NewMemStateStore()
			s, err := New(testKey(t, 1), store)
			if err != nil {
				t.Fatal(err)
			}
			var prev crypto.Signature
			for i, q := range tt.reqs {
				before := s.LastSigned()
				sig, msg, err := q.do(s)
				switch q.result {
				case "new", "same":
					if err != nil {
						t.Fatalf("request %d (%s): %v", i, q, err)
					}
					if !s.PubKey().Verify(msg, sig) {
						t.Fatalf("request %d (%s): signature does not verify", i, q)
					}
					if q.result == "same" && sig != prev {
						t.Fatalf("request %d (%s): a new signature for the same sign bytes", i, q)
					}
					stored, _ := store.Load()
					if stored.Height != q.h || stored.Round != q.r || stored.Step != q.step ||
						stored.BlockID != block(q.blk) || stored.Sig != sig || !bytes.Equal(stored.SignBytes, msg) {
						t.Fatalf("request %d (%s): stored state %+v does not record it", i, q, stored)
					}
					prev = sig
				case "double", "invalid":
					if err == nil {
						t.Fatalf("request %d (%s): signed, want refusal", i, q)
					}
					if got := errors.Is(err, ErrDoubleSign); got != (q.result == "double") {
						t.Fatalf("request %d (%s): err = %v; wraps ErrDoubleSign = %v, want %v", i, q, err, got, !got)
					}
					if sig != (crypto.Signature{}) {
						t.Fatalf("request %d (%s): refused but the message carries a signature", i, q)
					}
					if after, _ := store.Load(); after.compare(before.Height, before.Round, before.Step) != 0 || after.Sig != before.Sig {
						t.Fatalf("request %d (%s): a refusal changed the stored state", i, q)
					}
				default:
					t.Fatalf("bad test: result %q", q.result)
				}
			}
		})
	}
}

func TestSignerRestartRefusesConflict(t *testing.T) {
	path := t.TempDir() + "/data/priv_validator_state.json"
	key := testKey(t, 2)
	s, err := New(key, NewFileStateStore(path))
	if err != nil {
		t.Fatal(err)
	}
	first := req{step: StepPrecommit, h: 5, r: 2, blk: 1}
	sig, _, err := first.do(s)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %04o, want 0600", fi.Mode().Perm())
	}

	// A restarted validator: new Signer, new store on the same file.
	s, err = New(key, NewFileStateStore(path))
	if err != nil {
		t.Fatal(err)
	}
	if ls := s.LastSigned(); ls.Height != 5 || ls.Round != 2 || ls.Step != StepPrecommit || ls.Sig != sig {
		t.Fatalf("restarted signer state %+v", ls)
	}
	for _, q := range []req{
		{step: StepPrecommit, h: 5, r: 2, blk: 2},
		{step: StepPrecommit, h: 5, r: 2, blk: 0},
		{step: StepPrevote, h: 5, r: 2, blk: 2},
		{step: StepPropose, h: 5, r: 2, pol: -1, blk: 2},
	} {
		if _, _, err := q.do(s); !errors.Is(err, ErrDoubleSign) {
			t.Errorf("after restart, %s: err = %v, want ErrDoubleSign", q, err)
		}
	}
	if got, _, err := first.do(s); err != nil || got != sig {
		t.Fatalf("re-signing the identical precommit after restart: %v, same signature %v", err, got == sig)
	}
	if _, _, err := (req{step: StepPrevote, h: 6, blk: 3}).do(s); err != nil {
		t.Fatalf("next height after restart: %v", err)
	}
}

// hookStore runs a function before delegating Save, to observe or fail it.
type hookStore struct {
	StateStore
	before func(LastSigned) error
}

func (h *hookStore) Save(ls LastSigned) error {
	if err := h.before(ls); err != nil {
		return err
	}
	return h.StateStore.Save(ls)
}

func TestSignerSavesBeforeReleasing(t *testing.T) {
	v := &ledger.Vote{Type: ledger.Prevote, Height: 1, BlockID: block(1)}
	saves := 0
	store := &hookStore{StateStore: NewMemStateStore(), before: func(ls LastSigned) error {
		saves++
		if v.Sig != (crypto.Signature{}) {
			t.Error("the signature was released before the state was saved")
		}
		return nil
	}}
	s, err := New(testKey(t, 1), store)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SignVote(chain, v); err != nil {
		t.Fatal(err)
	}
	if err := s.SignVote(chain, v); err != nil {
		t.Fatal(err)
	}
	if saves != 1 {
		t.Fatalf("%d saves, want 1 (re-signing identical bytes needs none)", saves)
	}
}

func TestSignerSaveFailureStopsSigning(t *testing.T) {
	fail := errors.New("disk full")
	failing := true
	store := &hookStore{StateStore: NewMemStateStore(), before: func(LastSigned) error {
		if failing {
			return fail
		}
		return nil
	}}
	s, err := New(testKey(t, 1), store)
	if err != nil {
		t.Fatal(err)
	}
	v := &ledger.Vote{Type: ledger.Prevote, Height: 1, BlockID: block(1)}
	if err := s.SignVote(chain, v); !errors.Is(err, fail) {
		t.Fatalf("err = %v, want the store's error", err)
	}
	if v.Sig != (crypto.Signature{}) || !s.LastSigned().IsZero() {
		t.Fatal("a signature whose state was not saved was released or recorded")
	}
	failing = false
	v2 := &ledger.Vote{Type: ledger.Prevote, Height: 2, BlockID: block(1)}
	if err := s.SignVote(chain, v2); err == nil {
		t.Fatal("signed after a failed save; the signer must refuse until restarted")
	}
	s, err = New(testKey(t, 1), store)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SignVote(chain, v2); err != nil {
		t.Fatalf("restarted signer: %v", err)
	}
}

func TestNewRefusesBadState(t *testing.T) {
	other := NewMemStateStore()
	s, _ := New(testKey(t, 1), other)
	if _, _, err := (req{step: StepPrevote, h: 1, blk: 1}).do(s); err != nil {
		t.Fatal(err)
	}
	if _, err := New(testKey(t, 2), other); err == nil {
		t.Error("accepted a state signed by another key")
	}
	if _, err := New(crypto.PrivKey{}, NewMemStateStore()); err == nil {
		t.Error("accepted an empty key")
	}
	loadErr := errors.New("unreadable")
	if _, err := New(testKey(t, 1), &errStore{err: loadErr}); !errors.Is(err, loadErr) {
		t.Errorf("err = %v, want the load error", err)
	}
	if err := NewMemStateStore().Save(LastSigned{Height: 1, Step: 7}); err == nil {
		t.Error("MemStateStore saved an invalid state")
	}
}

type errStore struct{ err error }

func (e *errStore) Load() (LastSigned, error) { return LastSigned{}, e.err }
func (e *errStore) Save(LastSigned) error     { return e.err }

// TestSignerNeverDoubleSignsUnderRandomRestarts drives a signer with random
// requests (many conflicting, many stale) and random restarts on the same
// store, and checks the released signatures: at most one set of sign bytes
// per (height, round, step), and never one below an earlier release.
func TestSignerNeverDoubleSignsUnderRandomRestarts(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LEDGERD_PRIVVAL_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	key := testKey(t, 3)
	store := NewMemStateStore()
	s, err := New(key, store)
	if err != nil {
		t.Fatal(err)
	}
	type hrs struct {
		h    uint64
		r    uint32
		step Step
	}
	released := map[hrs][]byte{}
	var top LastSigned
	for i := range 3000 {
		if rng.IntN(20) == 0 {
			if s, err = New(key, store); err != nil {
				t.Fatalf("seed %d: restart: %v", seed, err)
			}
		}
		q := req{step: Step(1 + rng.IntN(3)), h: uint64(1 + rng.IntN(3) + i/300), r: uint32(rng.IntN(3)), blk: byte(rng.IntN(3)), pol: -1}
		if q.step == StepPropose && q.blk == 0 {
			q.blk = 1
		}
		sig, msg, err := q.do(s)
		if err != nil {
			if !errors.Is(err, ErrDoubleSign) {
				t.Fatalf("seed %d: %s: %v", seed, q, err)
			}
			continue
		}
		k := hrs{q.h, q.r, q.step}
		if prev, ok := released[k]; ok && !bytes.Equal(prev, msg) {
			t.Fatalf("seed %d: double sign at %+v", seed, k)
		}
		if top.Height > 0 && top.compare(q.h, q.r, q.step) < 0 {
			t.Fatalf("seed %d: signed %s below the earlier %d/%d/%s", seed, q, top.Height, top.Round, top.Step)
		}
		if !key.PubKey().Verify(msg, sig) {
			t.Fatalf("seed %d: bad signature", seed)
		}
		released[k] = msg
		top = LastSigned{Height: q.h, Round: q.r, Step: q.step}
	}
	if len(released) < 20 {
		t.Fatalf("seed %d: only %d signatures released; the test exercises too little", seed, len(released))
	}
}
