package adversary

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/p2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Attack is one adversarial behaviour, run for a bounded time against
// every target while honest load goes on.
type Attack struct {
	// Name identifies the attack (table rows, -attacks filters).
	Name string
	// Origin says whether the attack held before issue 18 ("held") or is
	// one the issue found ("issue #N", its numbering).
	Origin string
	// Summary says what the attacker does.
	Summary string
	// Identifiable: the attacker's messages are provably invalid, so every
	// node must penalise (disconnect, ban or score down) its identities.
	Identifiable bool
	// MinDuration is how long the attack needs at least, whatever the
	// run's per-attack duration (restarting a validator, a twin syncing).
	MinDuration time.Duration
	// RestartsValidator: the attack stops and restarts a validator, whose
	// missed proposer turns cost failed rounds whatever the attacker
	// does; its latency limit allows one failed round (the round-0
	// timeouts), as the block-gap limit does.
	RestartsValidator bool

	// prepare, if set, runs before the attack's window opens (work the
	// attacker could do on its own machine beforehand).
	prepare func(s *Session)
	run     func(ctx context.Context, s *Session) error
}

// Topic kinds, as p2p.TopicNames keys them.
const (
	topicTx       = "tx"
	topicProposal = "proposal"
	topicVote     = "vote"
	topicEvidence = "evidence"
)

var topicKinds = []string{topicTx, topicProposal, topicVote, topicEvidence}

// Attacks returns every attack, the regression ones first.
func Attacks() []Attack {
	return []Attack{
		{Name: "garbage", Origin: "held", Identifiable: true,
			Summary: "random, truncated and wrong-kind messages, up to 2 MiB, on every topic", run: attackGarbage},
		{Name: "bad-sig-tx", Origin: "held", Identifiable: true,
			Summary: "transfer batches with one bad signature", run: attackBadSigTxs},
		{Name: "forged-consensus", Origin: "held", Identifiable: true,
			Summary: "votes, proposals, parts and evidence signed by a non-validator, for another chain, or with broken proofs", run: attackForged},
		{Name: "far-future", Origin: "held",
			Summary: "validator-signed votes and proposals at height+1e6 and at round 2^20 of the current height", run: attackFarFuture},
		{Name: "sybil-churn", Origin: "held",
			Summary: "fresh identities connect, exchange status and disconnect", run: attackSybilChurn},
		{Name: "equivocation", Origin: "held", MinDuration: 12 * time.Second,
			Summary: "a byzantine twin of one validator proposes and votes beside it, and the attacker signs conflicting prevotes with its key; evidence must be committed", run: attackEquivocation},
		{Name: "liar", Origin: "issue #1", Identifiable: true, MinDuration: p2p.DefaultSyncStall + 10*time.Second,
			Summary: "status claims height 2^40; block-sync requests get no blocks or stall", run: attackLiar},
		{Name: "junk-tx", Origin: "issue #2", Identifiable: true,
			Summary: "100 messages/s of 256 validly signed transfers that cannot execute (unfunded senders, nonces 1e6 ahead)", prepare: prepareJunkTxs, run: attackJunkTxs},
		{Name: "slot-holding", Origin: "issue #3", MinDuration: 35 * time.Second, RestartsValidator: true,
			Summary: "identities hold every block-sync and catch-up serving slot without sending a request while a validator restarts and must catch up", run: attackSlotHolding},
		{Name: "future-round", Origin: "issue #4",
			Summary: "validator-signed votes for the next height at rounds up to 2^20", run: attackFutureRound},
		{Name: "serving-drain", Origin: "issue #5", Identifiable: true,
			Summary: "repeated 64-block block-sync requests plus malformed block-sync and catch-up requests", run: attackServingDrain},
		{Name: "peer-slot-fill", Origin: "issue #6", MinDuration: p2p.DefaultEvictGrace + 25*time.Second,
			Summary: "max_peers+4 Sybil identities from as many addresses fill every node's peer slots, then an honest newcomer must get in within the eviction grace + 15 s", run: attackPeerSlotFill},
		{Name: "pubsub-garbage", Origin: "issue #7", Identifiable: true,
			Summary: "oversized (2 MiB) RPC frames and protobuf garbage on the gossipsub stream", run: attackPubsubGarbage},
		{Name: "no-handshake", Origin: "handshake", Identifiable: true, MinDuration: p2p.DefaultHandshakeTimeout + 5*time.Second,
			Summary: "16 identities from 16 addresses connect and ask for status but never run the chain handshake; they must be dropped and never counted as peers", run: attackNoHandshake},
		{Name: "per-ip-cap", Origin: "peer slots",
			Summary: "3 x max_peers_per_ip identities from one address complete the handshake; no node may hold more than max_peers_per_ip of them", run: attackPerIPCap},
	}
}

// randomBytes returns n random bytes.
func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func randomHash(r *rand.Rand) crypto.Hash {
	var h crypto.Hash
	copy(h[:], randomBytes(r, len(h)))
	return h
}

func randomKey(r *rand.Rand) crypto.PrivKey {
	k, err := crypto.PrivKeyFromSeed(randomBytes(r, crypto.SeedSize))
	if err != nil {
		panic(fmt.Sprintf("key from a %d-byte seed: %v", crypto.SeedSize, err)) // broken invariant
	}
	return k
}

// attackGarbage: random bytes, truncated valid envelopes, valid messages on
// the wrong topic, and large random messages (70 KiB to 2 MiB).
func attackGarbage(ctx context.Context, s *Session) error {
	if err := s.followHeight(ctx); err != nil {
		return err
	}
	return s.gossipLoop(ctx, 40, func(r *rand.Rand) (string, []byte) {
		kind := topicKinds[r.IntN(len(topicKinds))]
		v := &ledger.Vote{Type: ledger.Prevote, Height: s.consensusHeight(), Round: uint32(r.IntN(3)), BlockID: randomHash(r)}
		v.Sign(s.env.ChainID, s.env.ValidatorKey)
		vote := p2p.EncodeVoteMessage(v)
		switch r.IntN(6) {
		case 0:
			return kind, randomBytes(r, 1+r.IntN(512))
		case 1: // a valid envelope header, then noise
			b := randomBytes(r, 2+r.IntN(300))
			b[0], b[1] = 1, byte(1+r.IntN(5))
			return kind, b
		case 2:
			return kind, vote[:r.IntN(len(vote))]
		case 3: // a valid vote on a topic that does not carry votes
			return []string{topicTx, topicProposal, topicEvidence}[r.IntN(3)], vote
		case 4:
			return kind, randomBytes(r, 70<<10+r.IntN(186<<10))
		default:
			return kind, randomBytes(r, 256<<10+r.IntN(1792<<10))
		}
	})
}

// attackBadSigTxs: batches of 1 to 256 transfers, one of them with a
// flipped signature bit.
func attackBadSigTxs(ctx context.Context, s *Session) error {
	r := s.rand()
	pool := make([]ledger.Tx, 512)
	for i := range pool {
		k := randomKey(r)
		pool[i] = ledger.Tx{ChainID: s.env.ChainID, To: randomKey(r).PubKey().Address(), Amount: 1, Fee: 1, Nonce: uint64(r.IntN(10))}
		pool[i].Sign(k)
	}
	return s.gossipLoop(ctx, 40, func(r *rand.Rand) (string, []byte) {
		n := 1 + r.IntN(p2p.MaxTxsPerMessage)
		txs := make([]*ledger.Tx, n)
		for i := range txs {
			tx := pool[r.IntN(len(pool))]
			txs[i] = &tx
		}
		bad := txs[r.IntN(n)]
		bad.Sig[r.IntN(len(bad.Sig))] ^= byte(1 << r.IntN(8))
		return topicTx, p2p.EncodeTxsMessage(txs)
	})
}

// attackForged: consensus messages that fail their checks: signed by a key
// outside the validator set under a validator's address, signed for
// another chain, parts whose proof does not match, evidence of forged votes.
func attackForged(ctx context.Context, s *Session) error {
	if err := s.followHeight(ctx); err != nil {
		return err
	}
	valAddr := s.env.ValidatorKey.PubKey().Address()
	block := randomBytes(s.rand(), 3*ledger.BlockPartSize/2)
	parts, partList := ledger.SplitBlock(block)
	return s.gossipLoop(ctx, 40, func(r *rand.Rand) (string, []byte) {
		h, round := s.consensusHeight(), uint32(r.IntN(4))
		outsider := randomKey(r)
		vote := func() *ledger.Vote {
			v := &ledger.Vote{Type: ledger.VoteType(1 + r.IntN(2)), Height: h, Round: round, BlockID: randomHash(r), Validator: valAddr}
			v.Sign(s.env.ChainID, outsider)
			v.Validator = valAddr
			return v
		}
		prop := &ledger.Proposal{Height: h, Round: round, POLRound: -1, BlockID: randomHash(r), Parts: parts, Proposer: valAddr}
		switch r.IntN(6) {
		case 0:
			return topicVote, p2p.EncodeVoteMessage(vote())
		case 1: // the validator's own key, for another chain
			v := &ledger.Vote{Type: ledger.Prevote, Height: h, Round: round, BlockID: randomHash(r)}
			v.Sign(s.env.ChainID+"-other", s.env.ValidatorKey)
			return topicVote, p2p.EncodeVoteMessage(v)
		case 2:
			prop.Sign(s.env.ChainID, outsider)
			prop.Proposer = valAddr
			return topicProposal, p2p.EncodeProposalMessage(prop)
		case 3: // a validly signed proposal, a part whose bytes do not match its proof
			prop.Sign(s.env.ChainID, s.env.ValidatorKey)
			part := *partList[0]
			part.Bytes = randomBytes(r, len(part.Bytes))
			return topicProposal, p2p.EncodePartMessage(prop, &part)
		case 4:
			prop.Sign(s.env.ChainID, outsider)
			prop.Proposer = valAddr
			return topicProposal, p2p.EncodePartMessage(prop, partList[0])
		default:
			a, b := vote(), vote()
			b.Type, b.Round = a.Type, a.Round
			return topicEvidence, p2p.EncodeEvidenceMessage(ledger.NewEvidence(a, b))
		}
	})
}

// attackFarFuture: correctly signed votes and proposals far outside the
// window: height+1e6, and the current height at rounds near 2^20.
func attackFarFuture(ctx context.Context, s *Session) error {
	if err := s.followHeight(ctx); err != nil {
		return err
	}
	return s.gossipLoop(ctx, 200, func(r *rand.Rand) (string, []byte) {
		h := s.consensusHeight()
		round := uint32(r.IntN(8))
		if r.IntN(2) == 0 {
			h += 1_000_000 + uint64(r.IntN(1000))
		} else {
			round = ledger.MaxRound - uint32(r.IntN(1000))
		}
		if r.IntN(2) == 0 {
			v := &ledger.Vote{Type: ledger.VoteType(1 + r.IntN(2)), Height: h, Round: round, BlockID: randomHash(r)}
			v.Sign(s.env.ChainID, s.env.ValidatorKey)
			return topicVote, p2p.EncodeVoteMessage(v)
		}
		p := &ledger.Proposal{Height: h, Round: round, POLRound: -1, BlockID: randomHash(r),
			Parts: ledger.PartSetHeader{Total: 1, Root: randomHash(r)}}
		p.Sign(s.env.ChainID, s.env.ValidatorKey)
		return topicProposal, p2p.EncodeProposalMessage(p)
	})
}

// attackSybilChurn: fresh identities connect to every node, exchange
// status honestly and disconnect, from four workers at ten a second.
func attackSybilChurn(ctx context.Context, s *Session) error {
	rate := 10 * s.env.Intensity
	var wg sync.WaitGroup
	for w := range 4 {
		r := s.rand()
		wg.Go(func() {
			interval := time.Duration(float64(4*time.Second) / rate)
			t := time.NewTicker(interval)
			defer t.Stop()
			_ = w
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				id, err := newIdentity(ctx, r, s.env, idOptions{ip: s.sybilIP()})
				if err != nil {
					continue
				}
				id.connect(ctx, s.env.Targets)
				for _, t := range s.env.Targets {
					_, _ = exchangeStatus(ctx, id, s.env.ChainID, t, 0)
				}
				id.close()
				s.sent.Add(1)
			}
		})
	}
	wg.Wait()
	return nil
}

// attackEquivocation: a byzantine twin runs beside the validator whose key
// the attacker holds, and the attacker itself gossips two conflicting
// prevotes of that validator at the current height every 300 ms. Evidence
// against the validator must be committed.
func attackEquivocation(ctx context.Context, s *Session) error {
	if err := s.followHeight(ctx); err != nil {
		return err
	}
	stop, err := s.env.StartTwin(ctx)
	if err != nil {
		return fmt.Errorf("start twin: %w", err)
	}
	s.note("twin started")
	err = s.gossipLoop(ctx, 6, func(r *rand.Rand) (string, []byte) {
		// Alternate the two halves of a conflicting pair.
		v := &ledger.Vote{Type: ledger.Prevote, Height: s.consensusHeight(), Round: 0, BlockID: randomHash(r)}
		v.Sign(s.env.ChainID, s.env.ValidatorKey)
		return topicVote, p2p.EncodeVoteMessage(v)
	})
	if serr := stop(); serr != nil {
		s.note("twin stop: %v", serr)
	}
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if h, err := s.env.EvidenceAgainst(wctx, 30*time.Second); err != nil {
		s.fail("no evidence against the equivocating validator committed: %v", err)
	} else {
		s.note("evidence committed at height %d", h)
	}
	return nil
}

// liarHeight is the height the liar claims.
const liarHeight = 1 << 40

// attackLiar: an identity that claims height 2^40 in every status
// exchange (answering and pushing every second) and answers block-sync
// requests with no blocks or never; a fresh identity replaces it once every
// node has dropped it.
func attackLiar(ctx context.Context, s *Session) error {
	var id *identity
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var requests sync.Mutex
	stall := false
	for ctx.Err() == nil {
		if id == nil || len(id.connected(s.env.Targets)) == 0 {
			var err error
			if id, err = s.newID(ctx, idOptions{}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			id.h.SetStreamHandler(p2p.ProtocolID(s.env.ChainID, p2p.StatusProtocol), func(st network.Stream) {
				defer st.Reset()
				_ = st.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := p2p.ReadFrame(bufio.NewReaderSize(st, 32), p2p.StatusBytes); err != nil {
					return
				}
				_ = p2p.WriteFrame(st, p2p.EncodeStatus(liarHeight))
				_ = st.CloseWrite()
				s.sent.Add(1)
			})
			id.h.SetStreamHandler(p2p.ProtocolID(s.env.ChainID, p2p.SyncProtocol), func(st network.Stream) {
				defer st.Reset()
				if _, err := p2p.ReadFrame(bufio.NewReaderSize(st, 32), p2p.SyncRequestBytes); err != nil {
					return
				}
				s.sent.Add(1)
				requests.Lock()
				stall = !stall
				mine := stall
				requests.Unlock()
				if mine {
					<-ctx.Done() // never answer while the attack lasts
					return
				}
				_ = p2p.WriteFrame(st, p2p.EncodeSyncEnd(liarHeight))
				_ = st.CloseWrite()
			})
		}
		for _, target := range s.env.Targets {
			wg.Go(func() {
				if _, err := exchangeStatus(ctx, id, s.env.ChainID, target, liarHeight); err == nil {
					s.sent.Add(1)
				}
			})
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	return nil
}

// attackJunkTxs: 100 messages a second, each of 256 validly signed
// transfers that can never execute: from unfunded accounts, or from a
// funded account with nonces a million ahead. The transfers come from a
// pre-signed pool, so the attacker's own CPU is no limit.
func attackJunkTxs(ctx context.Context, s *Session) error {
	pool := s.txPool
	return s.gossipLoop(ctx, 100, func(r *rand.Rand) (string, []byte) {
		txs := make([]*ledger.Tx, p2p.MaxTxsPerMessage)
		for i := range txs {
			txs[i] = pool[r.IntN(len(pool))]
		}
		return topicTx, p2p.EncodeTxsMessage(txs)
	})
}

// prepareJunkTxs signs junk-tx's pool before the attack's window opens:
// 16,384 signatures are most of a core-second, which the attacker would
// otherwise take from the nodes it shares the machine with and count
// against them.
func prepareJunkTxs(s *Session) {
	r := s.rand()
	const poolSize = 16384
	pool := make([]*ledger.Tx, poolSize)
	unfunded := make([]crypto.PrivKey, 64)
	for i := range unfunded {
		unfunded[i] = randomKey(r)
	}
	base := uint64(1_000_000) + uint64(r.IntN(1000))
	for i := range pool {
		tx := &ledger.Tx{ChainID: s.env.ChainID, To: randomKey(r).PubKey().Address(), Amount: 1, Fee: 1}
		if i%2 == 0 {
			tx.Nonce = uint64(i / 2 / len(unfunded))
			tx.Sign(unfunded[(i/2)%len(unfunded)])
		} else {
			tx.Nonce = base + uint64(i/2)
			tx.Sign(s.env.FundedKey)
		}
		pool[i] = tx
	}
	s.txPool = pool
}

// attackSlotHolding: eight identities open block-sync and catch-up streams
// to every node and never send the request, re-opening whatever the node
// resets, while the restarted validator must catch up within 25 s.
func attackSlotHolding(ctx context.Context, s *Session) error {
	// The holders stop once the validator caught up (stopHolding runs
	// before wg.Wait: deferred calls run last first).
	var wg sync.WaitGroup
	defer wg.Wait()
	hctx, stopHolding := context.WithCancel(ctx)
	defer stopHolding()
	n := max(1, int(8*s.env.Intensity))
	protos := []string{p2p.SyncProtocol, p2p.SyncProtocol, p2p.CatchupProtocol, p2p.CatchupProtocol}
	var rotations atomic.Int64
	for range n {
		// Each holder is a Sybil with an address of its own (the point
		// is the serving slots, not the per-IP peer cap); when every
		// node has dropped it, a fresh one takes its place.
		wg.Go(func() {
			for first := true; hctx.Err() == nil; first = false {
				id, err := s.newID(hctx, idOptions{ip: s.sybilIP()})
				if err != nil {
					return
				}
				if !first {
					rotations.Add(1)
				}
				var hw sync.WaitGroup
				for _, t := range s.env.Targets {
					for _, proto := range protos {
						hw.Go(func() { s.holdStreams(hctx, id, t, p2p.ProtocolID(s.env.ChainID, proto)) })
					}
				}
				hw.Wait()
			}
		})
	}
	// Let the holders take the slots (every holder has opened a stream
	// once), then restart the validator.
	start := time.Now()
	want := int64(n * len(s.env.Targets) * len(protos))
	for s.sent.Load() < want {
		if sleepCtx(ctx, 50*time.Millisecond) != nil {
			return nil
		}
	}
	s.note("%d streams held %.1fs after the start; restarting node%d", want, time.Since(start).Seconds(), s.env.Restarted)
	if err := s.env.RestartValidator(ctx, 3*time.Second); err != nil {
		return fmt.Errorf("restart validator: %w", err)
	}
	// The stop closed every holder's connection to the restarted node:
	// not a penalty.
	for _, id := range s.identities() {
		id.excuse(s.env.Targets[s.env.Restarted].ID)
	}
	took, err := s.env.CaughtUp(ctx, 25*time.Second)
	if err != nil {
		s.fail("restarted validator did not catch up while the slots were held: %v", err)
	} else {
		s.note("restarted validator caught up in %.1fs (%.1fs after the start; %d holders replaced after being dropped)", took.Seconds(), time.Since(start).Seconds(), rotations.Load())
	}
	return nil
}

// holdStreams keeps one stream of proto to t open without writing,
// re-opening it whenever the node resets it; it returns when ctx ends or
// when t no longer lets the identity in (dropped and refused, or banned).
func (s *Session) holdStreams(ctx context.Context, id *identity, t peer.AddrInfo, proto protocol.ID) {
	for ctx.Err() == nil {
		if id.h.Network().Connectedness(t.ID) != network.Connected {
			jctx, cancel := context.WithTimeout(ctx, dialTimeout)
			err := id.join(jctx, t)
			cancel()
			if err != nil {
				return
			}
		}
		st, err := id.h.NewStream(network.WithNoDial(ctx, "hold over the admitted connection"), t.ID, proto)
		if err == nil {
			s.sent.Add(1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = io.Copy(io.Discard, st) // returns when the node resets or closes it
			}()
			select {
			case <-ctx.Done():
				st.Reset()
				<-done
				return
			case <-done:
				st.Reset()
			}
		}
		if sleepCtx(ctx, 100*time.Millisecond) != nil {
			return
		}
	}
}

// attackFutureRound: votes of the byzantine validator for the next height
// at random rounds up to 2^20, 2000 a second.
func attackFutureRound(ctx context.Context, s *Session) error {
	if err := s.followHeight(ctx); err != nil {
		return err
	}
	return s.gossipLoop(ctx, 2000, func(r *rand.Rand) (string, []byte) {
		v := &ledger.Vote{Type: ledger.VoteType(1 + r.IntN(2)), Height: s.consensusHeight() + 1, Round: uint32(r.IntN(ledger.MaxRound + 1))}
		if r.IntN(2) == 0 {
			v.BlockID = randomHash(r)
		}
		v.Sign(s.env.ChainID, s.env.ValidatorKey)
		return topicVote, p2p.EncodeVoteMessage(v)
	})
}

// attackServingDrain: four identities, two requests each at a time, ask
// every node for 64 blocks again and again and read the answers; every
// fourth request is malformed (block sync or catch-up).
func attackServingDrain(ctx context.Context, s *Session) error {
	if err := s.followHeight(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for range max(1, int(4*s.env.Intensity)) {
		id, err := s.newID(ctx, idOptions{})
		if err != nil {
			return err
		}
		for _, t := range s.env.Targets {
			for range 2 {
				r := s.rand()
				wg.Go(func() { s.drain(ctx, r, id, t) })
			}
		}
	}
	return nil
}

// malformedSync and malformedCatchup are request frames the node must refuse.
func malformedSync(r *rand.Rand) []byte {
	switch r.IntN(5) {
	case 0:
		b := p2p.EncodeSyncRequest(1, 8)
		b[0] = 2 // unknown version
		return b
	case 1:
		return p2p.EncodeSyncRequest(1, 0)
	case 2:
		return p2p.EncodeSyncRequest(1, p2p.MaxSyncBatch+1+uint32(r.IntN(1<<20)))
	case 3:
		return p2p.EncodeSyncRequest(0, 8)
	default:
		return append(p2p.EncodeSyncRequest(1, 8), 0) // trailing byte
	}
}

func malformedCatchup(r *rand.Rand, h uint64) []byte {
	switch r.IntN(4) {
	case 0:
		b := p2p.EncodeCatchupRequest(h, 0)
		b[0] = 9
		return b
	case 1:
		return p2p.EncodeCatchupRequest(0, 0)
	case 2:
		return p2p.EncodeCatchupRequest(h, ledger.MaxRound+1+uint32(r.IntN(1000)))
	default:
		return p2p.EncodeCatchupRequest(h, 0)[:5]
	}
}

// drain is one requester of attackServingDrain.
func (s *Session) drain(ctx context.Context, r *rand.Rand, id *identity, t peer.AddrInfo) {
	for i := 0; ctx.Err() == nil; i++ {
		if id.h.Network().Connectedness(t.ID) != network.Connected {
			if id.connect(ctx, []peer.AddrInfo{t}) == 0 {
				if sleepCtx(ctx, 500*time.Millisecond) != nil {
					return
				}
				continue
			}
		}
		proto, req := p2p.SyncProtocol, []byte(nil)
		switch {
		case i%4 == 3 && r.IntN(2) == 0:
			proto, req = p2p.CatchupProtocol, malformedCatchup(r, s.consensusHeight())
		case i%4 == 3:
			req = malformedSync(r)
		default:
			top := s.height.Load()
			from := uint64(1)
			if top > p2p.MaxSyncBatch {
				from = 1 + r.Uint64N(top-p2p.MaxSyncBatch)
			}
			req = p2p.EncodeSyncRequest(from, p2p.MaxSyncBatch)
		}
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		st, err := id.h.NewStream(rctx, t.ID, p2p.ProtocolID(s.env.ChainID, proto))
		if err != nil {
			cancel()
			if sleepCtx(ctx, 100*time.Millisecond) != nil {
				return
			}
			continue
		}
		_ = st.SetDeadline(time.Now().Add(20 * time.Second))
		if p2p.WriteFrame(st, req) == nil && st.CloseWrite() == nil {
			n, _ := io.Copy(io.Discard, st)
			s.bytes.Add(n)
		}
		st.Reset()
		cancel()
		s.sent.Add(1)
	}
}

// attackPeerSlotFill: MaxPeers+4 identities, each from its own address,
// connect to every node, complete the handshake and sit there; then an
// honest newcomer (its own address, joined to the topics) must get into
// every node within the eviction grace (p2p.DefaultEvictGrace: an admitted
// ordinary peer cannot be evicted earlier) plus 15 s (the fill, retries, a loaded machine), and be
// answered.
func attackPeerSlotFill(ctx context.Context, s *Session) error {
	if err := s.followHeight(ctx); err != nil {
		return err
	}
	n := s.env.MaxPeers + 4
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var admitted atomic.Int64
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if id, err := s.newID(ctx, idOptions{ip: s.sybilIP()}); err == nil {
				s.sent.Add(1)
				admitted.Add(int64(len(id.connected(s.env.Targets))))
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	filled := time.Now()
	s.note("%d Sybils hold %d connections to %d nodes", n, admitted.Load(), len(s.env.Targets))
	newcomer, err := newIdentity(ctx, s.rand(), s.env, idOptions{ip: s.sybilIP(), gossip: true})
	if err != nil {
		return err
	}
	defer newcomer.close()
	newcomer.h.SetStreamHandler(p2p.ProtocolID(s.env.ChainID, p2p.StatusProtocol), func(st network.Stream) {
		defer st.Close()
		_ = st.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := p2p.ReadFrame(bufio.NewReaderSize(st, 32), p2p.StatusBytes); err != nil {
			st.Reset()
			return
		}
		_ = p2p.WriteFrame(st, p2p.EncodeStatus(s.height.Load()))
	})
	limit := p2p.DefaultEvictGrace + 15*time.Second
	in := make([]bool, len(s.env.Targets))
	last := make([]error, len(s.env.Targets))
	var tw sync.WaitGroup
	for i, t := range s.env.Targets {
		// Each node on its own: the newcomer asks every 500 ms until the
		// node admits and answers it.
		tw.Go(func() {
			for time.Since(filled) <= limit {
				if _, err := exchangeStatus(ctx, newcomer, s.env.ChainID, t, s.height.Load()); err != nil {
					last[i] = err
				} else {
					in[i] = true
					s.note("newcomer admitted and answered by node %d %.1fs after the Sybils filled the slots", i, time.Since(filled).Seconds())
					return
				}
				if sleepCtx(ctx, 500*time.Millisecond) != nil {
					return
				}
			}
		})
	}
	tw.Wait()
	if ctx.Err() != nil && slices.Contains(in, false) {
		s.fail("attack ended %.1fs after the fill, before the newcomer got into every node: give it a longer MinDuration", time.Since(filled).Seconds())
		return nil
	}
	for i, ok := range in {
		if !ok {
			s.fail("node %d did not admit an honest newcomer within %s while %d Sybils were connected (%v)", i, limit, n, last[i])
		}
	}
	return nil
}

// attackNoHandshake: identities, each from its own address, connect to
// every node and never run the chain handshake; each opens a status
// stream and waits for an answer. No node may count them as peers (they
// must never appear in ledger_peers), answer them, or keep their
// connections past the handshake timeout (plus slack).
func attackNoHandshake(ctx context.Context, s *Session) error {
	n := max(1, int(16*s.env.Intensity))
	ids := make([]*identity, 0, n)
	for range n {
		id, err := s.newID(ctx, idOptions{ip: s.sybilIP(), noHandshake: true})
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	start := time.Now()
	mine := make(map[string]bool, n)
	for _, id := range ids {
		mine[id.ID().String()] = true
	}
	var wg sync.WaitGroup
	var answered atomic.Int64
	for _, id := range ids {
		for _, t := range s.env.Targets {
			if len(id.connected([]peer.AddrInfo{t})) == 0 {
				continue
			}
			wg.Go(func() {
				if _, err := statusOnce(ctx, id, s.env.ChainID, t, 0); err == nil {
					answered.Add(1)
				}
				s.sent.Add(1)
			})
		}
	}
	// Poll every node's peer list until every connection is gone.
	limit := p2p.DefaultHandshakeTimeout + 5*time.Second
	listed := make([]bool, len(s.env.Targets))
	for {
		for i := range s.env.Targets {
			ps, err := s.env.PeersOf(ctx, i)
			if err != nil {
				continue
			}
			for _, p := range ps {
				if mine[p] && !listed[i] {
					listed[i] = true
					s.fail("node %d lists an identity that never handshook as a peer (%s)", i, p)
				}
			}
		}
		open := 0
		for _, id := range ids {
			open += len(id.connected(s.env.Targets))
		}
		if open == 0 {
			s.note("every connection of %d identities that never handshook dropped %.1fs after they connected", n, time.Since(start).Seconds())
			break
		}
		if time.Since(start) > limit {
			s.fail("%d connections that never handshook still open %s after they were made (handshake timeout %s)", open, limit, p2p.DefaultHandshakeTimeout)
			break
		}
		if sleepCtx(ctx, 250*time.Millisecond) != nil {
			s.fail("attack ended %.1fs after connecting, before the nodes dropped the connections that never handshook: give it a longer MinDuration", time.Since(start).Seconds())
			break
		}
	}
	wg.Wait()
	if a := answered.Load(); a > 0 {
		s.fail("%d status requests of identities that never handshook were answered", a)
	}
	return nil
}

// attackPerIPCap: 3 x max_peers_per_ip identities from ONE address connect
// to every node and complete the handshake. No node may hold more than
// max_peers_per_ip of them as peers at any time.
func attackPerIPCap(ctx context.Context, s *Session) error {
	ip := s.attackerIP()
	n := 3 * s.env.MaxPeersPerIP
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	mine := make(map[string]bool, n)
	var mu sync.Mutex
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			id, err := s.newID(ctx, idOptions{ip: ip})
			if err != nil {
				return
			}
			mu.Lock()
			mine[id.ID().String()] = true
			mu.Unlock()
			s.sent.Add(1)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	mu.Lock()
	defer mu.Unlock()
	worst := 0
	for {
		for i := range s.env.Targets {
			ps, err := s.env.PeersOf(ctx, i)
			if err != nil {
				continue
			}
			held := 0
			for _, p := range ps {
				if mine[p] {
					held++
				}
			}
			worst = max(worst, held)
			if held > s.env.MaxPeersPerIP {
				s.fail("node %d holds %d peers from %s (max_peers_per_ip %d)", i, held, ip, s.env.MaxPeersPerIP)
				<-ctx.Done()
				return nil
			}
		}
		if sleepCtx(ctx, 500*time.Millisecond) != nil {
			break
		}
	}
	if worst == 0 {
		s.fail("no node admitted any of %d identities from %s: the cap check proves nothing", n, ip)
	}
	s.note("%d identities from %s: at most %d held as peers by any node (cap %d)", n, ip, worst, s.env.MaxPeersPerIP)
	return nil
}

// attackPubsubGarbage: raw gossipsub streams carrying a 2 MiB frame (the
// node's limit is 256 KiB) or a frame of protobuf garbage, twenty a second.
func attackPubsubGarbage(ctx context.Context, s *Session) error {
	var id *identity
	r := s.rand()
	interval := time.Duration(float64(time.Second) / (20 * s.env.Intensity))
	t := time.NewTicker(interval)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		if id == nil || len(id.connected(s.env.Targets)) == 0 {
			var err error
			if id, err = s.newID(ctx, idOptions{}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		target := s.env.Targets[r.IntN(len(s.env.Targets))]
		var frame []byte
		if r.IntN(2) == 0 {
			frame = binary.AppendUvarint(nil, 2<<20)
			frame = append(frame, randomBytes(r, 2<<20)...)
		} else {
			body := randomBytes(r, 1+r.IntN(64<<10))
			frame = append(binary.AppendUvarint(nil, uint64(len(body))), body...)
		}
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			st, err := id.h.NewStream(sctx, target.ID, pubsub.GossipSubID_v11)
			if err != nil {
				return
			}
			defer st.Reset()
			_ = st.SetDeadline(time.Now().Add(5 * time.Second))
			n, _ := st.Write(frame)
			s.bytes.Add(int64(n))
			s.sent.Add(1)
		})
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	return nil
}

// statusOnce runs the status protocol over an existing connection (no
// dial, no handshake): it sends claim and returns the answer.
func statusOnce(ctx context.Context, id *identity, chainID string, t peer.AddrInfo, claim uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, p2p.DefaultHandshakeTimeout+5*time.Second)
	defer cancel()
	return askStatus(network.WithNoDial(ctx, "status over an open connection"), id, chainID, t, claim)
}

// sleepCtx waits d or until ctx ends, returning ctx's error then.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
