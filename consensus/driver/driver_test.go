package driver_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/consensus/driver"
	"github.com/ledgerd/ledgerd/consensus/evidence"
	"github.com/ledgerd/ledgerd/consensus/wal"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/privval"
)

// What the scripts in consensus/testdata cannot reach cheaply: the bound
// on held signing effects, the gate's ordering when it opens between two
// effects, and the ways the driver stops on an error. The validator under
// test is index 0 of four of equal power; the test plays the other three.

const chainID = "driver-test"

type fixture struct {
	t      *testing.T
	keys   []crypto.PrivKey // by validator-set index
	vals   *ledger.ValidatorSet
	log    *wal.MemLog
	walErr func(wal.Record) error // fails an append when it returns an error
	chain  *fakeChain
	net    *fakeNet
	timers *fakeTimers
	gate   *fakeGate
	build  func(h uint64, r uint32) (*ledger.Block, error)
	d      *driver.Driver
}

func newFixture(t *testing.T, withGate bool) *fixture {
	t.Helper()
	var vs []ledger.Validator
	byAddr := map[crypto.Address]crypto.PrivKey{}
	for i := range 4 {
		seed := crypto.Sum([]byte(fmt.Sprintf("driver-test/%d", i)))
		k, err := crypto.PrivKeyFromSeed(seed[:])
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, ledger.Validator{PubKey: k.PubKey(), Power: 1})
		byAddr[k.PubKey().Address()] = k
	}
	set, err := ledger.NewValidatorSet(vs)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, vals: set, log: wal.NewMem(), chain: &fakeChain{}, net: &fakeNet{}, timers: &fakeTimers{}}
	for i := range set.Size() {
		f.keys = append(f.keys, byAddr[set.Get(i).Address()])
	}
	f.build = f.block
	signer, err := privval.New(f.keys[0], privval.NewMemStateStore())
	if err != nil {
		t.Fatal(err)
	}
	cfg := driver.Config{
		ChainID: chainID, Validators: consensus.Static(set), Self: set.Get(0).Address(),
		WAL: fakeWAL{f}, Signer: signer, Chain: f.chain, Builder: fakeBuilder{f},
		Network: f.net, Timers: f.timers, Evidence: evidence.NewPool(),
	}
	if withGate {
		f.gate = &fakeGate{}
		cfg.Gate = f.gate
	}
	f.d = driver.New(cfg)
	return f
}

// block is a block of height h built in round r: distinct per round.
func (f *fixture) block(h uint64, r uint32) (*ledger.Block, error) {
	b := &ledger.Block{Header: ledger.Header{ChainID: chainID, Height: h, Time: ledger.Timestamp(1 + int64(r)),
		ValidatorsHash: f.vals.Hash(), Proposer: f.vals.Get(0).Address()}}
	b.FillHeader()
	return b, nil
}

func (f *fixture) start() {
	f.t.Helper()
	if err := f.d.Start(); err != nil {
		f.t.Fatalf("Start: %v", err)
	}
	if f.d.State().Step == consensus.StepNewHeight {
		f.d.Input(consensus.EventNewHeight{Height: f.d.Height()})
	}
}

// vote feeds validator i's signed vote.
func (f *fixture) vote(i int, t ledger.VoteType, h uint64, r uint32, id crypto.Hash) {
	v := &ledger.Vote{Type: t, Height: h, Round: r, BlockID: id}
	v.Sign(chainID, f.keys[i])
	f.d.Input(consensus.EventVote{Vote: v})
}

type fakeWAL struct{ f *fixture }

func (w fakeWAL) Append(r wal.Record, sync bool) error {
	if w.f.walErr != nil {
		if err := w.f.walErr(r); err != nil {
			return err
		}
	}
	return w.f.log.Append(r, sync)
}
func (w fakeWAL) Replay(h uint64, fn func(wal.Record) error) error { return w.f.log.Replay(h, fn) }
func (w fakeWAL) Prune(below uint64) error                         { return w.f.log.Prune(below) }

type fakeChain struct {
	height   uint64
	storeErr error
	stored   []consensus.EffectDecide
}

func (c *fakeChain) Height() uint64               { return c.height }
func (c *fakeChain) Validate(*ledger.Block) error { return nil }
func (c *fakeChain) Store(d consensus.EffectDecide) error {
	if c.storeErr != nil {
		return c.storeErr
	}
	c.stored = append(c.stored, d)
	c.height = d.Height
	return nil
}

type fakeBuilder struct{ f *fixture }

func (b fakeBuilder) BuildBlock(h uint64, r uint32) (*ledger.Block, error) { return b.f.build(h, r) }

// fakeNet records what was sent, one line per message.
type fakeNet struct{ sent []string }

func (n *fakeNet) SendProposal(p *ledger.Proposal, _ *ledger.Block) {
	n.sent = append(n.sent, fmt.Sprintf("proposal %d/%d", p.Height, p.Round))
}
func (n *fakeNet) SendVote(v *ledger.Vote) {
	id := "nil"
	if !v.IsNil() {
		id = "block"
	}
	n.sent = append(n.sent, fmt.Sprintf("%s %d/%d %s", v.Type, v.Height, v.Round, id))
}
func (n *fakeNet) SendEvidence(*ledger.Evidence) { n.sent = append(n.sent, "evidence") }

type fakeTimers struct {
	timeouts []consensus.EventTimeout
	heights  []uint64
}

func (t *fakeTimers) ScheduleTimeout(ev consensus.EventTimeout) { t.timeouts = append(t.timeouts, ev) }
func (t *fakeTimers) ScheduleHeight(h uint64)                   { t.heights = append(t.heights, h) }

// fakeGate answers MaySign with open, and counts the calls.
type fakeGate struct {
	open  bool
	calls int
}

func (g *fakeGate) MaySign(uint64) bool { g.calls++; return g.open }

// TestWALAppendFailureStopsDriver: an input whose WAL append fails stops
// the driver with Err before any of its effects runs, and nothing is
// stepped after it.
func TestWALAppendFailureStopsDriver(t *testing.T) {
	f := newFixture(t, false)
	f.start() // round 0 is ours: proposal and prevote for b
	b, _ := f.block(1, 0)
	f.vote(1, ledger.Prevote, 1, 0, b.Hash())
	records, sent := f.log.Len(), len(f.net.sent)
	fail := errors.New("disk full")
	f.walErr = func(wal.Record) error { return fail }
	f.vote(2, ledger.Prevote, 1, 0, b.Hash()) // the polka: we would precommit
	if err := f.d.Err(); !errors.Is(err, fail) || !strings.Contains(err.Error(), "write WAL") {
		t.Fatalf("Err() = %v, want a wrapped %q", err, fail)
	}
	if !f.d.Stopped() {
		t.Fatal("Stopped() = false after a WAL failure")
	}
	if len(f.net.sent) != sent {
		t.Fatalf("sent %v after its input failed to reach the WAL", f.net.sent[sent:])
	}
	f.walErr = nil
	f.vote(3, ledger.Prevote, 1, 0, b.Hash())
	f.d.Input(consensus.EventTimeout{Height: 1, Round: 0, Kind: consensus.TimeoutPrevote})
	if len(f.net.sent) != sent || f.log.Len() != records {
		t.Fatalf("a stopped driver went on: sent %v, %d WAL records (had %d)", f.net.sent[sent:], f.log.Len(), records)
	}
}

// TestStoreFailureStopsDriver: a decided block that does not store stops
// the driver; no end marker is written and the next height is not
// scheduled.
func TestStoreFailureStopsDriver(t *testing.T) {
	f := newFixture(t, false)
	f.start()
	f.chain.storeErr = errors.New("apply: bad block")
	b, _ := f.block(1, 0) // our proposal of round 0
	for i := 1; i <= 3; i++ {
		f.vote(i, ledger.Prevote, 1, 0, b.Hash())
	}
	for i := 1; i <= 3; i++ {
		f.vote(i, ledger.Precommit, 1, 0, b.Hash())
	}
	if err := f.d.Err(); err == nil || !strings.Contains(err.Error(), "does not apply") {
		t.Fatalf("Err() = %v, want the store failure", err)
	}
	recs, _ := f.log.Records()
	for _, r := range recs {
		if r.Kind == wal.KindEndHeight {
			t.Fatal("end marker written for a block that was not stored")
		}
	}
	if len(f.timers.heights) != 0 {
		t.Fatalf("next height scheduled: %v", f.timers.heights)
	}
}

// TestStartFailures: a WAL that cannot be read, or holds a record that
// does not decode, makes Start fail with Err set.
func TestStartFailures(t *testing.T) {
	t.Run("replay error", func(t *testing.T) {
		f := newFixture(t, false)
		f.d = driver.New(driver.Config{ChainID: chainID, Validators: consensus.Static(f.vals), Self: f.vals.Get(0).Address(),
			WAL: failingReplay{}, Chain: f.chain, Builder: fakeBuilder{f}, Network: f.net, Timers: f.timers,
			Evidence: evidence.NewPool()})
		err := f.d.Start()
		if err == nil || !strings.Contains(err.Error(), "replay WAL") || f.d.Err() == nil {
			t.Fatalf("Start() = %v, Err() = %v; want the replay error in both", err, f.d.Err())
		}
	})
	t.Run("undecodable record", func(t *testing.T) {
		f := newFixture(t, false)
		if err := f.log.Append(wal.Record{Height: 1, Kind: wal.KindMessage, Data: []byte{0xff, 0x00}}, true); err != nil {
			t.Fatal(err)
		}
		err := f.d.Start()
		if err == nil || !strings.Contains(err.Error(), "WAL record of height 1") {
			t.Fatalf("Start() = %v, want an error naming the record's height", err)
		}
	})
}

type failingReplay struct{}

func (failingReplay) Append(wal.Record, bool) error { return nil }
func (failingReplay) Replay(uint64, func(wal.Record) error) error {
	return errors.New("read segment: input/output error")
}
func (failingReplay) Prune(uint64) error { return nil }

// TestBuilderErrorLeavesRoundWithoutProposal: a value that cannot be
// built leaves the round without a proposal; the propose timeout moves
// consensus on.
func TestBuilderErrorLeavesRoundWithoutProposal(t *testing.T) {
	f := newFixture(t, false)
	f.build = func(uint64, uint32) (*ledger.Block, error) { return nil, errors.New("mempool unavailable") }
	f.start()
	if len(f.net.sent) != 0 || f.d.Err() != nil {
		t.Fatalf("sent %v, Err() = %v; want nothing and no error", f.net.sent, f.d.Err())
	}
	if len(f.timers.timeouts) != 1 || f.timers.timeouts[0].Kind != consensus.TimeoutPropose {
		t.Fatalf("timeouts %v, want the propose timeout", f.timers.timeouts)
	}
	f.d.Input(f.timers.timeouts[0])
	if want := []string{"prevote 1/0 nil"}; fmt.Sprint(f.net.sent) != fmt.Sprint(want) {
		t.Fatalf("sent %v, want %v", f.net.sent, want)
	}
}

// TestGateKeepsOrder: once one signing effect is held, every later one is
// held behind it even if the gate opened meanwhile, and ReleaseHeld signs
// them in order, only when the gate allows it.
func TestGateKeepsOrder(t *testing.T) {
	f := newFixture(t, true)
	f.start() // round 0 is ours: the proposal is held
	if f.d.Held() != 1 || len(f.net.sent) != 0 {
		t.Fatalf("held %d, sent %v; want the proposal held", f.d.Held(), f.net.sent)
	}
	f.d.ReleaseHeld()
	if f.d.Held() != 1 {
		t.Fatal("ReleaseHeld released while the gate is closed")
	}
	// The gate opens, but ReleaseHeld is not called yet: the prevote the
	// propose timeout asks for must not overtake the held proposal.
	f.gate.open = true
	calls := f.gate.calls
	f.d.Input(consensus.EventTimeout{Height: 1, Round: 0, Kind: consensus.TimeoutPropose})
	if f.d.Held() != 2 || len(f.net.sent) != 0 {
		t.Fatalf("held %d, sent %v; want the prevote held behind the proposal", f.d.Held(), f.net.sent)
	}
	if f.gate.calls != calls {
		t.Fatal("the gate was asked while an effect was held: order could break")
	}
	f.d.ReleaseHeld()
	if want := []string{"proposal 1/0", "prevote 1/0 nil"}; fmt.Sprint(f.net.sent) != fmt.Sprint(want) || f.d.Held() != 0 {
		t.Fatalf("after release: sent %v, held %d; want %v, 0", f.net.sent, f.d.Held(), want)
	}
	// Both were fed back in that order: the WAL holds them so.
	recs, _ := f.log.Records()
	var own []string
	for _, r := range recs {
		ev, err := consensus.DecodeEvent(r.Data)
		if err != nil {
			continue
		}
		switch e := ev.(type) {
		case consensus.EventProposal:
			own = append(own, "proposal")
		case consensus.EventVote:
			own = append(own, e.Vote.Type.String())
		}
	}
	if want := []string{"proposal", "prevote"}; fmt.Sprint(own) != fmt.Sprint(want) {
		t.Fatalf("own messages in the WAL: %v, want %v", own, want)
	}
}

// TestMaxHeld: a gate that stays closed for hundreds of rounds holds at
// most MaxHeld signing effects, dropping the oldest; released, the newest
// MaxHeld are signed in order.
func TestMaxHeld(t *testing.T) {
	f := newFixture(t, true)
	f.start()
	produced := 1 // round 0's proposal
	var r uint32
	for produced <= driver.MaxHeld+10 {
		// Prevote nil on the propose timeout, precommit nil on the
		// others' nil prevotes, next round on the precommit timeout.
		f.d.Input(consensus.EventTimeout{Height: 1, Round: r, Kind: consensus.TimeoutPropose})
		for i := 1; i <= 3; i++ {
			f.vote(i, ledger.Prevote, 1, r, crypto.Hash{})
		}
		for i := 1; i <= 3; i++ {
			f.vote(i, ledger.Precommit, 1, r, crypto.Hash{})
		}
		f.d.Input(consensus.EventTimeout{Height: 1, Round: r, Kind: consensus.TimeoutPrecommit})
		r++
		produced += 2 // the prevote and the precommit of round r-1
		if consensus.NewProposerSelector(f.vals).Index(1, r) == 0 {
			produced++ // our proposal of round r
		}
		if f.d.Err() != nil {
			t.Fatalf("round %d: %v", r, f.d.Err())
		}
	}
	t.Logf("%d rounds, %d signing effects", r, produced)
	if f.d.Held() != driver.MaxHeld {
		t.Fatalf("held %d after %d signing effects, want MaxHeld (%d)", f.d.Held(), produced, driver.MaxHeld)
	}
	f.gate.open = true
	f.d.ReleaseHeld()
	// The held effects go out first, in order; what feeding them back
	// causes (a prevote for our own last proposal) follows.
	if len(f.net.sent) < driver.MaxHeld {
		t.Fatalf("released %d, want %d", len(f.net.sent), driver.MaxHeld)
	}
	released := f.net.sent[:driver.MaxHeld]
	// More than ten of the oldest were dropped: none of round 0 is left,
	// and the rest come in round order.
	prev := uint32(0)
	for i, s := range released {
		var kind, rest string
		var h uint64
		var round uint32
		if _, err := fmt.Sscanf(s, "%s %d/%d%s", &kind, &h, &round, &rest); err != nil && !strings.HasPrefix(s, "proposal") {
			t.Fatalf("sent %q: %v", s, err)
		}
		if i == 0 && round == 0 {
			t.Fatalf("the oldest effect (%s) was kept", s)
		}
		if round < prev {
			t.Fatalf("released out of order: %q after round %d", s, prev)
		}
		prev = round
	}
	last := released[len(released)-1]
	if want := fmt.Sprintf("proposal 1/%d", r); last != want && last != fmt.Sprintf("precommit 1/%d nil", r-1) {
		t.Fatalf("last released %q, want the newest held effect", last)
	}
}
