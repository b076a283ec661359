package node

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// recordingHandler keeps the messages of every record at or above a level
// (and passes everything to next, if set).
type recordingHandler struct {
	mu    *sync.Mutex
	recs  *[]string
	level slog.Level
	attrs []slog.Attr
}

func newRecordingLogger(level slog.Level) (*slog.Logger, func() []string) {
	h := &recordingHandler{mu: new(sync.Mutex), recs: new([]string), level: level}
	return slog.New(h), func() []string {
		h.mu.Lock()
		defer h.mu.Unlock()
		return slices.Clone(*h.recs)
	}
}

func (h *recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	*h.recs = append(*h.recs, b.String())
	h.mu.Unlock()
	return nil
}
func (h *recordingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(slices.Clone(h.attrs), as...)
	return &c
}
func (h *recordingHandler) WithGroup(string) slog.Handler { return h }

// devNode is an in-process dev chain (one validator, a funded account) on a
// home that survives restarts.
type devNode struct {
	t    *testing.T
	home string
	key  crypto.PrivKey
	n    *Node
	logs func() []string
}

func newDevNode(t *testing.T) *devNode {
	t.Helper()
	home := filepath.Join(t.TempDir(), "dev")
	_, key, err := InitDevHome(home)
	if err != nil {
		t.Fatal(err)
	}
	d := &devNode{t: t, home: home, key: key}
	t.Cleanup(func() {
		if d.n != nil {
			d.n.Stop()
		}
	})
	return d
}

// open makes the node (New) without starting it.
func (d *devNode) open() error {
	d.t.Helper()
	cfg, err := LoadConfig(d.home)
	if err != nil {
		d.t.Fatal(err)
	}
	cfg.P2P.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.RPC.ListenAddr = "127.0.0.1:0"
	log, logs := newRecordingLogger(slog.LevelInfo)
	n, err := New(cfg, Options{Logger: log})
	if err != nil {
		return err
	}
	d.n, d.logs = n, logs
	return nil
}

func (d *devNode) start() {
	d.t.Helper()
	if err := d.open(); err != nil {
		d.t.Fatal(err)
	}
	if err := d.n.Start(context.Background()); err != nil {
		d.t.Fatal(err)
	}
}

func (d *devNode) stop() {
	d.t.Helper()
	if err := d.n.Stop(); err != nil {
		d.t.Fatalf("stop: %v", err)
	}
	d.n = nil
}

// transfer submits a transfer with nonce and waits until the node
// committed it, or fails after timeout.
func (d *devNode) transfer(nonce uint64, timeout time.Duration) {
	d.t.Helper()
	sub := d.n.Subscribe(64)
	defer sub.Close()
	tx := &ledger.Tx{ChainID: DevChainID, To: ledgerAddr("recovery"), Amount: 1, Fee: 1, Nonce: nonce}
	tx.Sign(d.key)
	if err := d.n.SubmitTx(context.Background(), tx); err != nil {
		d.t.Fatalf("submit nonce %d: %v", nonce, err)
	}
	deadline := time.After(timeout)
	for {
		if _, _, err := d.n.Store().Tx(tx.Hash()); err == nil {
			return
		}
		select {
		case _, ok := <-sub.C():
			if !ok {
				sub = d.n.Subscribe(64)
			}
		case <-d.n.Done():
			d.t.Fatalf("node stopped: %v", d.n.Err())
		case <-deadline:
			st := d.n.Status()
			d.t.Fatalf("transfer nonce %d not committed within %s: store at %d, consensus at %d/%d, problems %q\nlog:\n%s",
				nonce, timeout, st.Height, st.ConsensusHeight, st.ConsensusRound, st.Problems, strings.Join(d.logs(), "\n"))
		}
	}
}

func (d *devNode) errorLogs() []string {
	var out []string
	for _, l := range d.logs() {
		if strings.HasPrefix(l, "ERROR") {
			out = append(out, l)
		}
	}
	return out
}

// cutJournal cuts the newest LevelDB journal (ledger.db/*.log) of home so
// that its last k records (synced write batches: one per committed block)
// are lost, the way a disk that lied about fsync or a bad sector loses
// them: the file is truncated a few bytes into the k-th last record, which
// LevelDB then drops as torn.
func cutJournal(t *testing.T, home string, k int) {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(DefaultConfig(home).LedgerDBDir(), "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no LevelDB journal in %s: %v", home, err)
	}
	slices.Sort(logs)
	path := logs[len(logs)-1]
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The journal is 32 KiB blocks of chunks: checksum (4), length (2),
	// type (1: full, 2: first, 3: middle, 4: last), data.
	const block, header = 32 << 10, 7
	var starts []int
	for off := 0; off+header <= len(b); {
		if rest := block - off%block; rest < header {
			off += rest
			continue
		}
		n := int(binary.LittleEndian.Uint16(b[off+4:]))
		typ := b[off+6]
		if typ == 0 && n == 0 {
			break // preallocated zeroes
		}
		if typ == 1 || typ == 2 {
			starts = append(starts, off)
		}
		off += header + n
	}
	if len(starts) < k {
		t.Fatalf("journal %s holds %d records, want at least %d", path, len(starts), k)
	}
	cut := int64(starts[len(starts)-k] + header + 3)
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}
	t.Logf("cut %s from %d to %d bytes (the last %d of %d records)", path, len(b), cut, k, len(starts))
}

// TestStartRemovesTempFilesOfInterruptedWrites: the temporary files a node
// killed inside a write of its signing state leaves are removed at start.
func TestStartRemovesTempFilesOfInterruptedWrites(t *testing.T) {
	d := newDevNode(t)
	cfg := DefaultConfig(d.home)
	state := cfg.ValidatorStateFile()
	var leftovers []string
	for i := 0; i < 7; i++ {
		p := filepath.Join(filepath.Dir(state), fmt.Sprintf(".%s.tmp-%d", filepath.Base(state), 1000+i))
		if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
		leftovers = append(leftovers, p)
	}
	if err := d.open(); err != nil {
		t.Fatal(err)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("temporary file %s survived the start (%v)", filepath.Base(p), err)
		}
	}
}

// TestStoreThatLostItsLastBlocksRecoversThemFromTheWAL: a dev chain commits
// blocks 1 to 4 and stops; its LevelDB journal then loses its last two
// records (blocks 3 and 4), while the signer has signed at height 4. On
// restart the node must take both blocks from its WAL, log no error, report
// itself healthy and commit a new transfer. (Before, it recovered block 3,
// started height 4 afresh, the signer refused it as a double sign, the
// chain halted for good, and a spurious "build block ... state is at
// height 3" error was logged.)
func TestStoreThatLostItsLastBlocksRecoversThemFromTheWAL(t *testing.T) {
	d := newDevNode(t)
	d.start()
	for nonce := uint64(0); nonce < 4; nonce++ {
		d.transfer(nonce, 30*time.Second)
	}
	if h := d.n.Store().Height(); h != 4 {
		t.Fatalf("height %d after four transfers, want 4", h)
	}
	d.stop()
	cutJournal(t, d.home, 2)
	if err := d.open(); err != nil {
		t.Fatal(err)
	}
	if h := d.n.Store().Height(); h != 2 {
		t.Fatalf("store at height %d after the cut, want 2 (the cut should lose blocks 3 and 4)", h)
	}
	if err := d.n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	d.transfer(4, 30*time.Second)
	if h := d.n.Store().Height(); h != 5 {
		t.Fatalf("store at height %d after recovery and a transfer, want 5", h)
	}
	if st := d.n.Status(); len(st.Problems) > 0 {
		t.Fatalf("problems after recovery: %q", st.Problems)
	}
	if errs := d.errorLogs(); len(errs) > 0 {
		t.Fatalf("errors logged during recovery:\n%s", strings.Join(errs, "\n"))
	}
}

// TestStoreThatLostBlocksNeitherWALNorPeersHoldStops: the same loss, but
// the WAL is gone too and the node has no peers: it must refuse to run with
// an error naming the heights and what to do, instead of halting silently
// while healthy.
func TestStoreThatLostBlocksNeitherWALNorPeersHoldStops(t *testing.T) {
	d := newDevNode(t)
	d.start()
	for nonce := uint64(0); nonce < 4; nonce++ {
		d.transfer(nonce, 30*time.Second)
	}
	d.stop()
	cutJournal(t, d.home, 2)
	if err := os.RemoveAll(DefaultConfig(d.home).WALDir()); err != nil {
		t.Fatal(err)
	}
	if err := d.open(); err != nil {
		t.Fatal(err)
	}
	if err := d.n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.n.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("node still running on a store missing blocks 3 and 4; status %+v", d.n.Status())
	}
	err := d.n.Err()
	for _, want := range []string{"is at height 2", "signed at height 4", "block 3 was committed", "Restore"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("node stopped with %v, want an error containing %q", err, want)
		}
	}
}

// TestHealthReportsASignerThatCannotVote: the store lost only its last
// block (4) and the WAL is gone, so the signer, which signed at height 4,
// refuses every vote of the new round 0 at height 4, and a chain whose only
// validator this is cannot progress. /health must say so (503) instead of
// reporting the node healthy.
func TestHealthReportsASignerThatCannotVote(t *testing.T) {
	d := newDevNode(t)
	d.start()
	for nonce := uint64(0); nonce < 4; nonce++ {
		d.transfer(nonce, 30*time.Second)
	}
	d.stop()
	cutJournal(t, d.home, 1)
	if err := os.RemoveAll(DefaultConfig(d.home).WALDir()); err != nil {
		t.Fatal(err)
	}
	d.start()
	tx := &ledger.Tx{ChainID: DevChainID, To: ledgerAddr("recovery"), Amount: 1, Fee: 1, Nonce: 3}
	tx.Sign(d.key)
	if err := d.n.SubmitTx(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	url := "http://" + d.n.RPCAddr() + "/health"
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		var h api.Health
		err = json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusServiceUnavailable && !h.Healthy &&
			slices.ContainsFunc(h.Problems, func(p string) bool { return strings.Contains(p, "signer refuses to sign at height 4") }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health answers %d %+v for a validator whose signer refuses every vote at its height", resp.StatusCode, h)
		}
		// Polling: the refusal is internal to the node; /health is what is under test.
		select {
		case <-d.n.Done():
			t.Fatalf("node stopped: %v", d.n.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestValidatorWithoutSigningStateOrWALRefusesToSign: a dev chain commits
// blocks 1 to 4; then its store loses block 4 and both its signing state
// and its WAL are deleted. Restarted, it knows nothing of the block 4 it
// proposed and voted for, and would propose and vote for a second, different
// block 4: a double sign. The double-sign check finds its signatures in the
// latest stored commits, above the (empty) signing state, and the node
// stops before signing anything.
func TestValidatorWithoutSigningStateOrWALRefusesToSign(t *testing.T) {
	d := newDevNode(t)
	d.start()
	for nonce := uint64(0); nonce < 4; nonce++ {
		d.transfer(nonce, 30*time.Second)
	}
	orig, err := d.n.Store().Block(4)
	if err != nil {
		t.Fatal(err)
	}
	d.stop()
	cutJournal(t, d.home, 1)
	cfg := DefaultConfig(d.home)
	for _, p := range []string{cfg.WALDir(), cfg.ValidatorStateFile()} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	d.start()
	// The transfer of the lost block 4, submitted again, gives the node
	// something to propose at height 4.
	tx := &ledger.Tx{ChainID: DevChainID, To: ledgerAddr("recovery"), Amount: 1, Fee: 1, Nonce: 3}
	tx.Sign(d.key)
	d.n.SubmitTx(context.Background(), tx)
	sub := d.n.Subscribe(16)
	defer sub.Close()
	select {
	case <-d.n.Done():
	case ev := <-sub.C():
		t.Fatalf("the validator signed a second block at height %d (%s; the first was %s): a double sign",
			ev.Block.Header.Height, ev.Block.Hash(), orig.Hash())
	case <-time.After(30 * time.Second):
		t.Fatalf("node neither stopped nor committed within 30s; status %+v", d.n.Status())
	}
	if err := d.n.Err(); !errors.Is(err, ErrOwnSignatureAhead) || !strings.Contains(err.Error(), "height 3") {
		t.Fatalf("node stopped with %v, want ErrOwnSignatureAhead naming height 3", err)
	}
	if _, err := os.Stat(cfg.ValidatorStateFile()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the signing state was written (%v): the validator signed something", err)
	}
	// With the check off (an operator who knows the key signs nowhere
	// else) the node starts.
	d.n = nil
	cfgOff, err := LoadConfig(d.home)
	if err != nil {
		t.Fatal(err)
	}
	if cfgOff.Consensus.DoubleSignCheckHeight != DefaultDoubleSignCheckHeight {
		t.Fatalf("double_sign_check_height defaults to %d, want %d", cfgOff.Consensus.DoubleSignCheckHeight, DefaultDoubleSignCheckHeight)
	}
}

// TestFreshHomeWithAnActiveValidatorKeyRefusesAfterBlockSync: a validator
// of a running four-validator network restarts with an empty data
// directory (no store, no WAL, no signing state) and the same key. Its store
// holds nothing to check, so it must not sign before it has fetched the
// chain by block sync and found its own signatures in the commits it
// received; then it stops. (The chain here makes a block every ~50 ms, so
// the check looks at every height instead of the default number.)
func TestFreshHomeWithAnActiveValidatorKeyRefusesAfterBlockSync(t *testing.T) {
	w := startTestnet(t, 4, nil)
	w.waitHeight(6, 60*time.Second)
	// The check can only find a signature a commit carries: a commit holds
	// the precommits its decider had, which need not include node 3's.
	w.waitCommitSignedBy(3, 60*time.Second)
	w.nodes[3].Stop()
	w.nodes[3] = nil
	home := w.tn.Nodes[3].Home
	if err := os.RemoveAll(DefaultConfig(home).DataDir()); err != nil {
		t.Fatal(err)
	}
	w.start(3, func(c *Config) { c.Consensus.DoubleSignCheckHeight = 1 << 40 })
	nd := w.nodes[3]
	select {
	case <-nd.Done():
	case <-time.After(90 * time.Second):
		t.Fatalf("validator with a fresh home still running at height %d", nd.Store().Height())
	}
	if err := nd.Err(); !errors.Is(err, ErrOwnSignatureAhead) {
		t.Fatalf("node stopped with %v, want ErrOwnSignatureAhead", err)
	}
	if h := nd.Store().Height(); h < 6 {
		t.Fatalf("stopped at height %d, before fetching the chain", h)
	}
	if _, err := os.Stat(DefaultConfig(home).ValidatorStateFile()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the signing state was written (%v): the validator signed before the check", err)
	}
	w.nodes[3] = nil
}

// TestValidatorWhoseStoreLostBlocksFetchesThemFromPeers: a validator of a
// four-validator network stops; its LevelDB journal loses its last two
// records and its WAL is deleted, so neither holds the blocks it signed
// for. Restarted, it must fetch them with their commits from its peers by
// block sync, rejoin consensus and report no problem, not stop or stall.
func TestValidatorWhoseStoreLostBlocksFetchesThemFromPeers(t *testing.T) {
	w := startTestnet(t, 4, nil)
	w.waitHeight(5, 60*time.Second)
	w.nodes[3].Stop()
	w.nodes[3] = nil
	home := w.tn.Nodes[3].Home
	cutJournal(t, home, 2)
	if err := os.RemoveAll(DefaultConfig(home).WALDir()); err != nil {
		t.Fatal(err)
	}
	w.start(3, nil)
	top := w.nodes[0].Store().Height()
	w.waitHeight(top+5, 90*time.Second, 3)
	if st := w.nodes[3].Status(); len(st.Problems) > 0 {
		t.Fatalf("problems after catching up: %q", st.Problems)
	}
	w.checkSameChain()
}

// waitCommitSignedBy waits until node 0 stores a block whose commit, or
// whose last commit, carries validator i's signature.
func (w *testNet) waitCommitSignedBy(i int, timeout time.Duration) {
	w.t.Helper()
	n0 := w.nodes[0]
	idx, ok := n0.Validators().ByAddress(w.nodes[i].self)
	if !ok {
		w.t.Fatalf("node %d is not a validator", i)
	}
	signed := func(c *ledger.Commit) bool {
		if c == nil {
			return false
		}
		for _, s := range c.Sigs {
			if s.ValidatorIndex == uint32(idx) {
				return true
			}
		}
		return false
	}
	sub := n0.Subscribe(256)
	defer sub.Close()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				w.t.Fatal("block subscription dropped")
			}
			if signed(ev.Commit) || signed(ev.Block.LastCommit) {
				return
			}
		case <-n0.Done():
			w.t.Fatalf("node 0 stopped: %v", n0.Err())
		case <-deadline:
			w.t.Fatalf("no commit carried node %d's signature within %s", i, timeout)
		}
	}
}
