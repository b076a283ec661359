package p2p

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Client side of the snapshot protocol: finding offers, fetching a
// manifest, and fetching chunks from several peers at once.

const (
	// discoverWorkers bounds the peers asked for offers at once.
	discoverWorkers = 8
	// snapshotCallTimeout bounds a list or manifest request.
	snapshotCallTimeout = 20 * time.Second
	// snapshotFirstByte bounds the wait for an answer's first byte: an
	// honest peer answers at once (or resets the stream when busy).
	snapshotFirstByte = 10 * time.Second
)

// PenaltyMissingSnapshot is charged to a peer that answers "not found" for
// a snapshot it offered: half the ban threshold, so the second such answer
// (or any other serious fault on top) bans it. An honest peer can do it
// once, when it prunes a snapshot a fetch is still using.
const PenaltyMissingSnapshot float64 = banPenalty / 2

// Errors of the snapshot client.
var (
	// ErrNoSnapshotPeers is wrapped by FetchChunks and FetchManifest when no
	// offering peer is left to ask: all were banned, left, lied or failed
	// too often.
	ErrNoSnapshotPeers = errors.New("no peer left to fetch the snapshot from")
	// ErrAbort is what a FetchSpec.Verify error wraps to stop the fetch for
	// a reason of this node's own (a disk failure): the peer that served
	// the chunk is not blamed, and FetchChunks returns the error.
	ErrAbort = errors.New("state sync aborted")
	// errSnapBusy is a peer's "busy" answer.
	errSnapBusy = errors.New("peer busy")
)

// peerFault is a protocol violation by the peer that answered: it is
// banned for it.
type peerFault struct{ err error }

func (e peerFault) Error() string { return e.err.Error() }
func (e peerFault) Unwrap() error { return e.err }

func isPeerFault(err error) bool {
	var f peerFault
	return errors.As(err, &f)
}

// PeerOffers is one snapshot and the peers that offer it. Peers offering
// the same height and format with another manifest hash or chunk count
// offer another snapshot, listed apart.
type PeerOffers struct {
	Offer SnapshotOffer
	Peers []peer.ID
}

// snapshotCall runs one request to p: opens a stream, writes req, and
// reads and decodes the one answer, which must answer req (its kind,
// height and index). The first byte must come within firstByte and the
// whole answer within timeout. An answer that breaks the protocol
// (malformed, oversized, truncated, answering another request) comes back
// as a peerFault.
func (n *Node) snapshotCall(ctx context.Context, p peer.ID, req snapshotRequest, timeout, firstByte time.Duration) (snapshotResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := n.host.NewStream(ctx, p, n.protocol(snapshotProtocol))
	if err != nil {
		return snapshotResponse{}, err
	}
	// A stream does not watch ctx: reset it when ctx ends, so a caller
	// that gives up (or has what it needs) is not kept waiting.
	defer context.AfterFunc(ctx, func() { s.Reset() })()
	deadline, _ := ctx.Deadline()
	_ = s.SetDeadline(earliest(deadline, time.Now().Add(firstByte)))
	a, err := func() (snapshotResponse, error) {
		if err := writeFrame(s, req.encode()); err != nil {
			return snapshotResponse{}, err
		}
		if err := s.CloseWrite(); err != nil {
			return snapshotResponse{}, err
		}
		br := bufio.NewReaderSize(s, 64<<10)
		if _, err := br.Peek(1); err != nil {
			return snapshotResponse{}, err
		}
		_ = s.SetDeadline(deadline)
		frame, err := readFrame(br, maxSnapshotFrame(req.kind))
		if err != nil {
			return snapshotResponse{}, n.streamFault(p, err)
		}
		a, err := decodeSnapshotResponse(frame)
		if err != nil {
			return snapshotResponse{}, peerFault{err}
		}
		if a.kind != req.kind || a.height != req.height || a.index != req.index {
			return snapshotResponse{}, peerFault{fmt.Errorf("asked for kind %d height %d index %d, answered kind %d height %d index %d",
				req.kind, req.height, req.index, a.kind, a.height, a.index)}
		}
		return a, nil
	}()
	if err != nil {
		s.Reset()
		return snapshotResponse{}, err
	}
	_ = s.Close()
	return a, nil
}

// earliest is the earlier of two times.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// streamFault classifies an error reading an answer's frame: an oversized
// or malformed frame, or one cut short by the peer closing its side while
// it stays connected (an honest peer that fails resets the stream), is the
// peer's fault; anything else is the transport's.
func (n *Node) streamFault(p peer.ID, err error) error {
	switch {
	case isMalformed(err):
		return peerFault{err}
	case errors.Is(err, io.ErrUnexpectedEOF) && n.host.Network().Connectedness(p) == network.Connected:
		return peerFault{fmt.Errorf("truncated answer: %w", err)}
	}
	return err
}

// DiscoverSnapshots asks every connected peer (discoverWorkers at a time)
// for the snapshots it offers and groups the offers by snapshot (height,
// format, manifest hash and chunk count), each with the peers offering it:
// newest first, then by format, then the most widely offered first. It
// returns what arrived within wait (or before ctx ended); peers that do
// not speak the protocol or do not answer in time are left out, and a peer
// whose answer breaks the protocol is banned.
func (n *Node) DiscoverSnapshots(ctx context.Context, wait time.Duration) []PeerOffers {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	type answer struct {
		p      peer.ID
		offers []SnapshotOffer
	}
	peers := n.admittedPeers()
	answers := make(chan answer, len(peers))
	sem := make(chan struct{}, discoverWorkers)
	var wg sync.WaitGroup
	for _, p := range peers {
		if n.IsBanned(p) {
			continue
		}
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			a, err := n.snapshotCall(ctx, p, snapshotRequest{kind: snapKindOffers}, snapshotCallTimeout, snapshotFirstByte)
			switch {
			case isPeerFault(err):
				n.requestBan(p, "snapshot offers: "+err.Error())
			case err != nil:
				n.log.Debug("snapshot offers: no answer", "peer", p, "err", err)
			case a.status == snapFound:
				answers <- answer{p, a.offers}
			}
		})
	}
	wg.Wait()
	close(answers)

	type key struct {
		height, format, chunks uint64
		hash                   [32]byte
	}
	groups := make(map[key]*PeerOffers)
	for a := range answers {
		for _, o := range a.offers {
			k := key{o.Height, uint64(o.Format), uint64(o.Chunks), o.ManifestHash}
			g := groups[k]
			if g == nil {
				g = &PeerOffers{Offer: o}
				groups[k] = g
			}
			g.Peers = append(g.Peers, a.p)
		}
	}
	out := make([]PeerOffers, 0, len(groups))
	for _, g := range groups {
		slices.Sort(g.Peers)
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b PeerOffers) int {
		if c := compareOffers(a.Offer, b.Offer); c != 0 {
			return c
		}
		if c := cmp.Compare(len(b.Peers), len(a.Peers)); c != 0 {
			return c
		}
		if c := bytes.Compare(a.Offer.ManifestHash[:], b.Offer.ManifestHash[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Offer.Chunks, b.Offer.Chunks)
	})
	return out
}

// FetchManifest fetches the manifest of the snapshot offer describes from
// one of peers (tried in random order) and returns it once its SHA-256 is
// offer.ManifestHash. A peer that serves another manifest, or breaks the
// protocol, is banned; one that answers "not found" for what it offered is
// charged PenaltyMissingSnapshot. It fails, wrapping ErrNoSnapshotPeers,
// when no peer served it.
func (n *Node) FetchManifest(ctx context.Context, offer SnapshotOffer, peers []peer.ID) ([]byte, error) {
	order := slices.Clone(peers)
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	var errs []error
	for _, p := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if n.IsBanned(p) {
			continue
		}
		a, err := n.snapshotCall(ctx, p, snapshotRequest{kind: snapKindManifest, height: offer.Height}, snapshotCallTimeout, snapshotFirstByte)
		switch {
		case isPeerFault(err):
			n.Ban(p, fmt.Sprintf("snapshot manifest of height %d: %v", offer.Height, err))
		case err != nil:
		case a.status == snapBusy:
			err = errSnapBusy
		case a.status == snapNotFound:
			err = fmt.Errorf("manifest of height %d it offered: %w", offer.Height, ErrNotFound)
			n.Penalize(p, PenaltyMissingSnapshot, err.Error())
		case sha256.Sum256(a.body) != offer.ManifestHash:
			err = fmt.Errorf("manifest of height %d does not hash to the offer's %x", offer.Height, offer.ManifestHash[:8])
			n.Ban(p, "snapshot: "+err.Error())
		default:
			return a.body, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p, err))
	}
	return nil, fmt.Errorf("fetch manifest of height %d: %w: %w", offer.Height, ErrNoSnapshotPeers, errors.Join(errs...))
}

// PeerPriorities is one peer's answer to a request for the proposer
// priorities recorded with a snapshot: their bytes, opaque here.
type PeerPriorities struct {
	Peer       peer.ID
	Priorities []byte
}

// FetchSnapshotPriorities asks each of peers (at most discoverWorkers at
// once) for the proposer priorities recorded with its snapshot at height
// and returns the answers of those that had them, sorted by peer. The
// bytes are not interpreted: the caller decodes them and decides whether
// the peers agree. A peer whose answer breaks the protocol is banned;
// peers that answer not found, busy, or not at all are left out. It waits
// for every peer's answer or snapshotCallTimeout, whichever ends first.
func (n *Node) FetchSnapshotPriorities(ctx context.Context, height uint64, peers []peer.ID) []PeerPriorities {
	answers := make(chan PeerPriorities, len(peers))
	sem := make(chan struct{}, discoverWorkers)
	var wg sync.WaitGroup
	for _, p := range slices.Compact(slices.Sorted(slices.Values(peers))) {
		if n.IsBanned(p) {
			continue
		}
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			a, err := n.snapshotCall(ctx, p, snapshotRequest{kind: snapKindPrio, height: height}, snapshotCallTimeout, snapshotFirstByte)
			switch {
			case isPeerFault(err):
				n.Ban(p, fmt.Sprintf("snapshot priorities of height %d: %v", height, err))
			case err != nil:
				n.log.Debug("snapshot priorities: no answer", "peer", p, "height", height, "err", err)
			case a.status == snapFound:
				answers <- PeerPriorities{Peer: p, Priorities: a.body}
			}
		})
	}
	wg.Wait()
	close(answers)
	var out []PeerPriorities
	for a := range answers {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b PeerPriorities) int { return cmp.Compare(a.Peer, b.Peer) })
	return out
}

// FetchSpec says which snapshot's chunks FetchChunks fetches, from whom,
// and what it does with them. Zero tuning fields mean their defaults.
type FetchSpec struct {
	// Height and Chunks name the snapshot (as its offer did).
	Height uint64
	Chunks uint32
	// Peers are the peers that offered it.
	Peers []peer.ID
	// Verify checks chunk index against the snapshot (its proof against
	// the app hash) and imports it. A nil error means the chunk is done; an
	// error wrapping ErrAbort stops the fetch (a local failure); any other
	// error means the chunk is bad: the peer that served it is banned with
	// the error as reason and the chunk is fetched again from another.
	// Verify is called from one goroutine at a time, never concurrently,
	// in the order chunks arrive (not in index order), and each index is
	// verified successfully at most once. The chunk is not used after
	// Verify returns.
	Verify func(index uint32, chunk []byte) error
	// Done, if set, reports chunks already restored (by an earlier run,
	// before a restart): they are skipped.
	Done func(index uint32) bool
	// Progress, if set, is called after each verified chunk, from the same
	// goroutine as Verify.
	Progress func(FetchProgress)

	// PerPeer bounds the requests in flight to one peer (default and
	// maximum 2: what a node serves one peer at once).
	PerPeer int
	// InFlight bounds the requests in flight in all (default 8): at most
	// InFlight chunks (each at most MaxChunkBytes) are held at once.
	InFlight int
	// Timeout bounds one chunk request, from opening the stream to the
	// chunk's last byte (default 30s); ResponseTimeout bounds the wait for
	// its first byte (default 10s).
	Timeout         time.Duration
	ResponseTimeout time.Duration
	// RetryBackoff is how long a peer is left alone after a failed or busy
	// request (default 500ms); it doubles with each further failure in a
	// row, up to 16 times that.
	RetryBackoff time.Duration
	// MaxFailures is how many requests in a row may fail (time out, come
	// back busy, break) before the peer is left out of this fetch
	// (default 8). Failures are not penalised.
	MaxFailures int
}

// FetchProgress is reported after each verified chunk.
type FetchProgress struct {
	// Done is the number of chunks restored (including those skipped as
	// done before), of Total.
	Done, Total uint32
	// Fetched and Bytes count the chunks and bytes fetched and verified by
	// this call; Failed counts its requests that failed (busy, timed out,
	// refused, or served something bad) and were asked again.
	Fetched uint32
	Bytes   int64
	Failed  uint32
	// Elapsed is the time since the fetch started; BytesPerSecond is Bytes
	// over it; ETA is the time left at this call's chunk rate.
	Elapsed        time.Duration
	BytesPerSecond float64
	ETA            time.Duration
	// From is the peer that served the chunk just verified.
	From peer.ID
}

func (s *FetchSpec) setDefaults() {
	setDefault(&s.PerPeer, maxStreamsPerPeer)
	s.PerPeer = min(s.PerPeer, maxStreamsPerPeer)
	setDefault(&s.InFlight, 8)
	setDefault(&s.Timeout, 30*time.Second)
	setDefault(&s.ResponseTimeout, 10*time.Second)
	s.ResponseTimeout = min(s.ResponseTimeout, s.Timeout)
	setDefault(&s.RetryBackoff, 500*time.Millisecond)
	setDefault(&s.MaxFailures, 8)
}

// maxBackoffDoublings caps the retry backoff at 16 times its base.
const maxBackoffDoublings = 4

// chunkPeer is FetchChunks' view of one offering peer.
type chunkPeer struct {
	active   int       // requests in flight
	failures int       // failed requests in a row
	rest     time.Time // not asked before this
	out      string    // why it was left out of the fetch; "" while in
	served   int       // chunks it served that verified
}

// chunkResult is the outcome of one chunk request.
type chunkResult struct {
	p     peer.ID
	index uint32
	chunk []byte
	err   error
}

// FetchChunks fetches the chunks of the snapshot spec names from its
// peers and hands each to spec.Verify, until every chunk is done. Chunks
// are asked of several peers at once (spec.PerPeer per peer, spec.InFlight
// in all), each of the peer with the fewest requests in flight, so load
// spreads over the peers; a chunk that failed from one peer is asked of
// another when there is one.
//
// A peer whose chunk fails Verify, or whose answer breaks the protocol
// (malformed, oversized, truncated, for another height or index), is
// banned and left out; one that answers "not found" for the snapshot it
// offered is charged PenaltyMissingSnapshot and left out; one that times
// out, answers busy or cannot be reached rests for a backoff and is left
// out after spec.MaxFailures in a row, or at once when it has
// disconnected. The chunk is fetched again from another peer in every
// case. FetchChunks returns nil once every chunk is done, an error
// wrapping ErrNoSnapshotPeers once no peer is left, Verify's error when it
// wraps ErrAbort, or ctx's error.
func (n *Node) FetchChunks(ctx context.Context, spec FetchSpec) error {
	spec.setDefaults()
	switch {
	case spec.Height == 0 || spec.Chunks == 0 || spec.Chunks > MaxSnapshotChunks:
		return fmt.Errorf("fetch chunks: height %d with %d chunks: want height >= 1 and 1 to %d chunks", spec.Height, spec.Chunks, MaxSnapshotChunks)
	case spec.Verify == nil:
		return errors.New("fetch chunks: Verify is required")
	}
	log := n.log.With("snapshot_height", spec.Height)
	queue := make([]uint32, 0, spec.Chunks)
	done := uint32(0)
	for i := range spec.Chunks {
		if spec.Done != nil && spec.Done(i) {
			done++
			continue
		}
		queue = append(queue, i)
	}
	peers := make(map[peer.ID]*chunkPeer, len(spec.Peers))
	for _, p := range spec.Peers {
		peers[p] = &chunkPeer{}
	}
	if done == spec.Chunks {
		return nil
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	results := make(chan chunkResult, spec.InFlight)
	avoid := make(map[uint32]peer.ID) // the peer a chunk last failed from
	var (
		inflight int
		fetched  uint32
		failed   uint32
		bytes    int64
		started  = time.Now()
	)
	leave := func(p peer.ID, cp *chunkPeer, why string) {
		if cp.out == "" {
			cp.out = why
			log.Info("state sync: peer left out of the fetch", "peer", p, "reason", why)
		}
	}
	for {
		// Hand out chunks while there are free slots and willing peers.
		now := time.Now()
		for len(queue) > 0 && inflight < spec.InFlight {
			idx := queue[0]
			p := pickChunkPeer(peers, spec.PerPeer, now, avoid[idx])
			if p == "" {
				break
			}
			queue = queue[1:]
			peers[p].active++
			inflight++
			wg.Go(func() {
				r := chunkResult{p: p, index: idx}
				// Offering peers were connected when they offered: one
				// that is gone is not dialled again, it is left out.
				a, err := n.snapshotCall(network.WithNoDial(ctx, "state sync chunk"), p,
					snapshotRequest{kind: snapKindChunk, height: spec.Height, index: idx}, spec.Timeout, spec.ResponseTimeout)
				switch {
				case err != nil:
					r.err = err
				case a.status == snapBusy:
					r.err = errSnapBusy
				case a.status == snapNotFound:
					r.err = ErrNotFound
				default:
					r.chunk = a.body
				}
				results <- r // buffered for every request in flight
			})
		}

		live, wake := 0, time.Time{}
		for p, cp := range peers {
			switch {
			case cp.out != "":
				continue
			case n.IsBanned(p):
				leave(p, cp, "banned")
				continue
			}
			live++
			if cp.active == 0 && cp.rest.After(now) && (wake.IsZero() || cp.rest.Before(wake)) {
				wake = cp.rest
			}
		}
		if live == 0 && inflight == 0 {
			why := make([]string, 0, len(peers))
			for p, cp := range peers {
				why = append(why, fmt.Sprintf("%s: %s", p, cp.out))
			}
			slices.Sort(why)
			return fmt.Errorf("fetch chunks of height %d: %d of %d done: %w (%v)", spec.Height, done, spec.Chunks, ErrNoSnapshotPeers, why)
		}

		r, ok, err := waitChunk(ctx, results, wake)
		if err != nil {
			return fmt.Errorf("fetch chunks of height %d: %d of %d done: %w", spec.Height, done, spec.Chunks, err)
		}
		if !ok {
			continue // a resting peer may be asked again
		}
		inflight--
		cp := peers[r.p]
		cp.active--
		if r.err == nil {
			err := spec.Verify(r.index, r.chunk)
			switch {
			case err == nil:
				done++
				fetched++
				bytes += int64(len(r.chunk))
				cp.failures = 0
				cp.served++
				delete(avoid, r.index)
				if spec.Progress != nil {
					pr := progressOf(done, spec.Chunks, fetched, bytes, started, r.p)
					pr.Failed = failed
					spec.Progress(pr)
				}
				if done == spec.Chunks {
					el := time.Since(started)
					log.Info("state sync: chunks fetched", "chunks", fetched, "bytes", bytes, "failed_requests", failed, "elapsed", el,
						"mb_per_s", float64(bytes)/(1<<20)/max(el.Seconds(), 1e-9))
					return nil
				}
				continue
			case errors.Is(err, ErrAbort):
				return fmt.Errorf("fetch chunks of height %d: chunk %d: %w", spec.Height, r.index, err)
			}
			r.err = peerFault{fmt.Errorf("chunk %d of height %d: %w", r.index, spec.Height, err)}
		}

		// The chunk goes back to the front of the queue, for another peer.
		failed++
		queue = slices.Insert(queue, 0, r.index)
		avoid[r.index] = r.p
		switch {
		case isPeerFault(r.err):
			n.Ban(r.p, "state sync: "+r.err.Error())
			leave(r.p, cp, "banned: "+r.err.Error())
		case errors.Is(r.err, ErrNotFound):
			why := fmt.Sprintf("answered not found for chunk %d of the snapshot of height %d it offered", r.index, spec.Height)
			n.Penalize(r.p, PenaltyMissingSnapshot, why)
			leave(r.p, cp, why)
		case ctx.Err() != nil:
		case n.host.Network().Connectedness(r.p) != network.Connected:
			leave(r.p, cp, "disconnected")
		default:
			cp.failures++
			cp.rest = time.Now().Add(spec.RetryBackoff << min(cp.failures-1, maxBackoffDoublings))
			log.Debug("state sync: chunk request failed", "peer", r.p, "index", r.index, "failures", cp.failures, "err", r.err)
			if cp.failures >= spec.MaxFailures {
				leave(r.p, cp, fmt.Sprintf("%d requests in a row failed, last: %v", cp.failures, r.err))
			}
		}
	}
}

// waitChunk waits for a result (ok), until wake if it is set, or for ctx
// to end (err).
func waitChunk(ctx context.Context, results <-chan chunkResult, wake time.Time) (r chunkResult, ok bool, err error) {
	var fire <-chan time.Time
	if !wake.IsZero() {
		t := time.NewTimer(time.Until(wake))
		defer t.Stop()
		fire = t.C
	}
	select {
	case <-ctx.Done():
		return r, false, ctx.Err()
	case <-fire:
		return r, false, nil
	case r = <-results:
		return r, true, nil
	}
}

// pickChunkPeer chooses, among peers still in the fetch, not resting and
// below perPeer requests in flight, one with the fewest in flight (at
// random among equals), other than avoid unless it is the only one.
func pickChunkPeer(peers map[peer.ID]*chunkPeer, perPeer int, now time.Time, avoid peer.ID) peer.ID {
	var best []peer.ID
	bestActive := perPeer
	fallback := false
	for p, cp := range peers {
		if cp.out != "" || cp.active >= perPeer || cp.rest.After(now) {
			continue
		}
		if p == avoid {
			fallback = true
			continue
		}
		switch {
		case cp.active < bestActive:
			best, bestActive = append(best[:0], p), cp.active
		case cp.active == bestActive:
			best = append(best, p)
		}
	}
	if len(best) == 0 {
		if fallback {
			return avoid
		}
		return ""
	}
	slices.Sort(best) // map order is random; rand alone decides
	return best[rand.N(len(best))]
}

// progressOf builds a progress report.
func progressOf(done, total, fetched uint32, bytes int64, started time.Time, from peer.ID) FetchProgress {
	el := time.Since(started)
	pr := FetchProgress{Done: done, Total: total, Fetched: fetched, Bytes: bytes, Elapsed: el, From: from}
	if s := el.Seconds(); s > 0 {
		pr.BytesPerSecond = float64(bytes) / s
	}
	if fetched > 0 {
		pr.ETA = time.Duration(float64(el) * float64(total-done) / float64(fetched))
	}
	return pr
}
