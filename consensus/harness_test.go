package consensus

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// The scripted tests drive one Machine with a tiny language, one event per
// line, and compare the effects exactly:
//
//	start 1                              -> timeout propose 1/0
//	proposal 1/0 A                       -> prevote 1/0 A
//	prevote 1/0 A from=v0,v1,v2          -> precommit 1/0 A
//
// Events: "start H", "proposal H/R BLOCK [pol=N] [from=vI]",
// "prevote|precommit H/R BLOCK|nil from=vI[,vJ..]" (one event per signer;
// the effects of all of them are compared together), "timeout
// propose|prevote|precommit H/R", "value H/R BLOCK", and "state", which
// outputs the machine's variables. Effects print as "prevote 1/0 A",
// "proposal 1/1 A pol=0", "timeout prevote 1/0", "request 1/3",
// "decide 1/0 A sigs=3", "evidence prevote 1/0 v0 A/B" (block names
// sorted), and a refused
// event as "error stale" (or duplicate, too-far-ahead, not-validator,
// wrong-proposer, malformed, sequence). A line without "->" expects no
// effects. Blocks named X... are invalid; the same name at different
// heights names different blocks.
//
// The validators are v0..v3 (canonical order) with power 1 each: quorum 3,
// f+1 = 2. The proposer of height h, round r is v((h-1+r) mod 4).

const testChain = "consensus-test"

type harness struct {
	t       testing.TB
	keys    []crypto.PrivKey // by validator index
	vals    *ledger.ValidatorSet
	sets    ValidatorSets // the machine's: vals at every height
	m       *Machine
	self    int
	blocks  map[string]*ledger.Block // "name@height"
	names   map[crypto.Hash]string
	checked int // ValidValue calls
}

func testKeys(n int) ([]crypto.PrivKey, *ledger.ValidatorSet) {
	return testKeysPowers(make([]uint64, n))
}

// testKeysPowers returns keys ordered like the validator set; a zero power
// means 1.
func testKeysPowers(powers []uint64) ([]crypto.PrivKey, *ledger.ValidatorSet) {
	var vs []ledger.Validator
	byAddr := map[crypto.Address]crypto.PrivKey{}
	for i, p := range powers {
		seed := crypto.Sum([]byte(fmt.Sprintf("consensus-test/%d", i)))
		k, err := crypto.PrivKeyFromSeed(seed[:])
		if err != nil {
			panic(err)
		}
		if p == 0 {
			p = 1
		}
		vs = append(vs, ledger.Validator{PubKey: k.PubKey(), Power: p})
		byAddr[k.PubKey().Address()] = k
	}
	set, err := ledger.NewValidatorSet(vs)
	if err != nil {
		panic(err)
	}
	keys := make([]crypto.PrivKey, set.Size())
	for i := range keys {
		keys[i] = byAddr[set.Get(i).Address()]
	}
	return keys, set
}

func newHarness(t testing.TB, self int) *harness {
	keys, vals := testKeys(4)
	h := &harness{t: t, keys: keys, vals: vals, sets: Static(vals), self: self, blocks: map[string]*ledger.Block{}, names: map[crypto.Hash]string{}}
	cfg := Config{ChainID: testChain, Validators: h.sets, ValidValue: func(b *ledger.Block) error {
		h.checked++
		if strings.HasPrefix(h.names[b.Hash()], "X") {
			return errors.New("invalid test block")
		}
		return nil
	}}
	if self >= 0 {
		cfg.Self = vals.Get(self).Address()
	}
	m, err := New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	return h
}

// block returns the block called name at height (created on first use).
func (h *harness) block(name string, height uint64) *ledger.Block {
	key := fmt.Sprintf("%s@%d", name, height)
	if b, ok := h.blocks[key]; ok {
		return b
	}
	b := &ledger.Block{Header: ledger.Header{
		ChainID: testChain, Height: height, Time: ledger.Timestamp(len(h.blocks) + 1),
		ValidatorsHash: h.vals.Hash(), Proposer: h.vals.Get(0).Address(),
	}}
	b.FillHeader()
	h.blocks[key] = b
	h.names[b.Hash()] = name
	return b
}

func (h *harness) name(id crypto.Hash) string {
	if id.IsZero() {
		return "nil"
	}
	if n, ok := h.names[id]; ok {
		return n
	}
	return ShortID(id)
}

func (h *harness) validator(s string) int {
	i, err := strconv.Atoi(strings.TrimPrefix(s, "v"))
	if err != nil || i < 0 || i >= len(h.keys) {
		h.t.Fatalf("bad validator %q", s)
	}
	return i
}

func parseHR(t testing.TB, s string) (uint64, uint32) {
	hs, rs, ok := strings.Cut(s, "/")
	hh, err1 := strconv.ParseUint(hs, 10, 64)
	rr, err2 := strconv.ParseUint(rs, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("bad height/round %q", s)
	}
	return hh, uint32(rr)
}

// proposer returns the index of the proposer of (height, round).
func (h *harness) proposer(height uint64, round uint32) int {
	prio, err := h.sets.PrioritiesAt(height)
	if err != nil {
		h.t.Fatal(err)
	}
	return NewProposerSelector(prio).Index(round)
}

// proposal builds a signed proposal event.
func (h *harness) proposal(height uint64, round uint32, name string, pol int32, from int) EventProposal {
	if from < 0 {
		from = h.proposer(height, round)
	}
	b := h.block(name, height)
	parts, _ := ledger.SplitBlock(b.Encode())
	p := &ledger.Proposal{Height: height, Round: round, POLRound: pol, BlockID: b.Hash(), Parts: parts}
	p.Sign(testChain, h.keys[from])
	return EventProposal{Proposal: p, Block: b}
}

// vote builds a signed vote event.
func (h *harness) vote(t ledger.VoteType, height uint64, round uint32, name string, from int) EventVote {
	var id crypto.Hash
	if name != "nil" {
		id = h.block(name, height).Hash()
	}
	v := &ledger.Vote{Type: t, Height: height, Round: round, BlockID: id}
	v.Sign(testChain, h.keys[from])
	return EventVote{Vote: v}
}

// parseEvents turns one script line's event part into events.
func (h *harness) parseEvents(line string) []Event {
	f := strings.Fields(line)
	opts := map[string]string{}
	var args []string
	for _, w := range f[1:] {
		if k, v, ok := strings.Cut(w, "="); ok {
			opts[k] = v
		} else {
			args = append(args, w)
		}
	}
	need := func(n int) {
		if len(args) != n {
			h.t.Fatalf("%q: want %d arguments", line, n)
		}
	}
	switch f[0] {
	case "start":
		need(1)
		n, err := strconv.ParseUint(args[0], 10, 64)
		if err != nil {
			h.t.Fatalf("%q: %v", line, err)
		}
		return []Event{EventNewHeight{Height: n}}
	case "proposal":
		need(2)
		hh, rr := parseHR(h.t, args[0])
		pol := int32(-1)
		if s, ok := opts["pol"]; ok {
			n, err := strconv.Atoi(s)
			if err != nil {
				h.t.Fatalf("%q: %v", line, err)
			}
			pol = int32(n)
		}
		from := -1
		if s, ok := opts["from"]; ok {
			from = h.validator(s)
		}
		return []Event{h.proposal(hh, rr, args[1], pol, from)}
	case "prevote", "precommit":
		need(2)
		hh, rr := parseHR(h.t, args[0])
		t := ledger.Prevote
		if f[0] == "precommit" {
			t = ledger.Precommit
		}
		var evs []Event
		for _, s := range strings.Split(opts["from"], ",") {
			evs = append(evs, h.vote(t, hh, rr, args[1], h.validator(s)))
		}
		return evs
	case "timeout":
		need(2)
		hh, rr := parseHR(h.t, args[1])
		kinds := map[string]TimeoutKind{"propose": TimeoutPropose, "prevote": TimeoutPrevote, "precommit": TimeoutPrecommit}
		k, ok := kinds[args[0]]
		if !ok {
			h.t.Fatalf("%q: unknown timeout", line)
		}
		return []Event{EventTimeout{Height: hh, Round: rr, Kind: k}}
	case "value":
		need(2)
		hh, rr := parseHR(h.t, args[0])
		return []Event{EventProposeValue{Height: hh, Round: rr, Block: h.block(args[1], hh)}}
	case "state":
		return nil
	}
	h.t.Fatalf("unknown event %q", line)
	return nil
}

func (h *harness) formatEffect(e Effect) string {
	switch e := e.(type) {
	case EffectBroadcastProposal:
		p := e.Proposal
		return fmt.Sprintf("proposal %d/%d %s pol=%d", p.Height, p.Round, h.name(p.BlockID), p.POLRound)
	case EffectBroadcastVote:
		v := e.Vote
		return fmt.Sprintf("%s %d/%d %s", v.Type, v.Height, v.Round, h.name(v.BlockID))
	case EffectScheduleTimeout:
		return fmt.Sprintf("timeout %s %d/%d", e.Kind, e.Height, e.Round)
	case EffectRequestValue:
		return fmt.Sprintf("request %d/%d", e.Height, e.Round)
	case EffectDecide:
		return fmt.Sprintf("decide %d/%d %s sigs=%d", e.Height, e.Round, h.name(e.Block.Hash()), len(e.Commit.Sigs))
	case EffectEvidence:
		a, b := e.Evidence.VoteA, e.Evidence.VoteB
		i, _ := h.vals.ByAddress(a.Validator)
		pair := []string{h.name(a.BlockID), h.name(b.BlockID)}
		sort.Strings(pair)
		return fmt.Sprintf("evidence %s %d/%d v%d %s/%s", a.Type, a.Height, a.Round, i, pair[0], pair[1])
	}
	return e.String()
}

func errorName(err error) string {
	for _, c := range []struct {
		err  error
		name string
	}{{ErrStale, "stale"}, {ErrDuplicate, "duplicate"}, {ErrTooFarAhead, "too-far-ahead"}, {ErrNotValidator, "not-validator"},
		{ErrWrongProposer, "wrong-proposer"}, {ErrMalformed, "malformed"}, {ErrHeightSequence, "sequence"}} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return err.Error()
}

func (h *harness) stateString() string {
	s := h.m.State()
	lock := fmt.Sprintf("%d/%s", s.LockedRound, h.name(s.LockedValue))
	valid := fmt.Sprintf("%d/%s", s.ValidRound, h.name(s.ValidValue))
	return fmt.Sprintf("state %d/%d %s locked=%s valid=%s", s.Height, s.Round, s.Step, lock, valid)
}

// run executes a script, failing the test at the first line whose effects
// differ from the expected ones.
func (h *harness) run(script string) {
	h.t.Helper()
	for n, raw := range strings.Split(script, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		in, want, _ := strings.Cut(line, "->")
		in, want = strings.TrimSpace(in), strings.TrimSpace(want)
		var got []string
		if strings.Fields(in)[0] == "state" {
			got = append(got, h.stateString())
		}
		for _, ev := range h.parseEvents(in) {
			effects, err := h.m.Step(ev)
			if err != nil {
				got = append(got, "error "+errorName(err))
				continue
			}
			for _, e := range effects {
				got = append(got, h.formatEffect(e))
			}
		}
		if g := strings.Join(got, "; "); g != want {
			h.t.Fatalf("line %d: %s\n got: %s\nwant: %s", n+1, in, g, want)
		}
	}
}
