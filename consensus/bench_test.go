package consensus

import (
	"fmt"
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
)

// benchHeights pre-signs the messages of a run of heights decided in round
// 0 by n validators: for each height the proposal, every prevote and every
// precommit, the machine's own among them (as the driver feeds them back).
func benchHeights(b *testing.B, n, heights int) (Config, [][]Event) {
	b.Helper()
	keys, vals := testKeys(n)
	sets := Static(vals)
	cfg := Config{ChainID: testChain, Validators: sets, Self: vals.Get(0).Address(),
		ValidValue: func(*ledger.Block) error { return nil }}
	out := make([][]Event, heights)
	for h := 1; h <= heights; h++ {
		prio, err := sets.PrioritiesAt(uint64(h))
		if err != nil {
			b.Fatal(err)
		}
		proposer := NewProposerSelector(prio).Index(0)
		blk := &ledger.Block{Header: ledger.Header{ChainID: testChain, Height: uint64(h), Time: ledger.Timestamp(h),
			ValidatorsHash: vals.Hash(), Proposer: vals.Get(proposer).Address()}}
		blk.FillHeader()
		parts, _ := ledger.SplitBlock(blk.Encode())
		p := &ledger.Proposal{Height: uint64(h), Round: 0, POLRound: -1, BlockID: blk.Hash(), Parts: parts}
		p.Sign(testChain, keys[proposer])
		evs := []Event{EventNewHeight{Height: uint64(h)}, EventProposal{Proposal: p, Block: blk}}
		for _, t := range []ledger.VoteType{ledger.Prevote, ledger.Precommit} {
			for i := range keys {
				v := &ledger.Vote{Type: t, Height: uint64(h), BlockID: blk.Hash()}
				v.Sign(testChain, keys[i])
				evs = append(evs, EventVote{Vote: v})
			}
		}
		out[h-1] = evs
	}
	return cfg, out
}

// BenchmarkMachineSteps measures Step throughput on the common path: a
// height decided in round 0, every message delivered once. It reports
// steps per second (each event is one step) for 4 and 100 validators.
func BenchmarkMachineSteps(b *testing.B) {
	for _, n := range []int{4, 100} {
		b.Run(fmt.Sprintf("validators=%d", n), func(b *testing.B) {
			const heights = 10
			cfg, script := benchHeights(b, n, heights)
			steps := 0
			for _, evs := range script {
				steps += len(evs)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m, err := New(cfg, 1)
				if err != nil {
					b.Fatal(err)
				}
				for _, evs := range script {
					for _, ev := range evs {
						m.Step(ev) // refusals (after the decision) are steps too
					}
				}
				if m.State().Step != StepDecided || m.Height() != heights {
					b.Fatalf("machine at %s, want height %d decided", m.State(), heights)
				}
			}
			b.ReportMetric(float64(b.N*steps)/b.Elapsed().Seconds(), "steps/s")
		})
	}
}
