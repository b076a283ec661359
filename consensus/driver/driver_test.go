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
	obs    *fakeObserver
	pv     *privval.MemStateStore // the signing state: survives restart
	cfg    driver.Config
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
	f := &fixture{t: t, vals: set, log: wal.NewMem(), chain: &fakeChain{}, net: &fakeNet{}, timers: &fakeTimers{},
		obs: &fakeObserver{}, pv: privval.NewMemStateStore()}
	for i := range set.Size() {
		f.keys = append(f.keys, byAddr[set.Get(i).Address()])
	}
	f.build = f.block
	signer, err := privval.New(f.keys[0], f.pv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := driver.Config{
		ChainID: chainID, Validators: consensus.Static(set), Self: set.Get(0).Address(),
		WAL: fakeWAL{f}, Signer: signer, Chain: f.chain, Builder: fakeBuilder{f},
		Network: f.net, Timers: f.timers, Evidence: evidence.NewPool(), Observer: f.obs,
	}
	if withGate {
		f.gate = &fakeGate{}
		cfg.Gate = f.gate
	}
	f.cfg = cfg
	f.d = driver.New(cfg)
	return f
}

// restart kills the process and makes a new one on the same disk (WAL,
// store, signing state); the WAL keeps only its synced records. Start it
// with f.start.
func (f *fixture) restart() {
	f.t.Helper()
	f.d.Halt()
	f.log.Crash(0)
	signer, err := privval.New(f.keys[0], f.pv)
	if err != nil {
		f.t.Fatal(err)
	}
	cfg := f.cfg
	cfg.Signer = signer
	f.d = driver.New(cfg)
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

// proposerIndex is the index of the proposer of (h, r).
func (f *fixture) proposerIndex(h uint64, r uint32) int {
	prio, err := consensus.Static(f.vals).PrioritiesAt(h)
	if err != nil {
		f.t.Fatal(err)
	}
	return consensus.NewProposerSelector(prio).Index(r)
}

// proposal feeds the round's proposal of b, signed by its proposer.
func (f *fixture) proposal(b *ledger.Block, r uint32) {
	parts, _ := ledger.SplitBlock(b.Encode())
	p := &ledger.Proposal{Height: b.Height(), Round: r, POLRound: -1, BlockID: b.Hash(), Parts: parts}
	p.Sign(chainID, f.keys[f.proposerIndex(b.Height(), r)])
	f.d.Input(consensus.EventProposal{Proposal: p, Block: b})
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
func (w fakeWAL) MaxHeight() (uint64, error)                       { return w.f.log.MaxHeight() }

type fakeChain struct {
	height     uint64
	storeErr   error
	stored     []consensus.EffectDecide
	afterStore func() // runs once a block is stored (a crash there)
}

func (c *fakeChain) Height() uint64               { return c.height }
func (c *fakeChain) Validate(*ledger.Block) error { return nil }
func (c *fakeChain) Store(d consensus.EffectDecide) error {
	if c.storeErr != nil {
		return c.storeErr
	}
	c.stored = append(c.stored, d)
	c.height = d.Height
	if c.afterStore != nil {
		c.afterStore()
	}
	return nil
}

// lose forgets the last k blocks, as a store whose synced writes were
// lost.
func (c *fakeChain) lose(k int) {
	c.stored = c.stored[:len(c.stored)-k]
	c.height -= uint64(k)
}

// fakeObserver records the signer's refusals outside a replay.
type fakeObserver struct {
	driver.NopObserver
	refused []string
}

func (o *fakeObserver) SignerRefused(h uint64, r uint32, _ error) {
	o.refused = append(o.refused, fmt.Sprintf("%d/%d", h, r))
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
func (failingReplay) Prune(uint64) error         { return nil }
func (failingReplay) MaxHeight() (uint64, error) { return 0, nil }

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
		if f.proposerIndex(1, r) == 0 {
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

// blockBy is a block of height h built in round r by validator p.
func (f *fixture) blockBy(h uint64, r uint32, p int) *ledger.Block {
	b := &ledger.Block{Header: ledger.Header{ChainID: chainID, Height: h, Time: ledger.Timestamp(1 + int64(r)),
		ValidatorsHash: f.vals.Hash(), Proposer: f.vals.Get(p).Address()}}
	b.FillHeader()
	return b
}

// playToThree decides heights 1 and 2 and takes height 3 to this
// validator's precommit, each in round 0 with validators 1 and 2. It
// returns the blocks by height.
func (f *fixture) playToThree() map[uint64]*ledger.Block {
	f.t.Helper()
	blocks := map[uint64]*ledger.Block{}
	f.start()
	for h := uint64(1); h <= 3; h++ {
		if h > 1 {
			f.d.Input(consensus.EventNewHeight{Height: h})
		}
		p := f.proposerIndex(h, 0)
		b := f.blockBy(h, 0, p)
		if p != 0 {
			f.proposal(b, 0) // ours is built and proposed on the new height
		}
		blocks[h] = b
		for i := 1; i <= 2; i++ {
			f.vote(i, ledger.Prevote, h, 0, b.Hash())
		}
		if h == 3 {
			break
		}
		for i := 1; i <= 2; i++ {
			f.vote(i, ledger.Precommit, h, 0, b.Hash())
		}
		if f.chain.height != h {
			f.t.Fatalf("height %d not decided: %s", h, f.d.State())
		}
	}
	if st := f.d.State(); st.Height != 3 || st.Step != consensus.StepPrecommit || f.d.Err() != nil {
		f.t.Fatalf("after playing: %s, Err() = %v; want a precommit at height 3", st, f.d.Err())
	}
	return blocks
}

// endMarkers counts the WAL's end markers by height.
func (f *fixture) endMarkers() map[uint64]int {
	recs, _ := f.log.Records()
	n := map[uint64]int{}
	for _, r := range recs {
		if r.Kind == wal.KindEndHeight {
			n[r.Height]++
		}
	}
	return n
}

// withEndMarkerFirst rebuilds the WAL with an end marker of h before its
// records: what a FileLog holds when Prune deleted the segments of h's
// records but not the one its marker shares with the next height's.
func (f *fixture) withEndMarkerFirst(h uint64) {
	f.t.Helper()
	recs, _ := f.log.Records()
	l := wal.NewMem()
	for _, r := range append([]wal.Record{{Height: h, Kind: wal.KindEndHeight}}, recs...) {
		if err := l.Append(r, true); err != nil {
			f.t.Fatal(err)
		}
	}
	f.log = l
}

// TestLiveDecisionReplaysLaterHeights: the store lost blocks 1 and 2;
// the WAL holds height 2 (its decision) and height 3 (where this
// validator precommitted), and of height 1 nothing, or only its end
// marker. The machine decides 1 again from a peer's catch-up answer (the
// signer refuses its votes there: it signed at 3). The driver must then
// replay 2 and 3 from the WAL instead of starting 2 afresh behind a new
// end marker that hides them: block 2 is stored again without peers, the
// machine is back at its precommit of 3 (the signer refuses nothing
// there), and a process killed right after block 1 was stored, or after
// all this, comes back to the same state.
func TestLiveDecisionReplaysLaterHeights(t *testing.T) {
	for _, tc := range []struct {
		name       string
		keepMarker bool // a log that prunes whole segments kept height 1's marker
		killed     bool // the process dies right after storing block 1 again
	}{
		{"marker pruned", false, false},
		{"marker kept", true, false},
		{"marker pruned, killed after storing", false, true},
		{"marker kept, killed after storing", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, false)
			blocks := f.playToThree()
			want := f.d.State()

			f.restart()
			f.chain.lose(2)
			if tc.keepMarker {
				f.withEndMarkerFirst(1)
			}
			if tc.killed {
				f.chain.afterStore = func() { f.d.Halt() }
			}
			f.start()
			if st := f.d.State(); st.Height != 1 {
				t.Fatalf("after the restart: %s, want height 1 (nothing of it to replay)", st)
			}
			// The catch-up answer: height 1's proposal and commit.
			f.proposal(blocks[1], 0)
			for i := 0; i <= 2; i++ {
				f.vote(i, ledger.Precommit, 1, 0, blocks[1].Hash())
			}
			if f.chain.height < 1 {
				t.Fatalf("height 1 not decided again: %s", f.d.State())
			}
			if tc.killed {
				f.chain.afterStore = nil
				f.restart()
				f.start()
			}

			if f.chain.height != 2 || f.chain.stored[len(f.chain.stored)-1].Block.Hash() != blocks[2].Hash() {
				t.Fatalf("stored height %d, want block 2 stored again from the WAL's decision", f.chain.height)
			}
			if st := f.d.State(); st != want {
				t.Fatalf("machine at %s, want %s (the WAL's height 3, replayed)", st, want)
			}
			for _, r := range f.obs.refused {
				if !strings.HasPrefix(r, "1/") {
					t.Fatalf("the signer refused at %s (all refusals: %v): the machine forgot what it signed", r, f.obs.refused)
				}
			}
			for h, n := range f.endMarkers() {
				if n > 1 {
					t.Fatalf("%d end markers of height %d", n, h)
				}
			}
			if f.d.Err() != nil {
				t.Fatal(f.d.Err())
			}

			// Killed now, it comes back to the same place: nothing the
			// WAL holds is hidden.
			f.restart()
			f.start()
			if st := f.d.State(); st != want || f.chain.height != 2 {
				t.Fatalf("after another restart: %s, stored %d; want %s, 2", st, f.chain.height, want)
			}
			// And height 3 is decided with the precommit it signed before.
			for i := 1; i <= 2; i++ {
				f.vote(i, ledger.Precommit, 3, 0, blocks[3].Hash())
			}
			if f.chain.height != 3 {
				t.Fatalf("height 3 not decided: %s", f.d.State())
			}
		})
	}
}

// TestLiveDecisionReplaysEarlyInputs: the WAL holds height 1's end
// marker (its records were pruned) and a prevote of height 2 that came
// early; the store lost block 1. Deciding 1 live, the driver writes no
// second marker, replays height 2 (the early prevote), feeds the new
// machine the early input of height 2 the old one took meanwhile (and
// logs it), and has the host start height 2 after the commit timeout.
func TestLiveDecisionReplaysEarlyInputs(t *testing.T) {
	f := newFixture(t, false)
	b2 := f.blockBy(2, 0, f.proposerIndex(2, 0))
	early := func(i int) wal.Record {
		v := &ledger.Vote{Type: ledger.Prevote, Height: 2, Round: 0, BlockID: b2.Hash()}
		v.Sign(chainID, f.keys[i])
		data, err := consensus.EncodeEvent(consensus.EventVote{Vote: v})
		if err != nil {
			t.Fatal(err)
		}
		return wal.Record{Height: 2, Kind: wal.KindMessage, Data: data}
	}
	for _, r := range []wal.Record{{Height: 1, Kind: wal.KindEndHeight}, early(1)} {
		if err := f.log.Append(r, true); err != nil {
			t.Fatal(err)
		}
	}
	f.start() // round 0 of height 1 is ours
	b1, _ := f.block(1, 0)
	for i := 1; i <= 2; i++ {
		f.vote(i, ledger.Prevote, 1, 0, b1.Hash())
	}
	f.vote(2, ledger.Prevote, 2, 0, b2.Hash()) // early, held for the end marker
	for i := 1; i <= 2; i++ {
		f.vote(i, ledger.Precommit, 1, 0, b1.Hash())
	}
	if f.chain.height != 1 || f.d.Err() != nil {
		t.Fatalf("stored %d, Err() = %v; want block 1 stored", f.chain.height, f.d.Err())
	}
	if n := f.endMarkers()[1]; n != 1 {
		t.Fatalf("%d end markers of height 1, want the one the WAL held", n)
	}
	if st := f.d.State(); st.Height != 2 || st.Step != consensus.StepNewHeight {
		t.Fatalf("machine at %s, want height 2 waiting to start", st)
	}
	if hs := f.timers.heights; len(hs) == 0 || hs[len(hs)-1] != 2 {
		t.Fatalf("heights scheduled %v, want 2 last", hs)
	}
	f.d.Input(consensus.EventNewHeight{Height: 2})
	var have []int
	for _, v := range f.d.Machine().VotesFor(2, 0, ledger.Prevote, b2.Hash()) {
		i, _ := f.vals.ByAddress(v.Validator)
		have = append(have, i)
	}
	if fmt.Sprint(have) != "[1 2]" && fmt.Sprint(have) != "[2 1]" {
		t.Fatalf("the machine holds height 2's prevotes of %v, want validators 1 and 2", have)
	}
	var logged int
	if err := f.log.Replay(2, func(r wal.Record) error {
		if r.Kind == wal.KindMessage {
			if ev, err := consensus.DecodeEvent(r.Data); err == nil {
				if _, ok := ev.(consensus.EventVote); ok {
					logged++
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if logged != 2 {
		t.Fatalf("a replay of height 2 finds %d prevotes, want both early ones", logged)
	}
}
