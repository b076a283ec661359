package adversary

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/internal/harness/localnet"
	"github.com/ledgerd/ledgerd/internal/testkit/netports"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/node"
	"github.com/ledgerd/ledgerd/privval"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Config shapes a run. Zero values mean the documented defaults.
type Config struct {
	// Bin is the ledgerd binary the validators run (required).
	Bin string
	// Dir holds the network's homes; empty: a temporary directory,
	// removed afterwards unless Keep.
	Dir  string
	Keep bool
	// Seed determines every identity and every random choice of the
	// attacks.
	Seed uint64
	// Attacks names the attacks to run, in order; empty: all of Attacks().
	Attacks []string
	// Duration is each attack's length (default 35s); an attack's
	// MinDuration raises it.
	Duration time.Duration
	// Baseline is the measured window before any attack (default 35s),
	// after Warmup (default 5s) of load.
	Baseline time.Duration
	Warmup   time.Duration
	// Rate is the honest load in transfers per second (default 300) from
	// Accounts funded accounts (default 60).
	Rate     float64
	Accounts int
	// Intensity scales every attack's rates (default 1).
	Intensity float64
	// LatencyFloor is the absolute slack of the latency check: an attack's
	// p99 may reach max(2 x baseline p99, baseline p99 + LatencyFloor)
	// (default 1s), so a loaded two-core machine does not flake.
	LatencyFloor time.Duration
	// PenaltyWait bounds the wait for the nodes to penalise an
	// identifiable attacker after its attack (default 5s).
	PenaltyWait time.Duration
	// Recover bounds the wait for three new blocks after an attack before
	// the network is restarted to go on (default 30s).
	Recover time.Duration
	// Drain bounds the wait for every admitted transfer to commit after
	// the load stops (default 60s).
	Drain time.Duration
	// Progress receives one line per phase; nil discards.
	Progress io.Writer
}

func (c Config) withDefaults() (Config, error) {
	if c.Bin == "" {
		return c, errors.New("adversary: the ledgerd binary is required")
	}
	setDefault(&c.Duration, 35*time.Second)
	setDefault(&c.Baseline, 35*time.Second)
	setDefault(&c.Warmup, 5*time.Second)
	setDefault(&c.Rate, 300)
	setDefault(&c.Accounts, 60)
	setDefault(&c.Intensity, 1)
	setDefault(&c.LatencyFloor, time.Second)
	setDefault(&c.PenaltyWait, 5*time.Second)
	setDefault(&c.Recover, 30*time.Second)
	setDefault(&c.Drain, 60*time.Second)
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	all := Attacks()
	if len(c.Attacks) == 0 {
		for _, a := range all {
			c.Attacks = append(c.Attacks, a.Name)
		}
	}
	for _, name := range c.Attacks {
		if !slices.ContainsFunc(all, func(a Attack) bool { return a.Name == name }) {
			return c, fmt.Errorf("adversary: unknown attack %q", name)
		}
	}
	return c, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

const (
	validators = 4
	restarted  = validators - 1 // the validator the slot-holding attack restarts
	byzantine  = validators - 1 // the validator whose key the attacker holds
	twinSlot   = validators
	observed   = 0 // the node whose heads time the commits
)

// runner is one run's state.
type runner struct {
	cfg     Config
	net     *localnet.Net
	clients []*client.Client
	targets []peer.AddrInfo
	params  ledger.ConsensusParams
	genesis crypto.Hash
	load    *load
	obs     *observer
	env     *Env
	base    int

	restartMu sync.Mutex
	catchUpTo uint64 // the others' height when the restarted validator came back
	backAt    time.Time
}

// Run spawns a four-validator network, drives honest load, measures a
// baseline, runs each attack with the load on, and judges every attack
// against the baseline. A non-nil report comes back whenever the network
// ran, even with an error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg}
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "ledgerd-adversary-"); err != nil {
			return nil, fmt.Errorf("adversary: %w", err)
		}
	}
	defer func() {
		if cfg.Dir == "" && !cfg.Keep {
			os.RemoveAll(dir)
		}
	}()
	rep := &Report{Seed: cfg.Seed, Rate: cfg.Rate, Intensity: cfg.Intensity, AttackSeconds: cfg.Duration.Seconds()}
	todo := cfg.Attacks
	for n := 0; len(todo) > 0; n++ {
		if err := r.spawn(ctx, filepath.Join(dir, fmt.Sprintf("net%d", n))); err != nil {
			return rep, err
		}
		rest, err := r.run(ctx, rep, n, todo)
		r.net.StopAll()
		if err != nil {
			return rep, err
		}
		todo = rest
	}
	for _, res := range rep.Results {
		rep.Failed = rep.Failed || !res.Pass
	}
	return rep, nil
}

func (r *runner) progress(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// spawn generates and starts the network and loads the keys.
func (r *runner) spawn(ctx context.Context, dir string) error {
	base, err := netports.Range(2 * (validators + 1))
	if err != nil {
		return fmt.Errorf("adversary: ports: %w", err)
	}
	r.base = base
	params := ledger.DefaultConsensusParams()
	r.clients, r.targets = nil, nil
	r.net, err = localnet.Generate(dir, r.cfg.Bin, node.TestnetOptions{
		ChainID: "adversary", Validators: validators, FundedAccounts: r.cfg.Accounts + 1,
		Balance: node.DevBalance, BasePort: base, Params: &params,
	})
	if err != nil {
		return fmt.Errorf("adversary: generate network: %w", err)
	}
	for i := range validators {
		cfg, err := node.LoadConfig(r.net.Info.Nodes[i].Home)
		if err != nil {
			return fmt.Errorf("adversary: %w", err)
		}
		cfg.P2P.ListenAddrs = cfg.P2P.ListenAddrs[:1] // TCP: QUIC adds nothing on loopback
		if err := cfg.WriteFile(cfg.ConfigFile()); err != nil {
			return fmt.Errorf("adversary: %w", err)
		}
		c, err := client.New(r.net.Info.Nodes[i].RPCAddr)
		if err != nil {
			return fmt.Errorf("adversary: %w", err)
		}
		r.clients = append(r.clients, c)
		ai, err := peer.AddrInfoFromString(r.net.Info.Nodes[i].P2PAddr)
		if err != nil {
			return fmt.Errorf("adversary: node%d address: %w", i, err)
		}
		r.targets = append(r.targets, *ai)
	}
	doc, err := genesis.Load(node.DefaultConfig(r.net.Info.Nodes[0].Home).GenesisFile())
	if err != nil {
		return fmt.Errorf("adversary: %w", err)
	}
	r.params = doc.Params
	r.genesis = doc.Hash()
	r.progress("starting %d validators in %s", validators, dir)
	for i := range validators {
		if err := r.net.Start(i); err != nil {
			r.net.StopAll()
			return fmt.Errorf("adversary: %w", err)
		}
	}
	for i := range validators {
		if _, err := r.waitHeight(ctx, i, 2, time.Minute); err != nil {
			r.net.StopAll()
			return fmt.Errorf("adversary: %w\n%s", err, r.net.Logs(i, 3000))
		}
	}
	return nil
}

// waitHeight waits until node i has committed height h.
func (r *runner) waitHeight(ctx context.Context, i int, h uint64, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := r.clients[i].Status(sctx)
		scancel()
		if err == nil && uint64(st.LatestHeight) >= h {
			return time.Since(start), nil
		}
		if sleepCtx(ctx, 200*time.Millisecond) != nil {
			if err == nil {
				err = fmt.Errorf("at height %d", st.LatestHeight)
			}
			return 0, fmt.Errorf("node%d did not reach height %d within %s: %w", i, h, timeout, err)
		}
	}
}

func (r *runner) accountKey(i int) (crypto.PrivKey, error) {
	return privval.LoadKeyFile(filepath.Join(r.net.Dir, "accounts", fmt.Sprintf("account%d.json", i)))
}

// run drives one network: load, baseline, then attacks from todo until
// one leaves the network unable to commit; it judges what ran there and
// returns the attacks left for a fresh network.
func (r *runner) run(ctx context.Context, rep *Report, netIndex int, todo []string) ([]string, error) {
	keys := make([]crypto.PrivKey, r.cfg.Accounts)
	for i := range keys {
		k, err := r.accountKey(i)
		if err != nil {
			return nil, fmt.Errorf("adversary: %w", err)
		}
		keys[i] = k
	}
	funded, err := r.accountKey(r.cfg.Accounts)
	if err != nil {
		return nil, fmt.Errorf("adversary: %w", err)
	}
	valKey, err := privval.LoadKeyFile(node.DefaultConfig(r.net.Info.Nodes[byzantine].Home).ValidatorKeyFile())
	if err != nil {
		return nil, fmt.Errorf("adversary: %w", err)
	}
	ncfg, err := node.LoadConfig(r.net.Info.Nodes[0].Home)
	if err != nil {
		return nil, fmt.Errorf("adversary: %w", err)
	}
	r.env = &Env{
		ChainID: r.net.Info.ChainID, GenesisHash: r.genesis, Targets: r.targets, ValidatorKey: valKey, FundedKey: funded,
		MaxPeers: ncfg.P2P.MaxPeers, MaxPeersPerIP: ncfg.P2P.MaxPeersPerIP, PeersOf: r.peersOf, Restarted: restarted, RestartValidator: r.restartValidator, CaughtUp: r.caughtUp,
		StartTwin: r.startTwin, EvidenceAgainst: r.evidenceAgainst, Intensity: r.cfg.Intensity,
		Log: slog.New(slog.DiscardHandler),
	}

	t0 := time.Now()
	r.load = newLoad(t0)
	r.obs = newObserver(r.clients[observed], r.load)
	octx, stopObs := context.WithCancel(ctx)
	var bg sync.WaitGroup
	defer func() { stopObs(); bg.Wait() }()
	bg.Go(func() { r.obs.run(octx) })
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	// Honest load goes to every validator but the one that gets restarted.
	bg.Go(func() { _ = r.load.run(lctx, r.env.ChainID, keys, r.clients[:restarted], r.cfg.Rate) })

	rep.Params = r.params
	r.progress("load %.0f tx/s from %d accounts; warm-up %s, baseline %s", r.cfg.Rate, r.cfg.Accounts, r.cfg.Warmup, r.cfg.Baseline)
	if err := sleepCtx(ctx, r.cfg.Warmup); err != nil {
		return nil, err
	}
	base := phase{name: "baseline", from: time.Since(t0)}
	if err := sleepCtx(ctx, r.cfg.Baseline); err != nil {
		return nil, err
	}
	base.to = time.Since(t0)

	all := Attacks()
	var phases []phase
	var results []*Result
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		a := all[slices.IndexFunc(all, func(a Attack) bool { return a.Name == name })]
		res, ph, alive := r.runAttack(ctx, a, t0)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		res.Network = netIndex
		results = append(results, res)
		phases = append(phases, ph)
		if !alive {
			r.progress("no new block within %s after %s: the remaining attacks run on a fresh network", r.cfg.Recover, a.Name)
			break
		}
	}

	stopLoad()
	r.progress("load stopped; draining (up to %s)", r.cfg.Drain)
	r.obs.waitFor(ctx, r.cfg.Drain, func([]blockInfo) bool { return r.load.uncommitted() == 0 })
	stopObs()
	r.judge(ctx, rep, base, phases, results, t0)
	return todo, nil
}

// phase is a window of load time.
type phase struct {
	name     string
	from, to time.Duration
}

// runAttack runs one attack and records what can only be seen then: the
// penalties and the recovery.
func (r *runner) runAttack(ctx context.Context, a Attack, t0 time.Time) (*Result, phase, bool) {
	d := max(r.cfg.Duration, a.MinDuration)
	res := &Result{Attack: a.Name, Origin: a.Origin, Summary: a.Summary, Identifiable: a.Identifiable, RestartsValidator: a.RestartsValidator}
	h := fnv.New64a()
	h.Write([]byte(a.Name))
	// Each attack gets its own loopback /16, 127.(10+i).0.0, i its index
	// in Attacks(): clear of the nodes' 127.0.0.1 and of every other
	// attack's addresses.
	block := 10 + slices.IndexFunc(Attacks(), func(b Attack) bool { return b.Name == a.Name })
	s := newSession(r.env, r.cfg.Seed^h.Sum64(), block)
	if a.prepare != nil {
		a.prepare(s)
	}
	r.progress("attack %s for up to %s", a.Name, d)
	ph := phase{name: a.Name, from: time.Since(t0)}
	actx, cancel := context.WithTimeout(ctx, d)
	err := a.run(actx, s)
	cancel()
	ph.to = time.Since(t0)
	res.Seconds = (ph.to - ph.from).Seconds()
	if err != nil {
		res.Failures = append(res.Failures, "attack could not run: "+err.Error())
	}
	res.Penalties = r.penalties(ctx, s, a.Identifiable)
	s.close()
	res.Sent, res.Bytes = s.sent.Load(), s.bytes.Load()
	res.Identities = len(s.identities())
	s.mu.Lock()
	res.Notes = append(res.Notes, s.notes...)
	res.Failures = append(res.Failures, s.failures...)
	s.mu.Unlock()

	// Recovery: three new blocks after the attack; otherwise the network
	// is dead and the next attack needs a fresh one.
	bs, _ := r.obs.seen()
	top := uint64(0)
	if len(bs) > 0 {
		top = bs[len(bs)-1].height
	}
	start := time.Now()
	if r.obs.waitFor(ctx, r.cfg.Recover, func(bs []blockInfo) bool { return len(bs) > 0 && bs[len(bs)-1].height >= top+3 }) {
		res.RecoverSeconds = time.Since(start).Seconds()
		return res, ph, true
	}
	res.Failures = append(res.Failures, fmt.Sprintf("the chain did not commit 3 new blocks within %s after the attack (halted at height %d)", r.cfg.Recover, top))
	return res, ph, false
}

// penalties judges, per node, what it did to the session's identities:
// "banned" (dropped after the handshake and a redial refused),
// "disconnected", "scored" (a negative gossip score in ledger_peers),
// "charged" (a penalty above zero in ledger_peers) or "none". For
// identifiable attacks it waits up to PenaltyWait for every node to act.
func (r *runner) penalties(ctx context.Context, s *Session, identifiable bool) []string {
	out := make([]string, len(r.targets))
	ids := s.identities()
	judge := func() bool {
		done := true
		for i, t := range r.targets {
			if out[i] == "banned" || out[i] == "disconnected" {
				continue
			}
			out[i] = "none"
			for _, id := range ids {
				if id.droppedBy(t.ID) > 0 {
					out[i] = "disconnected"
					break
				}
			}
			if out[i] == "none" {
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				peers, err := r.clients[i].Peers(pctx)
				cancel()
				if err == nil {
					for _, p := range peers.Peers {
						if !slices.ContainsFunc(ids, func(id *identity) bool { return id.ID().String() == p.ID }) {
							continue
						}
						switch {
						case p.Score < 0:
							out[i] = "scored"
						case p.Penalty > 0 && out[i] == "none":
							out[i] = "charged"
						}
					}
				}
			}
			if out[i] == "none" {
				done = false
			}
		}
		return done
	}
	deadline := time.Now().Add(r.cfg.PenaltyWait)
	for !judge() && identifiable && time.Now().Before(deadline) {
		if sleepCtx(ctx, 250*time.Millisecond) != nil {
			break
		}
	}
	// A dropped identity that cannot dial back is banned.
	for i, t := range r.targets {
		if out[i] != "disconnected" {
			continue
		}
		for _, id := range ids {
			if id.droppedBy(t.ID) == 0 || len(id.connected([]peer.AddrInfo{t})) > 0 {
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := id.join(dctx, t)
			cancel()
			if err != nil || !waitDropped(ctx, id, t) {
				out[i] = "banned"
			}
			break
		}
	}
	return out
}

// waitDropped reports whether a connection that got through is kept: the
// gater may close it right after the handshake.
func waitDropped(ctx context.Context, id *identity, t peer.AddrInfo) bool {
	for range 10 {
		if len(id.connected([]peer.AddrInfo{t})) == 0 {
			return false
		}
		if sleepCtx(ctx, 100*time.Millisecond) != nil {
			break
		}
	}
	return true
}

// peersOf lists the IDs of node i's peers, as ledger_peers reports them.
func (r *runner) peersOf(ctx context.Context, i int) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ps, err := r.clients[i].Peers(ctx)
	if err != nil {
		return nil, fmt.Errorf("peers of node%d: %w", i, err)
	}
	out := make([]string, len(ps.Peers))
	for i, p := range ps.Peers {
		out[i] = p.ID
	}
	return out, nil
}

// restartValidator stops the restarted validator, waits down, starts it
// and records the height it must reach.
func (r *runner) restartValidator(ctx context.Context, down time.Duration) error {
	if err := r.net.Stop(restarted, 15*time.Second); err != nil {
		r.progress("stop node%d: %v", restarted, err)
	}
	if err := sleepCtx(ctx, down); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	st, err := r.clients[observed].Status(sctx)
	cancel()
	if err != nil {
		return fmt.Errorf("height of node%d: %w", observed, err)
	}
	if err := r.net.Start(restarted); err != nil {
		return err
	}
	r.restartMu.Lock()
	r.catchUpTo, r.backAt = uint64(st.LatestHeight), time.Now()
	r.restartMu.Unlock()
	return nil
}

// caughtUp waits until the restarted validator reaches the height the
// others had when it came back.
func (r *runner) caughtUp(ctx context.Context, limit time.Duration) (time.Duration, error) {
	r.restartMu.Lock()
	h, back := r.catchUpTo, r.backAt
	r.restartMu.Unlock()
	if _, err := r.waitHeight(ctx, restarted, h, limit-time.Since(back)); err != nil {
		return 0, err
	}
	return time.Since(back), nil
}

// startTwin starts a second node signing with the byzantine validator's
// key: the validator's genesis and key, a new node key, an empty data
// directory (so a fresh last-signed state), dialling every validator.
func (r *runner) startTwin(ctx context.Context) (func() error, error) {
	src := node.DefaultConfig(r.net.Info.Nodes[byzantine].Home)
	home := filepath.Join(r.net.Dir, "twin")
	if err := os.RemoveAll(home); err != nil {
		return nil, err
	}
	doc, err := genesis.Load(src.GenesisFile())
	if err != nil {
		return nil, err
	}
	key, err := privval.LoadKeyFile(src.ValidatorKeyFile())
	if err != nil {
		return nil, err
	}
	cfg := node.DefaultConfig(home)
	cfg.Moniker = fmt.Sprintf("twin-of-node%d", byzantine)
	// A byzantine operator turns off the check that would make its twin
	// stop once it finds the key's signatures in the commits it synced
	// (with it on, the twin stops itself and never equivocates).
	cfg.Consensus.DoubleSignCheckHeight = 0
	cfg.P2P.ListenAddrs = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", r.base+2*twinSlot)}
	cfg.RPC.ListenAddr = fmt.Sprintf("127.0.0.1:%d", r.base+2*twinSlot+1)
	for i := range validators {
		cfg.P2P.PersistentPeers = append(cfg.P2P.PersistentPeers, r.net.Info.Nodes[i].P2PAddr)
	}
	if _, err := node.InitHome(home, node.InitOptions{Genesis: doc, ValidatorKey: &key, Config: cfg}); err != nil {
		return nil, fmt.Errorf("twin home: %w", err)
	}
	tn := node.TestnetNode{Home: home, Moniker: cfg.Moniker, Validator: true, RPCAddr: cfg.RPC.ListenAddr}
	if len(r.net.Info.Nodes) == twinSlot {
		r.net.Info.Nodes = append(r.net.Info.Nodes, tn)
	} else {
		r.net.Info.Nodes[twinSlot] = tn
	}
	if err := r.net.Start(twinSlot); err != nil {
		return nil, err
	}
	return func() error { return r.net.Stop(twinSlot, 15*time.Second) }, nil
}

// evidenceAgainst waits for a committed block carrying evidence against
// the byzantine validator and returns its height.
func (r *runner) evidenceAgainst(ctx context.Context, limit time.Duration) (uint64, error) {
	addr := r.env.ValidatorKey.PubKey().Address()
	var at uint64
	ok := r.obs.waitFor(ctx, limit, func(bs []blockInfo) bool {
		for _, b := range bs {
			if slices.Contains(b.evidence, addr) {
				at = b.height
				return true
			}
		}
		return false
	})
	if !ok {
		return 0, fmt.Errorf("none within %s", limit)
	}
	return at, nil
}

// forkCheck compares every node's block hash at every height the observer
// saw up to the lowest node's height; it returns the first difference.
func (r *runner) forkCheck(ctx context.Context, bs []blockInfo) (string, uint64) {
	var checked uint64
	for _, b := range bs {
		for i := range validators {
			if i == observed {
				continue
			}
			var blk *api.Block
			var err error
			for attempt := 0; attempt < 5; attempt++ {
				fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				blk, err = r.clients[i].Block(fctx, api.At(b.height))
				cancel()
				if err == nil {
					break
				}
			}
			if err != nil {
				if code, ok := client.CodeOf(err); ok && code == api.CodeNotFound {
					return "", checked // this node is not there yet
				}
				return fmt.Sprintf("node%d height %d: %v", i, b.height, err), checked
			}
			if blk.Hash != b.hash {
				return fmt.Sprintf("height %d: node%d has %s, node%d has %s", b.height, observed, b.hash, i, blk.Hash), checked
			}
		}
		checked = b.height
	}
	return "", checked
}
