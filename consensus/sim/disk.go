package sim

import (
	"time"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/consensus/wal"
)

// diskNode is what the disk-fault node (FaultDisk) keeps about the writes
// its disk lost. Only the WAL and the block store lose writes: the
// signing state is intact, as it must be for a validator not to sign
// twice (a node cannot survive losing it on its own).
type diskNode struct {
	faults DiskFault
	// The signer's last signed height and round when the disk last lost
	// writes: the machine, having forgotten what it signed there, may ask
	// again, and the signer must refuse (counted, not a violation).
	lostHeight uint64
	lostRound  uint32
	// lostUntil: the store lost committed blocks up to this height that
	// the WAL does not hold (the signer signed above them). The node
	// fetches them from peers, storing what a catch-up answer brings
	// without deciding it, and starts its machine again (block sync).
	lostUntil uint64
}

// diskImage is a copy of a node's disk (the WAL and the block store) at
// one moment, for a rollback.
type diskImage struct {
	wal   wal.MemImage
	store *chainStore
}

// planDisk draws the disk faults of the disk-fault node: one to three
// crashes in the fault phase, each losing writes in one of the ways the
// run's DiskFault allows.
func (s *simulation) planDisk() {
	var n *node
	for _, nd := range s.nodes {
		if nd.disk != nil {
			n = nd
		}
	}
	if n == nil {
		return
	}
	var kinds []DiskFault
	for _, k := range DiskFaults {
		if n.disk.faults&k != 0 {
			kinds = append(kinds, k)
		}
	}
	r := s.frng
	phase := s.opts.FaultPhase
	for k := 1 + r.IntN(3); k > 0; k-- {
		kind := kinds[r.IntN(len(kinds))]
		at := 300*time.Millisecond + time.Duration(r.Int64N(int64(phase-300*time.Millisecond)))
		down := time.Duration(100+r.IntN(2000)) * time.Millisecond
		lose := 1 + r.IntN(8)
		var img *diskImage
		if kind == DiskRollback {
			before := time.Duration(300+r.IntN(2700)) * time.Millisecond
			s.after(max(0, at-before), func() { img = n.diskImage() })
		}
		s.after(at, func() {
			if !n.up || s.healed {
				return
			}
			n.loseWrites(kind, down, lose, img)
		})
	}
}

// diskImage copies what the disk holds now.
func (n *node) diskImage() *diskImage {
	n.s.tracef(n, "disk image taken at stored height %d, %d WAL records", n.store.height(), n.log.Len())
	return &diskImage{wal: n.log.Image(), store: n.store.clone()}
}

// loseWrites crashes the node and has its disk lose writes: the store its
// last one or two blocks, the WAL its last lose records (synced or not),
// or both go back to img.
func (n *node) loseWrites(kind DiskFault, down time.Duration, lose int, img *diskImage) {
	s := n.s
	if kind == DiskRollback && img == nil {
		return
	}
	ls, err := n.pvStore.Load()
	if err != nil {
		s.check.fail(InvRestart, n, "signing state: %v", err)
		return
	}
	switch kind {
	case DiskStore:
		// The last block's records stay in the WAL until the next height
		// is decided: when the WAL holds its end marker (it did not
		// come by block sync, and no earlier fault lost it), the replay
		// decides it again and must come back to the state the node
		// crashed in. A second block is beyond the WAL.
		blocks := 1 + n.rng.IntN(2)
		if uint64(blocks) > n.store.height() {
			return
		}
		n.crash(down, blocks == 1 && n.walEnds(n.store.height()))
		n.store = n.store.without(blocks)
		s.tracef(n, "DISK: the block store lost its last %d block(s), now at height %d", blocks, n.store.height())
	case DiskWAL:
		n.crash(down, false)
		lost := n.log.LoseTail(lose)
		s.tracef(n, "DISK: the WAL lost its last %d records, synced ones included", lost)
	case DiskRollback:
		n.crash(down, false)
		n.log.Restore(img.wal)
		n.store = img.store.clone()
		s.tracef(n, "DISK: WAL and block store rolled back to an image at stored height %d", n.store.height())
	}
	s.stats.DiskFaults++
	d := n.disk
	if ls.Height > d.lostHeight || (ls.Height == d.lostHeight && ls.Round > d.lostRound) {
		d.lostHeight, d.lostRound = ls.Height, ls.Round
	}
}

// walEnds reports whether the WAL holds the end marker of height h.
func (n *node) walEnds(h uint64) bool {
	found := false
	_ = n.log.Replay(h, func(r wal.Record) error {
		found = found || r.Kind == wal.KindEndHeight
		return nil
	})
	return found
}

// checkStore is the node's check after the replay (node/signcheck.go): a
// last signature above the stored height plus one means committed blocks
// are missing from the store and the WAL did not hold them; the node
// fetches them from peers.
func (n *node) checkStore() {
	d := n.disk
	if d == nil {
		return
	}
	ls, err := n.pvStore.Load()
	if err != nil {
		n.s.check.fail(InvRestart, n, "signing state: %v", err)
		return
	}
	if ls.Height > n.store.height()+1 {
		d.lostUntil = ls.Height - 1
		n.s.tracef(n, "store at height %d, signed at %d: fetching blocks up to %d from peers", n.store.height(), ls.Height, d.lostUntil)
	}
}

// blockSync stores the decided block a catch-up answer brings, the way
// the node's block sync does: its commit verified, without the machine,
// which then starts again from the store (and replays the WAL of the
// height after it).
func (n *node) blockSync(m *message) {
	s := n.s
	c := m.commit
	vals, err := nodeSets{n}.ValidatorsAt(c.Height)
	if err == nil {
		err = c.Verify(s.chainID, vals, c.Height, m.block.Hash())
	}
	if err != nil {
		s.check.fail(InvCommit, n, "block sync: commit of h=%d: %v", c.Height, err)
		return
	}
	d := consensus.EffectDecide{Height: c.Height, Round: c.Round, Block: m.block, Commit: c, Proposal: m.proposal}
	if err := (simChain{n}).Store(d); err != nil {
		return
	}
	s.stats.BlockSynced++
	s.tracef(n, "block sync: stored h=%d %s", c.Height, consensus.ShortID(m.block.Hash()))
	n.inc++ // the old machine's timers are void
	n.begin()
}

// clone returns a copy of the store that shares nothing mutable with it.
func (c *chainStore) clone() *chainStore {
	return &chainStore{s: c.s, state: c.state, State: c.State.Clone(), blocks: append([]committedBlock(nil), c.blocks...), early: c.early}
}

// without returns the store as it was before its last k blocks: built
// again from the genesis state.
func (c *chainStore) without(k int) *chainStore {
	d := newChainStore(c.s)
	d.early = c.early
	for _, b := range c.blocks[:len(c.blocks)-k] {
		if err := d.apply(consensus.EffectDecide{Height: b.block.Height(), Block: b.block, Commit: b.commit, Proposal: b.proposal}); err != nil {
			panic("sim: a stored block does not apply again: " + err.Error()) // the store was valid
		}
	}
	return d
}
