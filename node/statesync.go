package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/snapshot"
	"github.com/ledgerd/ledgerd/light"
	"github.com/ledgerd/ledgerd/p2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

// stateSyncer restores the state of a node with an empty store from its
// peers' snapshots: it discovers the offers, verifies a snapshot's height
// against a header the light client verified from the genesis with the
// peers' light blocks, and fetches and imports the chunks, each verified
// on arrival against that header's app hash.
type stateSyncer struct {
	net   *p2p.Node
	trust *light.Trust
	prov  *peerLightProvider
	log   *slog.Logger
	// genesisHash names the chain the restore belongs to.
	genesisHash crypto.Hash

	mu       sync.Mutex
	progress *p2p.FetchProgress // of the chunk fetch under way, if any
}

// progressLogEvery is how often the chunk fetch's progress is logged.
const progressLogEvery = 5 * time.Second

// lightWitnesses is how many peers must serve the same light block.
const lightWitnesses = 2

func newStateSyncer(net *p2p.Node, trust *light.Trust, genesisHash crypto.Hash, log *slog.Logger) *stateSyncer {
	return &stateSyncer{net: net, trust: trust, prov: newPeerLightProvider(net.LightBlocks(lightWitnesses)),
		genesisHash: genesisHash, log: log}
}

// pickOffer chooses, among the offers of a format this node restores
// that rejected does not refuse, the newest height, and at that height
// the snapshot the most peers offer. It reports false when none is left.
func pickOffer(offers []p2p.PeerOffers, rejected func(p2p.SnapshotOffer) bool) (p2p.PeerOffers, bool) {
	var best p2p.PeerOffers
	found := false
	for _, o := range offers {
		if o.Offer.Format != snapshot.Format || len(o.Peers) == 0 || (rejected != nil && rejected(o.Offer)) {
			continue
		}
		if !found || o.Offer.Height > best.Offer.Height ||
			(o.Offer.Height == best.Offer.Height && len(o.Peers) > len(best.Peers)) {
			best, found = o, true
		}
	}
	return best, found
}

// offeringPeers counts the distinct peers behind offers.
func offeringPeers(offers []p2p.PeerOffers) int {
	seen := make(map[peer.ID]bool)
	for _, o := range offers {
		for _, p := range o.Peers {
			seen[p] = true
		}
	}
	return len(seen)
}

// discover asks the peers for their offers, again every round, until at
// least minPeers peers offer snapshots or timeout passes; it returns the
// last answers (possibly from fewer peers, when the timeout passed).
func (s *stateSyncer) discover(ctx context.Context, minPeers int, timeout, round time.Duration) ([]p2p.PeerOffers, error) {
	deadline := time.Now().Add(timeout)
	for {
		offers := s.net.DiscoverSnapshots(ctx, round)
		if n := offeringPeers(offers); n >= minPeers || !time.Now().Before(deadline) {
			s.log.Info("snapshots discovered", "offers", len(offers), "peers", n)
			return offers, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// DiscoverSnapshots waited round for answers already; ask again,
		// newly connected peers included.
	}
}

// verifiedSnapshot is a snapshot whose height the light client verified.
type verifiedSnapshot struct {
	offer    p2p.PeerOffers
	manifest *snapshot.Manifest
	// header is the header of the snapshot's height, next that of the
	// height after, whose AppHash is the snapshot's state root.
	header, next *ledger.Header
}

// errSnapshotRefused is wrapped when a snapshot is refused for good (its
// manifest does not match the verified header): try another.
var errSnapshotRefused = errors.New("snapshot refused")

// verify verifies header H+1 (and H) of offer's height H with the light
// client, fetches the manifest and checks it against header H+1's app
// hash. A manifest that does not match is refused (errSnapshotRefused) and
// its offering peers, who all named it, are penalised; an error the light
// client blames on the light blocks is refused too.
func (s *stateSyncer) verify(ctx context.Context, offer p2p.PeerOffers) (*verifiedSnapshot, error) {
	h := offer.Offer.Height
	next, _, err := s.trust.VerifyHeader(ctx, s.prov, h+1)
	if err != nil {
		if errors.Is(err, light.ErrVerification) {
			return nil, fmt.Errorf("%w: header %d: %w", errSnapshotRefused, h+1, err)
		}
		return nil, fmt.Errorf("verify header %d: %w", h+1, err)
	}
	hdr, _, err := s.trust.VerifyHeader(ctx, s.prov, h)
	if err != nil {
		return nil, fmt.Errorf("verify header %d: %w", h, err)
	}
	raw, err := s.net.FetchManifest(ctx, offer.Offer, offer.Peers)
	if err != nil {
		return nil, fmt.Errorf("manifest of height %d: %w", h, err)
	}
	m, err := snapshot.DecodeManifest(raw)
	if err == nil {
		err = snapshot.VerifyManifest(m, h, next.AppHash)
	}
	if err != nil {
		for _, p := range offer.Peers {
			s.net.Penalize(p, p2p.PenaltyUnbackedClaim, fmt.Sprintf("offered a snapshot of height %d that header %d refutes: %v", h, h+1, err))
		}
		return nil, fmt.Errorf("%w: manifest of height %d: %w", errSnapshotRefused, h, err)
	}
	return &verifiedSnapshot{offer: offer, manifest: m, header: hdr, next: next}, nil
}

// chunkFault reports whether a Restorer.Add error blames the chunk (and
// so the peer that served it) rather than the manifest or this node.
func chunkFault(err error) bool {
	for _, e := range []error{snapshot.ErrChunkTooLarge, snapshot.ErrChunkMalformed, snapshot.ErrChunkStale,
		snapshot.ErrChunkIndex, snapshot.ErrChunkPosition, snapshot.ErrChunkLeaves, snapshot.ErrChunkProof} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// fetchChunks fetches every chunk of vs from its offering peers into r.
// A chunk that does not verify gets its peer banned (by p2p) and is asked
// of another; a failure of the import itself, or a manifest entry a
// verified chunk contradicts, stops the fetch. Progress is kept for the
// status and logged every progressLogEvery.
func (s *stateSyncer) fetchChunks(ctx context.Context, vs *verifiedSnapshot, r *snapshot.Restorer) error {
	var lastLog time.Time
	spec := p2p.FetchSpec{
		Height: vs.offer.Offer.Height, Chunks: vs.offer.Offer.Chunks, Peers: vs.offer.Peers,
		Verify: func(_ uint32, chunk []byte) error {
			err := r.Add(chunk)
			if err == nil || chunkFault(err) {
				return err
			}
			return fmt.Errorf("%w: %w", p2p.ErrAbort, err)
		},
		Progress: func(fp p2p.FetchProgress) {
			s.mu.Lock()
			s.progress = &fp
			s.mu.Unlock()
			if time.Since(lastLog) >= progressLogEvery || fp.Done == fp.Total {
				lastLog = time.Now()
				s.log.Info("state sync: chunks", "done", fp.Done, "total", fp.Total, "bytes", fp.Bytes,
					"rate_mb_s", fmt.Sprintf("%.1f", fp.BytesPerSecond/1e6), "eta", fp.ETA.Round(time.Second))
			}
		},
	}
	if err := s.net.FetchChunks(ctx, spec); err != nil {
		return fmt.Errorf("chunks of the snapshot of height %d: %w", spec.Height, err)
	}
	return r.Finish()
}

// fetchProgress returns the progress of the chunk fetch, if one started.
func (s *stateSyncer) fetchProgress() (p2p.FetchProgress, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.progress == nil {
		return p2p.FetchProgress{}, false
	}
	return *s.progress, true
}

// restoredState builds the ledger.State after the snapshot's height H
// for FinishRestore: the chain's identity, parameters, staking parameters,
// total supply and genesis time from the genesis doc; Height H, the last
// block's hash and time from the verified header H; the app hash from
// header H+1; the validator sets of H, H+1 and H+2, each checked against
// the hash a verified header names (H's ValidatorsHash, H+1's and H+2's
// as header H+1 names them); and prio, the proposer priorities of H+1,
// with those of H+2 carried one height on. The priorities are committed
// in no hash, so they are cross-checked: at the round of the commit that
// decided header H+1, they must name the proposer header H+1 carries.
func restoredState(doc *genesis.Doc, vs *verifiedSnapshot, sets [3]*ledger.ValidatorSet, prio *ledger.ProposerPriorities, commitNext *ledger.Commit) (*ledger.State, error) {
	h := vs.header.Height
	gst, _, err := doc.InitialState()
	if err != nil {
		return nil, fmt.Errorf("restored state: %w", err)
	}
	for i, want := range []crypto.Hash{vs.header.ValidatorsHash, vs.next.ValidatorsHash, vs.next.NextValidatorsHash} {
		if sets[i] == nil || sets[i].Hash() != want {
			return nil, fmt.Errorf("restored state: validator set of height %d does not match its verified header", h+uint64(i))
		}
	}
	if vs.header.NextValidatorsHash != vs.next.ValidatorsHash {
		return nil, fmt.Errorf("restored state: headers %d and %d name different sets for height %d", h, h+1, h+1)
	}
	if prio == nil || prio.Validators().Hash() != sets[1].Hash() {
		return nil, fmt.Errorf("restored state: proposer priorities not of the set of height %d", h+1)
	}
	if commitNext == nil || commitNext.Height != h+1 || commitNext.BlockID != vs.next.Hash() {
		return nil, fmt.Errorf("restored state: no commit of header %d to check the priorities by", h+1)
	}
	if i := prio.Proposer(commitNext.Round); sets[1].Get(i).PubKey.Address() != vs.next.Proposer {
		return nil, fmt.Errorf("restored state: the priorities name %s the proposer of height %d round %d, header %d says %s",
			sets[1].Get(i).PubKey.Address(), h+1, commitNext.Round, h+1, vs.next.Proposer)
	}
	st := gst.Copy()
	st.Height = h
	st.LastBlockHash = vs.header.Hash()
	st.LastBlockTime = vs.header.Time
	st.AppHash = vs.next.AppHash
	st.LastValidators, st.Validators, st.NextValidators = sets[0], sets[1], sets[2]
	st.Priorities = prio
	st.NextPriorities = prio.Next(sets[2])
	return st, nil
}

// errPrioritiesDisagree is wrapped when the peers that offered a snapshot
// answer with different proposer priorities for it: the snapshot is
// refused, since nothing says which answer is right.
var errPrioritiesDisagree = errors.New("peers disagree on the proposer priorities")

// fetchPriorities asks every peer that offered vs for the proposer
// priorities of height H+1 recorded with it and decodes each answer
// against vals, the verified set of H+1 (bounded by p2p's
// MaxSnapshotPrioritiesBytes and by maxPrioritiesFileBytes here). A peer
// whose bytes do not decode against the set is charged
// PenaltyUnbackedClaim and left out. They are accepted only if at least
// one peer answers and every peer whose answer decodes agrees;
// restoredState then checks them against header H+1's proposer.
func (s *stateSyncer) fetchPriorities(ctx context.Context, vs *verifiedSnapshot, vals *ledger.ValidatorSet) (*ledger.ProposerPriorities, error) {
	h := vs.header.Height
	answers := s.net.FetchSnapshotPriorities(ctx, h, vs.offer.Peers)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := agreePriorities(h, answers, vals, func(p peer.ID, reason string) {
		s.net.Penalize(p, p2p.PenaltyUnbackedClaim, reason)
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot of height %d (%d peers offered it): %w", h, len(vs.offer.Peers), err)
	}
	return p, nil
}

// agreePriorities decodes the peers' answers for the priorities of the
// snapshot at h against vals and returns them if at least one decodes and
// all that decode are equal. penalize is told of each peer whose answer
// does not decode, with the reason.
func agreePriorities(h uint64, answers []p2p.PeerPriorities, vals *ledger.ValidatorSet, penalize func(peer.ID, string)) (*ledger.ProposerPriorities, error) {
	var (
		agreed *ledger.ProposerPriorities
		from   peer.ID
	)
	for _, a := range answers {
		p, err := decodeSnapshotPriorities(a.Priorities, vals)
		if err != nil {
			penalize(a.Peer, fmt.Sprintf("proposer priorities of its snapshot at %d do not fit the verified set of %d: %v", h, h+1, err))
			continue
		}
		switch {
		case agreed == nil:
			agreed, from = p, a.Peer
		case !agreed.Equal(p):
			return nil, fmt.Errorf("%w: %s and %s", errPrioritiesDisagree, from, a.Peer)
		}
	}
	if agreed == nil {
		return nil, fmt.Errorf("proposer priorities: no peer served ones that decode (%d answered)", len(answers))
	}
	return agreed, nil
}

// errGotBlock stops the block sync that fetches the snapshot's block.
var errGotBlock = errors.New("got the block")

// fetchBlock fetches block H and its commit from the peers (block sync
// from H, stopped after the first block) and checks them against the
// verified header H and its validator set.
func (s *stateSyncer) fetchBlock(ctx context.Context, chainID string, hdr *ledger.Header, vals *ledger.ValidatorSet) (*ledger.Block, *ledger.Commit, error) {
	var (
		b *ledger.Block
		c *ledger.Commit
	)
	_, err := s.net.NewSyncer().Sync(ctx, hdr.Height, func(gb *ledger.Block, gc *ledger.Commit) error {
		b, c = gb, gc
		return errGotBlock
	})
	switch {
	case b == nil && err == nil:
		return nil, nil, fmt.Errorf("block %d: no peer serves it", hdr.Height)
	case b == nil:
		return nil, nil, fmt.Errorf("block %d: %w", hdr.Height, err)
	case b.Hash() != hdr.Hash():
		return nil, nil, fmt.Errorf("block %d: served %s, the verified header is %s", hdr.Height, b.Hash(), hdr.Hash())
	}
	if err := c.Verify(chainID, vals, hdr.Height, hdr.Hash()); err != nil {
		return nil, nil, fmt.Errorf("block %d: commit: %w", hdr.Height, err)
	}
	return b, c, nil
}
