package consensus

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// TestNewRejectsBadConfig checks that a misconfigured machine is refused
// at construction rather than misbehaving later.
func TestNewRejectsBadConfig(t *testing.T) {
	_, vals := testKeys(4)
	valid := func(*ledger.Block) error { return nil }
	stranger, _ := crypto.PrivKeyFromSeed(make([]byte, 32))
	tests := []struct {
		name   string
		cfg    Config
		height uint64
	}{
		{"empty chain ID", Config{Validators: Static(vals), ValidValue: valid}, 1},
		{"no validator set", Config{ChainID: testChain, ValidValue: valid}, 1},
		{"no valid(v)", Config{ChainID: testChain, Validators: Static(vals)}, 1},
		{"height zero", Config{ChainID: testChain, Validators: Static(vals), ValidValue: valid}, 0},
		{"no set for the next height", Config{ChainID: testChain, Validators: setsUpTo{vals, 1}, ValidValue: valid, Self: stranger.PubKey().Address()}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, tc.height); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}

// TestDecisionCarriesAVerifiableCommit checks that the commit of a
// decision verifies against the validator set, and that a machine calls
// valid(v) once per block, however many rules ask.
func TestDecisionCarriesAVerifiableCommit(t *testing.T) {
	h := newHarness(t, 3)
	h.run(`
start 1                                -> timeout propose 1/0
proposal 1/0 A                         -> prevote 1/0 A
prevote 1/0 A from=v0,v1,v2,v3         -> precommit 1/0 A
precommit 1/0 A from=v0,v1
`)
	effects, err := h.m.Step(h.vote(ledger.Precommit, 1, 0, "A", 3))
	if err != nil || len(effects) != 1 {
		t.Fatalf("effects %v, err %v; want one decision", effects, err)
	}
	d, ok := effects[0].(EffectDecide)
	if !ok {
		t.Fatalf("effect %s, want a decision", effects[0])
	}
	if err := d.Commit.Verify(testChain, h.vals, 1, d.Block.Hash()); err != nil {
		t.Fatalf("commit does not verify: %v", err)
	}
	if d.Proposal == nil || d.Proposal.BlockID != d.Block.Hash() {
		t.Fatal("decision without the proposal of its block")
	}
	if h.checked != 1 {
		t.Fatalf("valid(v) called %d times, want once", h.checked)
	}
}

// TestTimeoutDurationGrowsPerRound checks base + round*delta per kind.
func TestTimeoutDurationGrowsPerRound(t *testing.T) {
	p := ledger.DefaultConsensusParams()
	tests := []struct {
		kind  TimeoutKind
		round uint32
		want  time.Duration
	}{
		{TimeoutPropose, 0, time.Second},
		{TimeoutPropose, 4, 3 * time.Second},
		{TimeoutPrevote, 0, 500 * time.Millisecond},
		{TimeoutPrevote, 2, time.Second},
		{TimeoutPrecommit, 1, 750 * time.Millisecond},
	}
	for _, tc := range tests {
		if got := TimeoutDuration(p, tc.kind, tc.round); got != tc.want {
			t.Errorf("timeout %s round %d = %s, want %s", tc.kind, tc.round, got, tc.want)
		}
	}
}

// randomEvents draws a stream of plausible events for four validators
// over a few heights and rounds: proposals (valid or not), votes of every
// kind (equivocations included) and timeouts, in a random order.
func randomEvents(h *harness, r *rand.Rand, n int) []Event {
	names := []string{"A", "B", "Xbad"}
	var out []Event
	height := uint64(1)
	for len(out) < n {
		round := uint32(r.IntN(4))
		name := names[r.IntN(len(names))]
		hh := height + uint64(r.IntN(2))
		switch r.IntN(10) {
		case 0:
			out = append(out, EventNewHeight{Height: hh})
			if hh > height && r.IntN(2) == 0 {
				height = hh
			}
		case 1:
			pol := int32(-1)
			if round > 0 && r.IntN(2) == 0 {
				pol = int32(r.IntN(int(round)))
			}
			out = append(out, h.proposal(hh, round, name, pol, -1))
		case 2, 3:
			out = append(out, EventTimeout{Height: hh, Round: round, Kind: TimeoutKind(1 + r.IntN(3))})
		case 4:
			out = append(out, EventProposeValue{Height: hh, Round: round, Block: h.block(name, hh)})
		default:
			t := ledger.Prevote
			if r.IntN(2) == 0 {
				t = ledger.Precommit
			}
			if r.IntN(4) == 0 {
				name = "nil"
			}
			out = append(out, h.vote(t, hh, round, name, r.IntN(4)))
		}
	}
	return out
}

// TestReplayReproducesTheMachine is the WAL's premise as a property: feed
// a random stream to a machine, keep the events it accepted (what the
// driver logs), replay those into a fresh machine, and get the same
// effects, event by event, and the same final state.
func TestReplayReproducesTheMachine(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			self := int(seed%5) - 1 // non-validator and every validator
			h := newHarness(t, self)
			r := rand.New(rand.NewPCG(seed, 1))
			var logged []Event
			var effects [][]Effect
			for _, ev := range randomEvents(h, r, 300) {
				eff, err := h.m.Step(ev)
				if err != nil {
					continue
				}
				logged = append(logged, ev)
				effects = append(effects, eff)
			}
			replay := newHarness(t, self)
			replay.blocks, replay.names = h.blocks, h.names
			for i, ev := range logged {
				eff, err := replay.m.Step(ev)
				if err != nil {
					t.Fatalf("event %d (%s) refused on replay: %v", i, ev, err)
				}
				if !reflect.DeepEqual(eff, effects[i]) {
					t.Fatalf("event %d (%s): replay effects %v, first run %v", i, ev, eff, effects[i])
				}
			}
			if got, want := replay.m.State(), h.m.State(); got != want {
				t.Fatalf("replay ends in %s, first run in %s", got, want)
			}
		})
	}
}

// TestRefusedEventsChangeNothing checks that an event Step refuses leaves
// the machine exactly as it was: the same event stream with refused
// events removed gives the same effects.
func TestRefusedEventsChangeNothing(t *testing.T) {
	h := newHarness(t, 3)
	h.run("start 1 -> timeout propose 1/0")
	before := h.m.State()
	for _, ev := range []Event{
		EventProposal{},                      // malformed
		EventVote{},                          // malformed
		h.proposal(1, 0, "A", -1, 2),         // wrong proposer
		h.vote(ledger.Prevote, 3, 0, "A", 0), // too far ahead
		EventTimeout{Height: 1, Round: 2, Kind: TimeoutPropose},
		EventTimeout{Height: 1, Round: 0, Kind: 9},
		EventProposeValue{Height: 1, Round: 0, Block: h.block("A", 1)}, // not the proposer
		EventNewHeight{Height: 5},
	} {
		if eff, err := h.m.Step(ev); err == nil {
			t.Fatalf("%s accepted with effects %v", ev, eff)
		}
	}
	if after := h.m.State(); after != before {
		t.Fatalf("state moved from %s to %s on refused events", before, after)
	}
	var stale error
	_, stale = h.m.Step(EventTimeout{Height: 1, Round: 3, Kind: TimeoutPrevote})
	if !errors.Is(stale, ErrStale) {
		t.Fatalf("old timeout: err %v, want ErrStale", stale)
	}
}

// drivenEvents runs machine h.m on a random stream that reaches quorums:
// messages mostly for its current height and round, each round with a
// favoured block most votes name, equivocations, stale and early messages,
// timeouts, and its own messages fed back signed (as a driver does), with
// its value requests answered. It calls check after every accepted event.
func drivenEvents(h *harness, r *rand.Rand, n int, check func(ev Event, before, after RoundState, eff []Effect)) {
	names := []string{"A", "B", "Xbad"}
	favoured := func(round uint32) string { return names[(int(round)+int(h.m.Height()))%2] }
	var own []Event // the machine's own messages, signed, not yet fed back
	for i := 0; i < n; i++ {
		height, round := h.m.Height(), h.m.Round()
		if r.IntN(5) == 0 {
			round += 1 + uint32(r.IntN(2))
		} else if round > 0 && r.IntN(8) == 0 {
			round--
		}
		name := favoured(round)
		if r.IntN(5) == 0 {
			name = names[r.IntN(len(names))]
		}
		var ev Event
		switch k := r.IntN(20); {
		case len(own) > 0 && k < 6:
			ev, own = own[0], own[1:]
		case h.m.State().Step == StepNewHeight && k < 10:
			ev = EventNewHeight{Height: height}
		case h.m.State().Step == StepDecided && k < 10:
			ev = EventNewHeight{Height: height + 1}
		case k < 9:
			pol := int32(-1)
			if round > 0 && r.IntN(3) == 0 {
				pol = int32(r.IntN(int(round)))
			}
			ev = h.proposal(height, round, name, pol, -1)
		case k < 11:
			ev = EventTimeout{Height: height, Round: h.m.Round(), Kind: TimeoutKind(1 + r.IntN(3))}
		default:
			t := ledger.Prevote
			if r.IntN(2) == 0 {
				t = ledger.Precommit
			}
			if r.IntN(6) == 0 {
				name = "nil"
			}
			ev = h.vote(t, height+uint64(r.IntN(8)/7), round, name, r.IntN(len(h.keys)))
		}
		before := h.m.State()
		eff, err := h.m.Step(ev)
		if err != nil {
			continue
		}
		check(ev, before, h.m.State(), eff)
		for _, e := range eff {
			switch e := e.(type) {
			case EffectBroadcastVote:
				v := e.Vote
				v.Sign(testChain, h.keys[h.self])
				own = append(own, EventVote{Vote: &v})
			case EffectBroadcastProposal:
				p := e.Proposal
				p.Sign(testChain, h.keys[h.self])
				own = append(own, EventProposal{Proposal: &p, Block: e.Block})
			case EffectRequestValue:
				own = append(own, EventProposeValue{Height: e.Height, Round: e.Round, Block: h.block(favoured(e.Round), e.Height)})
			}
		}
	}
}

// TestMachineActsOncePerRound checks, over random event streams, that the
// machine acts on each guard at most once per height and round: the "for
// the first time" anchors (L34, L36, L47) and the step, round and decision
// changes that make the other rules fire once. Per (height, round) it
// schedules each timeout at most once, proposes and requests a value at
// most once, casts at most one prevote and one precommit, and records a
// valid value (L42-L43) at most once; per height it decides at most once.
// A rule that fired without setting its anchor would loop in applyRules,
// which panics past maxFiringsPerStep; one whose anchor a later event
// cleared would act twice here.
func TestMachineActsOncePerRound(t *testing.T) {
	type key struct {
		height uint64
		round  uint32
		what   string
	}
	reached := map[string]int{} // over all seeds: the streams reach the rules under test
	for seed := uint64(0); seed < 300; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			self := int(seed%5) - 1 // non-validator and every validator
			h := newHarness(t, self)
			r := rand.New(rand.NewPCG(seed, 3))
			seen := map[key]int{}
			drivenEvents(h, r, 400, func(ev Event, before, after RoundState, eff []Effect) {
				act := func(k key) {
					seen[k]++
					if seen[k] > 1 {
						t.Fatalf("seed %d: %s at h=%d r=%d twice; second time on %s, effects %v", seed, k.what, k.height, k.round, ev, eff)
					}
					reached[k.what]++
				}
				for _, e := range eff {
					switch e := e.(type) {
					case EffectBroadcastVote:
						act(key{e.Vote.Height, e.Vote.Round, e.Vote.Type.String()})
					case EffectScheduleTimeout:
						act(key{e.Height, e.Round, "timeout " + e.Kind.String()})
					case EffectBroadcastProposal:
						act(key{e.Proposal.Height, e.Proposal.Round, "proposal"})
					case EffectRequestValue:
						act(key{e.Height, e.Round, "request"})
					case EffectDecide:
						act(key{e.Height, 0, "decide"})
					}
				}
				// L42-L43 set validRound to the current round; a second
				// firing of L36 in the round would set it again.
				if after.Height == before.Height && after.ValidRound >= 0 && uint32(after.ValidRound) == after.Round &&
					(after.ValidRound != before.ValidRound || after.ValidValue != before.ValidValue) {
					act(key{after.Height, after.Round, "valid value"})
				}
			})
		})
	}
	for _, what := range []string{"prevote", "precommit", "timeout propose", "timeout prevote", "timeout precommit", "proposal", "request", "decide", "valid value"} {
		if reached[what] < 20 {
			t.Errorf("random streams reached %q %d times: too few to exercise it", what, reached[what])
		}
	}
	t.Logf("reached: %v", reached)
}

// setsUpTo knows the set of heights up to top only.
type setsUpTo struct {
	vals *ledger.ValidatorSet
	top  uint64
}

func (s setsUpTo) PrioritiesAt(h uint64) (*ledger.ProposerPriorities, error) {
	if h > s.top {
		return nil, fmt.Errorf("height %d not known", h)
	}
	return Static(s.vals).PrioritiesAt(h)
}
