package adversary

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/internal/harness/bench"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/p2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Env is what the attacks know of the network under attack. Everything a
// real attacker could not know is limited to what a byzantine participant
// holds: the peer addresses (public), one validator's key (the byzantine
// validator, under a third of the power) and one funded account's key.
type Env struct {
	// ChainID names the chain; topics and protocols carry it.
	ChainID string
	// GenesisHash is the hash of the chain's genesis document, which the
	// handshake states (public: any node of the chain tells it).
	GenesisHash crypto.Hash
	// Targets are the nodes attacked (every validator).
	Targets []peer.AddrInfo
	// ValidatorKey is the byzantine validator's consensus key.
	ValidatorKey crypto.PrivKey
	// FundedKey is a funded account the honest load does not use.
	FundedKey crypto.PrivKey
	// MaxPeers is the nodes' max_peers setting.
	MaxPeers int
	// MaxPeersPerIP is the nodes' max_peers_per_ip setting.
	MaxPeersPerIP int
	// RestartValidator stops the validator at index Restarted, keeps it
	// down for down, starts it again and returns once it runs; the
	// slot-holding attack uses it.
	RestartValidator func(ctx context.Context, down time.Duration) error
	// Restarted is the index in Targets of the validator RestartValidator
	// restarts.
	Restarted int
	// CaughtUp returns nil once the restarted validator has reached the
	// height the other nodes had when it came back, and an error after
	// limit.
	CaughtUp func(ctx context.Context, limit time.Duration) (time.Duration, error)
	// StartTwin starts a byzantine twin of the validator whose key is
	// ValidatorKey (a second node signing with it) and returns its stop.
	StartTwin func(ctx context.Context) (stop func() error, err error)
	// EvidenceAgainst reports whether evidence against the validator of
	// ValidatorKey has been committed, waiting up to limit.
	EvidenceAgainst func(ctx context.Context, limit time.Duration) (uint64, error)
	// PeersOf lists the peer IDs node i counts as peers (ledger_peers).
	PeersOf func(ctx context.Context, i int) ([]string, error)
	// Intensity scales every attack's rates (1 = the documented defaults).
	Intensity float64
	// Log receives progress.
	Log *slog.Logger
}

// maxIdentities bounds the identities one attack creates (rotating after
// bans, churning, filling slots).
const maxIdentities = 512

// Session is one attack's run: the identities it used, what it sent, and
// the checks of its own it failed. The runner judges the penalties from
// the identities once the attack returns, then closes the session.
type Session struct {
	env *Env
	rng *rand.Rand
	// block is the session's own range of loopback addresses,
	// 127.<block>.0.0/16, so no attack's identities share an address
	// (and so a per-IP count) with another's.
	block  int
	nextIP atomic.Int64

	mu       sync.Mutex
	ids      []*identity
	notes    []string
	failures []string

	sent  atomic.Int64
	bytes atomic.Int64

	// txPool is what the attack's prepare step signed beforehand.
	txPool []*ledger.Tx

	scout   *identity
	height  atomic.Uint64
	stopped chan struct{}
	wg      sync.WaitGroup
}

func newSession(env *Env, seed uint64, block int) *Session {
	return &Session{env: env, rng: rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d)), block: block, stopped: make(chan struct{})}
}

// attackerIP is the one address of a single attacker: every identity of
// an attack that is not about many addresses comes from it.
func (s *Session) attackerIP() string { return fmt.Sprintf("127.%d.0.1", s.block) }

// sybilIP is a fresh address for a Sybil identity of an attack whose
// point is many identities from many addresses (127.<block>.1.1 on).
func (s *Session) sybilIP() string {
	k := s.nextIP.Add(1) - 1
	return fmt.Sprintf("127.%d.%d.%d", s.block, 1+(k/250)%254, 1+k%250) // 63,500 before one repeats
}

// newID starts an identity (from the attacker's address unless o names
// one) and connects it to every target. Identities are created under the
// session's lock, so the random stream (and so the keys) depends only on
// the seed and the order of creation.
func (s *Session) newID(ctx context.Context, o idOptions) (*identity, error) {
	if o.ip == "" {
		o.ip = s.attackerIP()
	}
	s.mu.Lock()
	if len(s.ids) >= maxIdentities {
		s.mu.Unlock()
		return nil, fmt.Errorf("attack used its %d identities", maxIdentities)
	}
	rng := rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
	s.mu.Unlock()
	id, err := newIdentity(ctx, rng, s.env, o)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
	id.connect(ctx, s.env.Targets)
	return id, nil
}

// identities returns the identities used so far.
func (s *Session) identities() []*identity {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*identity(nil), s.ids...)
}

func (s *Session) note(format string, args ...any) {
	s.mu.Lock()
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

func (s *Session) fail(format string, args ...any) {
	s.mu.Lock()
	s.failures = append(s.failures, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

func (s *Session) randUint64() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Uint64()
}

// rand returns a generator of its own for one goroutine.
func (s *Session) rand() *rand.Rand {
	s.mu.Lock()
	defer s.mu.Unlock()
	return rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
}

// go runs f in a goroutine the session waits for on close.
func (s *Session) goTracked(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// followHeight learns the chain's height the way a peer does, by the
// status protocol with one target, every 250 ms until ctx ends. The scout
// is honest (it claims height 0 and sends nothing else).
func (s *Session) followHeight(ctx context.Context) error {
	scout, err := newIdentity(ctx, s.rand(), s.env, idOptions{ip: s.attackerIP()})
	if err != nil {
		return err
	}
	s.scout = scout
	scout.connect(ctx, s.env.Targets)
	if err := s.refreshHeight(ctx); err != nil {
		return fmt.Errorf("learn the chain's height: %w", err)
	}
	s.goTracked(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = s.refreshHeight(ctx)
			}
		}
	})
	return nil
}

func (s *Session) refreshHeight(ctx context.Context) error {
	var errs []error
	for _, t := range s.env.Targets {
		h, err := exchangeStatus(ctx, s.scout, s.env.ChainID, t, 0)
		if err == nil {
			if h > s.height.Load() {
				s.height.Store(h)
			}
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// consensusHeight is the height being decided, as last learned.
func (s *Session) consensusHeight() uint64 { return s.height.Load() + 1 }

// exchangeStatus runs the status protocol as the dialler: it sends
// claim and returns the target's latest height.
func exchangeStatus(ctx context.Context, id *identity, chainID string, t peer.AddrInfo, claim uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := id.join(ctx, t); err != nil {
		return 0, err
	}
	return askStatus(ctx, id, chainID, t, claim)
}

// askStatus opens a status stream to t (dialling only if ctx allows it),
// sends claim and returns t's answer.
func askStatus(ctx context.Context, id *identity, chainID string, t peer.AddrInfo, claim uint64) (uint64, error) {
	st, err := id.h.NewStream(ctx, t.ID, p2p.ProtocolID(chainID, p2p.StatusProtocol))
	if err != nil {
		return 0, err
	}
	defer st.Reset()
	if d, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(d)
	}
	if err := p2p.WriteFrame(st, p2p.EncodeStatus(claim)); err != nil {
		return 0, err
	}
	if err := st.CloseWrite(); err != nil {
		return 0, err
	}
	frame, err := p2p.ReadFrame(bufio.NewReaderSize(st, 32), p2p.StatusBytes)
	if err != nil {
		return 0, err
	}
	return p2p.DecodeStatus(frame)
}

// gossipLoop publishes next's messages at rate per second (scaled by the
// intensity) from one gossiping identity, starting a fresh one whenever
// the current one has been disconnected from every target, until ctx ends.
func (s *Session) gossipLoop(ctx context.Context, rate float64, next func(r *rand.Rand) (kind string, data []byte)) error {
	rate *= s.env.Intensity
	b, err := bench.NewBucket(rate, max(1, int(rate/10)), time.Now())
	if err != nil {
		return err
	}
	r := s.rand()
	var id *identity
	for ctx.Err() == nil {
		if id == nil || len(id.connected(s.env.Targets)) == 0 {
			if id, err = s.newID(ctx, idOptions{gossip: true}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		if b.Wait(ctx) != nil {
			return nil
		}
		kind, data := next(r)
		if err := id.publish(ctx, s.env.Targets, kind, data); err == nil {
			s.sent.Add(1)
			s.bytes.Add(int64(len(data)))
		}
	}
	return nil
}

// close stops the session's goroutines and every identity.
func (s *Session) close() {
	s.wg.Wait()
	if s.scout != nil {
		s.scout.close()
	}
	for _, id := range s.identities() {
		id.close()
	}
}
