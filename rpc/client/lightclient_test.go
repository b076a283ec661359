package client

import (
	"context"
	"errors"
	"flag"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/light"
	"github.com/ledgerd/ledgerd/rpc/client/clienttest"
)

var seedFlag = flag.Uint64("seed", 0, "seed of the randomised light-client tests (0: a new one each run)")

// testSeed returns the seed to use and logs how to replay it.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano()) | 1
	}
	t.Logf("seed=%d (replay: go test ./rpc/client -run '^%s$' -seed=%d)", s, t.Name(), s)
	return s
}

// lightChain builds a synthetic chain and serves it; it fails the test on
// a fixture error.
func lightChain(t *testing.T, o clienttest.Options) (*clienttest.Chain, *clienttest.Backend, *Client) {
	t.Helper()
	c, err := clienttest.NewChain(o)
	if err != nil {
		t.Fatalf("seed %d: build chain: %v", o.Seed, err)
	}
	b := clienttest.NewBackend(c)
	cl, err := New(clienttest.Serve(t, b))
	if err != nil {
		t.Fatal(err)
	}
	return c, b, cl
}

func trustOf(t *testing.T, c *clienttest.Chain) *light.Trust {
	t.Helper()
	tr, err := light.NewTrust(c.Doc)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// steps records the steps a trust reports.
type steps struct {
	mu   sync.Mutex
	list []light.Step
}

func (s *steps) record(st light.Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, st)
}

func (s *steps) all() []light.Step {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]light.Step(nil), s.list...)
}

// trustedSigned is the power of trusted's members that signed commit h of
// c (what a skip from a header naming trusted as next would count).
func trustedSigned(c *clienttest.Chain, trusted *ledger.ValidatorSet, h uint64) uint64 {
	return light.TrustedPowerSigned(trusted, c.Sets[h], c.Commits[h])
}

// TestLightClientSkipsAheadAcrossSetChanges: a new client, trusting only
// the genesis, verifies the last header of a chain whose set changed
// hundreds of times and was replaced whole twice, fetching a small
// fraction of the headers; every step it took is one the rules allow.
func TestLightClientSkipsAheadAcrossSetChanges(t *testing.T) {
	seed := testSeed(t)
	c, _, cl := lightChain(t, clienttest.Options{Seed: seed, Heights: 2000})
	n := c.Height()
	if len(c.Changes) < 20 || len(c.RotationEnds) < 2 {
		t.Fatalf("seed %d: the chain changed its set %d times with %d full rotations; want at least 20 and 2", seed, len(c.Changes), len(c.RotationEnds))
	}
	// The genesis validators signed nothing near the end: a skip from the
	// genesis straight to the last header is impossible.
	if s := trustedSigned(c, c.Sets[1], n); s != 0 {
		t.Fatalf("seed %d: genesis validators hold %d power in commit %d; the rotations should have removed them", seed, s, n)
	}
	tr := trustOf(t, c)
	var rec steps
	tr.OnStep = rec.record
	hdr, fetched, err := cl.VerifiedHeaderCount(context.Background(), tr, n)
	if err != nil {
		t.Fatalf("seed %d: verify header %d: %v", seed, n, err)
	}
	if hdr.Hash() != c.Blocks[n].Hash() {
		t.Fatalf("seed %d: verified header %d is %s, the chain's is %s", seed, n, hdr.Hash(), c.Blocks[n].Hash())
	}
	st := tr.Stats()
	t.Logf("seed %d: %d heights, %d set changes, %d full rotations: verified header %d fetching %d headers and %d validator sets in %d steps",
		seed, n, len(c.Changes), len(c.RotationEnds), n, fetched, st.SetsFetched, len(rec.all()))
	if fetched != int(st.HeadersFetched) {
		t.Errorf("seed %d: the call counted %d headers, the trust %d", seed, fetched, st.HeadersFetched)
	}
	if fetched*10 > int(n) {
		t.Errorf("seed %d: fetched %d headers to verify header %d; skipping should need far fewer", seed, fetched, n)
	}
	checkSteps(t, seed, c, rec.all(), tr.Period())
	// Asking again costs nothing.
	if _, again, err := cl.VerifiedHeaderCount(context.Background(), tr, n); err != nil || again != 0 {
		t.Errorf("seed %d: verifying header %d again fetched %d headers (err %v), want 0", seed, n, again, err)
	}
}

// checkSteps checks every step against the chain: a sequential step names
// the next set of the trusted header; a skipping step stays within the
// period and more than a third of the trusted set signed its target.
func checkSteps(t *testing.T, seed uint64, c *clienttest.Chain, list []light.Step, period uint64) {
	t.Helper()
	for _, s := range list {
		switch s.Method {
		case light.StepSequential:
			if s.To != s.From+1 {
				t.Errorf("seed %d: sequential step %d -> %d", seed, s.From, s.To)
			}
		case light.StepSkipping:
			if s.To-s.From > period || s.To <= s.From+1 {
				t.Errorf("seed %d: skipping step %d -> %d with trusting period %d", seed, s.From, s.To, period)
			}
			trusted := c.Sets[s.From+1]
			if got := trustedSigned(c, trusted, s.To); got != s.TrustedSigned || 3*got <= trusted.TotalPower() || s.TrustedTotal != trusted.TotalPower() {
				t.Errorf("seed %d: skipping step %d -> %d reports %d of %d trusted power; the chain says %d of %d",
					seed, s.From, s.To, s.TrustedSigned, s.TrustedTotal, got, trusted.TotalPower())
			}
		case light.StepHashChain:
			if s.To >= s.From {
				t.Errorf("seed %d: hash-chain step %d -> %d goes up", seed, s.From, s.To)
			}
		default:
			t.Errorf("seed %d: step %+v has no method", seed, s)
		}
	}
}

// TestSequentialAndSkippingAgree verifies random heights, in random
// order, with a client that verifies every header and with one that
// skips: both trust exactly the chain's headers, and skipping fetches
// fewer.
func TestSequentialAndSkippingAgree(t *testing.T) {
	seed := testSeed(t)
	c, _, cl := lightChain(t, clienttest.Options{Seed: seed, Heights: 400, ChangeEvery: 4})
	if len(c.Changes) < 20 {
		t.Fatalf("seed %d: only %d set changes", seed, len(c.Changes))
	}
	r := rand.New(rand.NewPCG(seed, 7))
	seq, skip := trustOf(t, c), trustOf(t, c)
	seq.Sequential = true
	var seqSteps, skipSteps steps
	seq.OnStep, skip.OnStep = seqSteps.record, skipSteps.record
	ctx := context.Background()
	targets := []uint64{c.Height()}
	for i := 0; i < 12; i++ {
		targets = append(targets, 1+r.Uint64N(c.Height()))
	}
	for _, h := range targets {
		a, err := cl.VerifiedHeader(ctx, seq, h)
		if err != nil {
			t.Fatalf("seed %d: sequential, header %d: %v", seed, h, err)
		}
		b, err := cl.VerifiedHeader(ctx, skip, h)
		if err != nil {
			t.Fatalf("seed %d: skipping, header %d: %v", seed, h, err)
		}
		if a.Hash() != b.Hash() || a.Hash() != c.Blocks[h].Hash() {
			t.Fatalf("seed %d: header %d: sequential %s, skipping %s, chain %s", seed, h, a.Hash(), b.Hash(), c.Blocks[h].Hash())
		}
	}
	for _, s := range seqSteps.all() {
		if s.Method == light.StepSkipping {
			t.Errorf("seed %d: the sequential client skipped %d -> %d", seed, s.From, s.To)
		}
	}
	checkSteps(t, seed, c, seqSteps.all(), seq.Period())
	checkSteps(t, seed, c, skipSteps.all(), skip.Period())
	sq, sk := seq.Stats().HeadersFetched, skip.Stats().HeadersFetched
	t.Logf("seed %d: %d targets over %d heights and %d set changes: sequential fetched %d headers, skipping %d",
		seed, len(targets), c.Height(), len(c.Changes), sq, sk)
	if sk >= sq {
		t.Errorf("seed %d: skipping fetched %d headers, sequential %d", seed, sk, sq)
	}
}

// TestTrustingPeriodIsRespected: with a trusting period of 50 heights, no
// step skips farther, on the way up from the genesis and from a saved
// header far behind.
func TestTrustingPeriodIsRespected(t *testing.T) {
	seed := testSeed(t)
	c, b, cl := lightChain(t, clienttest.Options{Seed: seed, Heights: 600, Rotations: -1})
	const period = 50
	tr := trustOf(t, c)
	tr.TrustingPeriod = period
	var rec steps
	tr.OnStep = rec.record
	b.SetHeight(100)
	ctx := context.Background()
	if _, err := cl.VerifiedHeader(ctx, tr, 100); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	saved := tr.State()
	b.SetHeight(600)
	later := trustOf(t, c)
	later.TrustingPeriod = period
	if err := later.RestoreState(saved); err != nil {
		t.Fatal(err)
	}
	later.OnStep = rec.record
	if _, n, err := cl.VerifiedHeaderCount(ctx, later, 600); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	} else if n < (600-100)/period {
		t.Errorf("seed %d: reached 600 from 100 fetching %d headers; steps of at most %d need %d", seed, n, period, (600-100)/period)
	}
	checkSteps(t, seed, c, rec.all(), period)
	for _, s := range rec.all() {
		if s.Method == light.StepSkipping && s.From < 100 && s.To > 100 {
			t.Errorf("seed %d: step %d -> %d: the restored client did not start from its saved header", seed, s.From, s.To)
		}
	}
}

// TestLyingNodesAreCaught serves made-up validator sets and forged header
// chains; each is caught with an error wrapping ErrVerification that says
// what failed, and no forged header is trusted.
func TestLyingNodesAreCaught(t *testing.T) {
	seed := testSeed(t)
	honest, err := clienttest.NewChain(clienttest.Options{Seed: seed, Heights: 600})
	if err != nil {
		t.Fatal(err)
	}
	const from = 300
	// Colluders: members of the set at from holding at most a third of
	// every set a skip to a forged header could start from (the next sets
	// of heights 0 to from-1), so that only the rule catches them.
	colluders := fewerThanAThird(honest.Sets[1 : from+1])
	if len(colluders) == 0 {
		t.Fatalf("seed %d: no member of the set of height %d holds little enough power to collude", seed, from)
	}
	cases := []struct {
		name      string
		forge     func() (*clienttest.Chain, error)
		lieSet    bool
		lieCommit bool
		target    uint64
		want      string
	}{
		{name: "a commit without two thirds of its set", lieCommit: true, target: 600,
			want: "signers hold"},
		{name: "a set that does not hash to the header's", lieSet: true, target: 600,
			want: "hashes to"},
		{name: "a chain signed by keys that never were validators", target: 600,
			forge: func() (*clienttest.Chain, error) { return honest.Forge(from) },
			want:  "names validator set"},
		{name: "a chain forged from genesis by keys that never were validators", target: 600,
			forge: func() (*clienttest.Chain, error) { return honest.Forge(1) },
			want:  "header 1 names validator set"},
		{name: "a set whose commit lacks a third of the trusted power", target: 600,
			forge: func() (*clienttest.Chain, error) { return honest.Forge(from, colluders...) },
			want:  "names validator set"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			served := honest
			if tc.forge != nil {
				if served, err = tc.forge(); err != nil {
					t.Fatal(err)
				}
			}
			b := clienttest.NewBackend(served)
			if tc.lieSet {
				liar, err := honest.Forge(from)
				if err != nil {
					t.Fatal(err)
				}
				b.LieAboutSets(func(h uint64, _ *ledger.ValidatorSet) *ledger.ValidatorSet {
					if h >= from {
						return liar.Sets[h]
					}
					return nil
				})
			}
			if tc.lieCommit {
				// Above from, commits keep signers holding at most two
				// thirds of the power (the lightest first): more than a
				// third of every trusted set may still be among them.
				b.LieAboutCommits(func(h uint64, honest *ledger.Commit) *ledger.Commit {
					if h < from {
						return nil
					}
					return underTwoThirds(honest, honest.Sigs, served.Sets[h])
				})
			}
			cl, err := New(clienttest.Serve(t, b))
			if err != nil {
				t.Fatal(err)
			}
			for _, mode := range []string{"skipping", "sequential"} {
				tr := trustOf(t, honest)
				tr.Sequential = mode == "sequential"
				_, err := cl.VerifiedHeader(context.Background(), tr, tc.target)
				if !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("seed %d, %s: verifying header %d from a liar: %v; want ErrVerification saying %q", seed, mode, tc.target, err, tc.want)
				}
				t.Logf("%s: %v", mode, err)
				for h := uint64(1); h <= honest.Height(); h++ {
					if got := storedHash(tr, h); got != nil && *got != honest.Blocks[h].Hash() {
						t.Fatalf("seed %d, %s: trusted a forged header at height %d", seed, mode, h)
					}
				}
			}
		})
	}
}

// underTwoThirds returns c with only the signatures of sigs whose signers
// hold together at most two thirds of vs's power, dropping the heaviest.
func underTwoThirds(c *ledger.Commit, sigs []ledger.CommitSig, vs *ledger.ValidatorSet) *ledger.Commit {
	keep := append([]ledger.CommitSig(nil), sigs...)
	power := func() (p uint64) {
		for _, s := range keep {
			p += vs.Get(int(s.ValidatorIndex)).Power
		}
		return p
	}
	for len(keep) > 0 && 3*power() > 2*vs.TotalPower() {
		heaviest := 0
		for i, s := range keep {
			if vs.Get(int(s.ValidatorIndex)).Power > vs.Get(int(keep[heaviest].ValidatorIndex)).Power {
				heaviest = i
			}
		}
		keep = append(keep[:heaviest], keep[heaviest+1:]...)
	}
	out := *c
	out.Sigs = keep
	return &out
}

// fewerThanAThird returns members of the last of sets holding together at
// most a third of the power of each of sets.
func fewerThanAThird(sets []*ledger.ValidatorSet) []crypto.Address {
	last := sets[len(sets)-1]
	var out []crypto.Address
	for i := 0; i < last.Size(); i++ {
		try := append(append([]crypto.Address(nil), out...), last.Get(i).Address())
		ok := true
		for _, vs := range sets {
			var p uint64
			for _, a := range try {
				if j, in := vs.ByAddress(a); in {
					p += vs.Get(j).Power
				}
			}
			if 3*p > vs.TotalPower() {
				ok = false
				break
			}
		}
		if ok {
			out = try
		}
	}
	return out
}

// storedHash returns the hash of the trusted header of height h, if the
// store holds one.
func storedHash(t *light.Trust, h uint64) *crypto.Hash {
	hdr := t.TrustedHeader(h)
	if hdr == nil {
		return nil
	}
	hash := hdr.Hash()
	return &hash
}

// TestOneThirdIsTheLine shows where skipping's trust ends, on a chain whose
// set never changes (four validators of power 10): a header forged by
// validators holding a third of the power or less is rejected; one signed
// by more than a third of the trusted set (two of four) is accepted by
// skipping — the assumption is that no such coalition exists within the
// trusting period — and still rejected by sequential verification, which
// needs two thirds. An endpoint serving the forged header after the
// honest one was trusted is caught as a conflict.
func TestOneThirdIsTheLine(t *testing.T) {
	honest, err := clienttest.NewChain(clienttest.Options{Seed: 1, Heights: 100, ChangeEvery: 1 << 30, Rotations: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(honest.Changes) != 0 {
		t.Fatalf("the chain changed its set at %v", honest.Changes)
	}
	gs := honest.Sets[1]
	one := []crypto.Address{gs.Get(0).Address()}
	two := []crypto.Address{gs.Get(0).Address(), gs.Get(1).Address()}
	ctx := context.Background()
	serve := func(c *clienttest.Chain) string { return clienttest.Serve(t, clienttest.NewBackend(c)) }
	for _, tc := range []struct {
		colluders  []crypto.Address
		skipAccept bool
	}{{one, false}, {two, true}} {
		forged, err := honest.Forge(50, tc.colluders...)
		if err != nil {
			t.Fatal(err)
		}
		cl, _ := New(serve(forged))
		for _, seq := range []bool{false, true} {
			tr := trustOf(t, honest)
			tr.Sequential = seq
			hdr, err := cl.VerifiedHeader(ctx, tr, 100)
			accepted := err == nil
			want := tc.skipAccept && !seq
			if accepted != want {
				t.Errorf("%d of 4 colluding, sequential %v: accepted %v (err %v), want %v", len(tc.colluders), seq, accepted, err, want)
			}
			if accepted && hdr.Hash() != forged.Blocks[100].Hash() {
				t.Errorf("accepted a header that is neither honest nor forged")
			}
			if !accepted && !errors.Is(err, ErrVerification) {
				t.Errorf("%d of 4 colluding, sequential %v: %v does not wrap ErrVerification", len(tc.colluders), seq, err)
			}
		}
	}
	// Two endpoints, one honest, one forged by two of four: once the
	// honest latest header is trusted, the other endpoint serving another
	// header of that height is caught. (Two verifications at once meet in
	// the store instead: TestStoreRefusesAConflictingHeader.)
	forged, _ := honest.Forge(50, two...)
	honestURL := serve(honest)
	tr := trustOf(t, honest)
	first, _ := New(honestURL)
	if _, _, err := first.LatestVerifiedHeader(ctx, tr); err != nil {
		t.Fatal(err)
	}
	cl, _ := New(honestURL, serve(forged))
	_, skipped, err := cl.LatestVerifiedHeader(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 1 || !errors.Is(skipped[0].Err, ErrVerification) || !strings.Contains(skipped[0].Err.Error(), "conflicting headers at height 100") {
		t.Fatalf("skipped %v; want one endpoint caught with conflicting headers at height 100", skipped)
	}
	t.Logf("caught: %v", skipped[0])
}

// TestHashChainBackwards: a client restored at a high header verifies a
// header just below it through the last-block hashes, and catches a node
// that serves a header out of the chain there.
func TestHashChainBackwards(t *testing.T) {
	seed := testSeed(t)
	c, _, cl := lightChain(t, clienttest.Options{Seed: seed, Heights: 500})
	ctx := context.Background()
	first := trustOf(t, c)
	if _, err := cl.VerifiedHeader(ctx, first, 500); err != nil {
		t.Fatal(err)
	}
	restored := func() *light.Trust {
		tr := trustOf(t, c)
		if err := tr.RestoreState(first.State()); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	tr := restored()
	var rec steps
	tr.OnStep = rec.record
	hdr, n, err := cl.VerifiedHeaderCount(ctx, tr, 495)
	if err != nil || hdr.Hash() != c.Blocks[495].Hash() {
		t.Fatalf("seed %d: header 495 below trusted 500: %v", seed, err)
	}
	if n != 5 || len(rec.all()) != 1 || rec.all()[0].Method != light.StepHashChain {
		t.Errorf("seed %d: fetched %d headers in steps %+v; want 5 in one hash-chain step", seed, n, rec.all())
	}
	forged, err := c.Forge(480)
	if err != nil {
		t.Fatal(err)
	}
	liar, _ := New(clienttest.Serve(t, clienttest.NewBackend(forged)))
	if _, err := liar.VerifiedHeader(ctx, restored(), 490); !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), "as its last block") {
		t.Fatalf("seed %d: a forged header below a trusted one: %v, want ErrVerification naming the last block", seed, err)
	}
}

// TestSavedHeaderOfAnotherChainIsCaught: a wallet whose saved header is
// not the chain's (another fork: same sets, another state) cannot follow
// the chain from it: the next header does not link to it.
func TestSavedHeaderOfAnotherChainIsCaught(t *testing.T) {
	seed := testSeed(t)
	c, _, cl := lightChain(t, clienttest.Options{Seed: seed, Heights: 100})
	other := c.Blocks[60].Header
	other.AppHash[0] ^= 1
	for _, seq := range []bool{false, true} {
		tr := trustOf(t, c)
		tr.Sequential = seq
		if err := tr.RestoreState(&light.TrustedState{ChainID: c.Doc.ChainID, GenesisHash: c.Doc.Hash(), Header: &other}); err != nil {
			t.Fatal(err)
		}
		_, err := cl.VerifiedHeader(context.Background(), tr, 61)
		if !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), "names last block") {
			t.Fatalf("seed %d, sequential %v: header 61 after a saved header 60 of another fork: %v", seed, seq, err)
		}
	}
}

// TestVerifiedAccountAndTxAcrossSetChanges: the account and transaction
// proofs the wallet uses hold on a chain whose set changed many times,
// and a node proving a made-up balance with a forged chain is caught.
func TestVerifiedAccountAndTxAcrossSetChanges(t *testing.T) {
	seed := testSeed(t)
	c, _, cl := lightChain(t, clienttest.Options{Seed: seed, Heights: 1200})
	ctx := context.Background()
	tr := trustOf(t, c)
	for i, k := range c.Accounts {
		addr := k.PubKey().Address()
		va, err := cl.VerifiedAccount(ctx, tr, addr)
		if err != nil {
			t.Fatalf("seed %d: account %d: %v", seed, i, err)
		}
		want, _, _ := c.Account(c.Height()-1, addr)
		if va.Account != want || va.Header.Height != c.Height() {
			t.Errorf("seed %d: account %d: %+v at header %d, want %+v at %d", seed, i, va.Account, va.Header.Height, want, c.Height())
		}
		if i == 0 {
			t.Logf("seed %d: account proven at header %d after %d set changes, fetching %d headers", seed, va.Header.Height, len(c.Changes), va.HeadersFetched)
			if va.HeadersFetched == 0 || va.HeadersFetched*10 > int(c.Height()) {
				t.Errorf("seed %d: VerifiedAccount reports %d headers fetched", seed, va.HeadersFetched)
			}
		}
	}
	tx := c.Blocks[1000].Txs[0]
	got, err := cl.VerifiedTx(ctx, tr, tx.Hash())
	if err != nil || got.Height == nil || uint64(*got.Height) != 1000 {
		t.Fatalf("seed %d: VerifiedTx at height 1000: %+v %v", seed, got, err)
	}
	forged, err := c.Forge(900)
	if err != nil {
		t.Fatal(err)
	}
	liar, _ := New(clienttest.Serve(t, clienttest.NewBackend(forged)))
	rich := c.Accounts[2].PubKey().Address()
	if va, err := liar.VerifiedAccount(ctx, trustOf(t, c), rich); !errors.Is(err, ErrVerification) {
		t.Fatalf("seed %d: a forged chain proving a made-up balance: %+v, %v", seed, va, err)
	}
}

// TestPersistedStateRestores: Persist is given the newest trusted header;
// a new trust restored from it starts there, and refuses a state of
// another genesis.
func TestPersistedStateRestores(t *testing.T) {
	seed := testSeed(t)
	c, b, cl := lightChain(t, clienttest.Options{Seed: seed, Heights: 1000})
	ctx := context.Background()
	b.SetHeight(700)
	tr := trustOf(t, c)
	var saved []byte
	tr.Persist = func(s *light.TrustedState) error {
		saved = s.Encode()
		return nil
	}
	if _, _, err := cl.LatestVerifiedHeader(ctx, tr); err != nil {
		t.Fatal(err)
	}
	s, err := light.DecodeTrustedState(saved)
	if err != nil {
		t.Fatalf("decode what Persist got: %v\n%s", err, saved)
	}
	if s.Header.Height != 700 || s.Header.Hash() != c.Blocks[700].Hash() {
		t.Fatalf("persisted header %d %s, want 700 %s", s.Header.Height, s.Header.Hash(), c.Blocks[700].Hash())
	}
	b.SetHeight(1000)
	next := trustOf(t, c)
	if err := next.RestoreState(s); err != nil {
		t.Fatal(err)
	}
	var rec steps
	next.OnStep = rec.record
	head, _, err := cl.LatestVerifiedHeader(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d: from saved header 700 to 1000: %d headers fetched, steps %+v", seed, head.HeadersFetched, rec.all())
	if list := rec.all(); len(list) == 0 || list[0].From != 700 {
		t.Errorf("seed %d: the restored trust did not start from 700: %+v", seed, list)
	}
	other := *c.Doc
	other.ChainID = "another-chain"
	ot, err := light.NewTrust(&other)
	if err != nil {
		t.Fatal(err)
	}
	if err := ot.RestoreState(s); err == nil {
		t.Error("a state of another chain was restored")
	}
	c.Doc.Balances[0].Amount++ // another genesis of the same chain
	defer func() { c.Doc.Balances[0].Amount-- }()
	if err := trustOf(t, c).RestoreState(s); err == nil || !strings.Contains(err.Error(), "genesis") {
		t.Errorf("a state verified from another genesis: %v", err)
	}
}
