package light

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/genesis"
	"github.com/ledgerd/ledgerd/ledger"
)

// DefaultTrustingPeriod is the trusting period, in heights, of a Trust
// whose TrustingPeriod is zero and of a genesis without an unbonding
// period: the farthest the light client skips from a trusted header in one
// step. NewTrust takes two thirds of the genesis unbonding period instead
// (TrustingPeriodOf). See docs/decisions.md ("The light client across
// validator-set changes").
const DefaultTrustingPeriod = 1000

// TrustingPeriodOf is the trusting period a light client of doc uses:
// two thirds of its unbonding period (at least 1), so that the validators
// a skip relies on still have their stake bonded, or unbonding and
// slashable, at every height the skip covers, with a third of the period
// to spare for evidence of their misbehaviour to reach the chain.
func TrustingPeriodOf(doc *genesis.Doc) uint64 {
	u := doc.Staking.UnbondingHeights
	if u == 0 {
		return DefaultTrustingPeriod
	}
	return max(u/3*2+u%3*2/3, 1)
}

// MaxTrustedHeaders bounds the light client's store of trusted headers
// (besides the genesis root). With MaxValidators members per set, the store
// holds at most a few tens of megabytes.
const MaxTrustedHeaders = 256

// StepMethod is how the light client came to trust a header.
type StepMethod string

// The ways a header becomes trusted.
const (
	// StepSequential: the header follows a trusted one; the set it names
	// is the one the trusted header named as next, and +2/3 of it signed.
	StepSequential StepMethod = "sequential"
	// StepSkipping: the header is above a trusted one (within the trusting
	// period); +2/3 of its own set and more than 1/3 of the trusted
	// header's next set signed it.
	StepSkipping StepMethod = "skipping"
	// StepHashChain: the header is below a trusted one, linked to it by
	// the last-block hashes of the headers in between.
	StepHashChain StepMethod = "hash chain"
)

// Step is one header the light client came to trust, from another it
// trusted already.
type Step struct {
	From, To uint64
	Method   StepMethod
	// For StepSkipping: the voting power of the trusted set (the set of
	// height From+1) whose members signed To, and that set's total.
	TrustedSigned, TrustedTotal uint64
}

// LightStats counts what a Trust's light client did.
type LightStats struct {
	// HeadersFetched and SetsFetched count the headers (with their
	// commits) and validator sets asked of nodes.
	HeadersFetched, SetsFetched uint64
	// Newest is the height of the newest trusted header (0: only the
	// genesis is trusted); Trusted is how many headers the store holds.
	Newest  uint64
	Trusted int
}

// errNotEnoughTrust says that a header's commit lacks more than a third of
// a trusted set's power: not a lie in itself (the set may have changed
// that much), but the client must bisect. It never leaves the package.
var errNotEnoughTrust = errors.New("not enough trusted power signed")

// trusted is a header the light client trusts, with the validator sets it
// names once they were fetched (checked against its hashes). The genesis
// root has no header: height 0, its next set the genesis set. Values are
// immutable once in the store.
type trusted struct {
	height   uint64
	header   *ledger.Header // nil for the root
	hash     crypto.Hash    // header's hash; zero for the root
	nextHash crypto.Hash    // header's NextValidatorsHash; the genesis set's for the root
	vals     *ledger.ValidatorSet
	next     *ledger.ValidatorSet
}

// lightStore is the bounded store of trusted headers, sorted by height:
// the genesis root and at most MaxTrustedHeaders others. When full, the
// lowest (above the root) is dropped.
type lightStore struct {
	mu        sync.Mutex
	entries   []*trusted // ascending; entries[0] is the root once initialised
	fetchedH  uint64
	fetchedS  uint64
	stepMu    sync.Mutex // serialises OnStep calls
	persistMu sync.Mutex
	persisted uint64 // height of the newest header handed to Persist
}

// rootLocked creates the genesis root of the store on first use. Callers
// hold t.light.mu.
func (t *Trust) rootLocked() {
	if len(t.light.entries) == 0 {
		t.light.entries = []*trusted{{height: 0, nextHash: t.Validators.Hash(), next: t.Validators}}
	}
}

// around returns the highest trusted entry at or below h (the root at
// least) and the lowest above h (nil when none).
func (t *Trust) around(h uint64) (below, above *trusted) {
	t.light.mu.Lock()
	defer t.light.mu.Unlock()
	t.rootLocked()
	es := t.light.entries
	i := sort.Search(len(es), func(i int) bool { return es[i].height > h })
	below = es[i-1]
	if i < len(es) {
		above = es[i]
	}
	return below, above
}

// add stores e, keeping the sets an existing entry of the same header
// holds, and fails if a different header of that height is trusted: two
// headers for one height that both verify mean a fork, or more than a
// third of a trusted set signing what it should not.
func (t *Trust) add(e *trusted) (*trusted, error) {
	t.light.mu.Lock()
	defer t.light.mu.Unlock()
	t.rootLocked()
	es := t.light.entries
	i := sort.Search(len(es), func(i int) bool { return es[i].height >= e.height })
	if i < len(es) && es[i].height == e.height {
		old := es[i]
		if old.hash != e.hash {
			return nil, verifyErr("conflicting headers at height %d: %s was trusted, %s verifies too: "+
				"a fork, or more than a third of a trusted validator set signing two chains", e.height, old.hash, e.hash)
		}
		merged := *old
		if merged.vals == nil {
			merged.vals = e.vals
		}
		if merged.next == nil {
			merged.next = e.next
		}
		es[i] = &merged
		return &merged, nil
	}
	es = append(es, nil)
	copy(es[i+1:], es[i:])
	es[i] = e
	if len(es) > MaxTrustedHeaders+1 {
		// Drop the lowest above the root; the newest is never dropped.
		es = append(es[:1], es[2:]...)
	}
	t.light.entries = es
	return e, nil
}

// TrustedHeader returns the header of height h if the light client
// trusts it (holds it in its store), else nil.
func (t *Trust) TrustedHeader(h uint64) *ledger.Header {
	below, _ := t.around(h)
	if below.height != h || below.header == nil {
		return nil
	}
	return below.header
}

// newest returns the highest trusted entry.
func (t *Trust) newest() *trusted {
	t.light.mu.Lock()
	defer t.light.mu.Unlock()
	t.rootLocked()
	return t.light.entries[len(t.light.entries)-1]
}

// Stats returns what the light client did so far with this trust.
func (t *Trust) Stats() LightStats {
	t.light.mu.Lock()
	defer t.light.mu.Unlock()
	t.rootLocked()
	es := t.light.entries
	return LightStats{HeadersFetched: t.light.fetchedH, SetsFetched: t.light.fetchedS,
		Newest: es[len(es)-1].height, Trusted: len(es) - 1}
}

// NoteFetched adds to the counts of headers and sets fetched (Stats): a
// caller that fetches a header itself to check it against a trusted one
// counts it here.
func (t *Trust) NoteFetched(headers, sets uint64) {
	t.light.mu.Lock()
	defer t.light.mu.Unlock()
	t.light.fetchedH += headers
	t.light.fetchedS += sets
}

// Period is the trusting period in effect: TrustingPeriod, or
// DefaultTrustingPeriod when that is zero.
func (t *Trust) Period() uint64 {
	if t.TrustingPeriod == 0 {
		return DefaultTrustingPeriod
	}
	return t.TrustingPeriod
}

// verifier is one verification: the client it asks, and what it fetched.
type verifier struct {
	t       *Trust
	p       Provider
	headers int
	// nextSets holds the sets of height h+1 of trusted headers h, once
	// fetched, so that bisecting from one header fetches its set once.
	nextSets map[uint64]*ledger.ValidatorSet
	// pending holds fetched light blocks not trusted yet (bisection comes
	// back to them once a pivot is trusted).
	pending map[uint64]*lightBlock
}

// lightBlock is a header, the commit that decided it and the validator set
// it names, checked against each other but not yet against anything
// trusted.
type lightBlock struct {
	header *ledger.Header
	hash   crypto.Hash
	commit *ledger.Commit
	vals   *ledger.ValidatorSet
}

// VerifyHeader returns the header of height once the light client trusts
// it: verified from the pinned genesis, or from a header trusted already,
// through headers each signed by +2/3 of its own validator set and linked
// to a trusted one, all fetched from p. It also returns how many headers
// it fetched (0 when the header was trusted already). Headers verified on
// the way are kept, so later calls fetch little. An answer of p that does
// not check out is an error wrapping ErrVerification saying what failed.
func (t *Trust) VerifyHeader(ctx context.Context, p Provider, height uint64) (*ledger.Header, int, error) {
	if height == 0 {
		return nil, 0, errors.New("verify: there is no header 0; the first block is height 1")
	}
	if t.Validators == nil {
		return nil, 0, errors.New("verify: the trust has no genesis validator set")
	}
	v := &verifier{t: t, p: p, pending: map[uint64]*lightBlock{}, nextSets: map[uint64]*ledger.ValidatorSet{}}
	below, above := t.around(height)
	if below.height == height {
		return below.header, 0, nil
	}
	var got *trusted
	var err error
	if above != nil && above.height-height < v.forwardCost(below.height, height) {
		got, err = v.backward(ctx, above, height)
	} else {
		got, err = v.forward(ctx, below, height)
	}
	t.persist()
	if err != nil {
		return nil, v.headers, err
	}
	return got.header, v.headers, nil
}

// bisectAllowance is what verifyHeader counts, beyond one header per
// trusting period, for skipping forward: a skip across many set changes
// bisects and fetches several. Going backward fetches headers only (no
// sets, no signatures), so below a trusted header it is the better way
// unless the way up is sure to be short.
const bisectAllowance = 16

// forwardCost is about how many headers verifying forward from height
// from to height to fetches.
func (v *verifier) forwardCost(from, to uint64) uint64 {
	if v.t.Sequential {
		return to - from
	}
	p := v.t.Period()
	return (to-from+p-1)/p + bisectAllowance
}

// forward verifies target from tr, below it: header by header when
// Sequential is set, else skipping in steps no longer than the trusting
// period, bisecting a step whose target lacks a third of the trusted power.
func (v *verifier) forward(ctx context.Context, tr *trusted, target uint64) (*trusted, error) {
	period := v.t.Period()
	for tr.height < target {
		goal := target
		if v.t.Sequential {
			goal = tr.height + 1
		} else if goal-tr.height > period {
			goal = tr.height + period
		}
		var err error
		if tr, err = v.bisect(ctx, tr, goal); err != nil {
			return nil, err
		}
	}
	return tr, nil
}

// bisect verifies goal from tr (goal - tr.height within the trusting
// period), trusting pivots halfway between the newest trusted header and
// the height it could not reach until the goal verifies.
func (v *verifier) bisect(ctx context.Context, tr *trusted, goal uint64) (*trusted, error) {
	stack := []uint64{goal}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		lb, err := v.lightBlock(ctx, h)
		if err != nil {
			return nil, err
		}
		step := Step{From: tr.height, To: h}
		if h == tr.height+1 {
			step.Method = StepSequential
			err = v.verifyAdjacent(tr, lb)
		} else {
			step.Method = StepSkipping
			step.TrustedSigned, step.TrustedTotal, err = v.verifyNonAdjacent(ctx, tr, lb)
		}
		if errors.Is(err, errNotEnoughTrust) {
			stack = append(stack, tr.height+(h-tr.height)/2)
			continue
		}
		if err != nil {
			return nil, err
		}
		tr, err = v.trust(&trusted{height: h, header: lb.header, hash: lb.hash, nextHash: lb.header.NextValidatorsHash, vals: lb.vals}, step)
		if err != nil {
			return nil, err
		}
		delete(v.pending, h)
		stack = stack[:len(stack)-1]
	}
	return tr, nil
}

// trust adds e to the store and reports the step.
func (v *verifier) trust(e *trusted, step Step) (*trusted, error) {
	e, err := v.t.add(e)
	if err != nil {
		return nil, err
	}
	if v.t.OnStep != nil {
		v.t.light.stepMu.Lock()
		v.t.OnStep(step)
		v.t.light.stepMu.Unlock()
	}
	return e, nil
}

// verifyAdjacent checks that lb follows tr: it names the set tr named as
// next (whose +2/3 signed it, checked when fetched) and tr's hash as its
// last block.
func (v *verifier) verifyAdjacent(tr *trusted, lb *lightBlock) error {
	h := lb.header
	if h.ValidatorsHash != tr.nextHash {
		if tr.header == nil {
			return verifyErr("header %d names validator set %s, but the trusted genesis set is %s", h.Height, h.ValidatorsHash, tr.nextHash)
		}
		return verifyErr("header %d names validator set %s, but trusted header %d names %s as the next set",
			h.Height, h.ValidatorsHash, tr.height, tr.nextHash)
	}
	return v.checkFollows(tr, h)
}

// checkFollows checks what an adjacent or later header must keep of a
// trusted one: the chain, a later time, and the link for an adjacent one.
func (v *verifier) checkFollows(tr *trusted, h *ledger.Header) error {
	if tr.header == nil {
		if h.Height == 1 && !h.LastBlockHash.IsZero() {
			return verifyErr("header 1 names last block %s; the first block has none", h.LastBlockHash)
		}
		if v.t.GenesisTime != 0 && h.Time < v.t.GenesisTime {
			return verifyErr("header %d is dated %s, before the genesis time %s", h.Height, h.Time.Time(), v.t.GenesisTime.Time())
		}
		return nil
	}
	if h.Time <= tr.header.Time {
		return verifyErr("header %d is dated %s, not after trusted header %d (%s)", h.Height, h.Time.Time(), tr.height, tr.header.Time.Time())
	}
	if h.Height == tr.height+1 && h.LastBlockHash != tr.hash {
		return verifyErr("header %d names last block %s, but trusted header %d hashes to %s", h.Height, h.LastBlockHash, tr.height, tr.hash)
	}
	return nil
}

// verifyNonAdjacent checks lb against tr, more than one height below it
// and within the trusting period: the validators of height tr.height+1
// (the set tr names as next) holding more than a third of that set's power
// must have signed lb's commit. It returns the trusted power that signed
// and the set's total, and errNotEnoughTrust when that is a third or less.
func (v *verifier) verifyNonAdjacent(ctx context.Context, tr *trusted, lb *lightBlock) (signed, total uint64, err error) {
	h := lb.header
	if h.Height-tr.height > v.t.Period() {
		return 0, 0, fmt.Errorf("verify: internal error: skipping from %d to %d, beyond the trusting period %d", tr.height, h.Height, v.t.Period())
	}
	if err := v.checkFollows(tr, h); err != nil {
		return 0, 0, err
	}
	ts, err := v.nextSet(ctx, tr)
	if err != nil {
		return 0, 0, err
	}
	signed = TrustedPowerSigned(ts, lb.vals, lb.commit)
	if signed < ts.OneThirdPlus() {
		return signed, ts.TotalPower(), fmt.Errorf("%w: header %d: validators of trusted height %d holding %d of %d power signed, need %d",
			errNotEnoughTrust, h.Height, tr.height+1, signed, ts.TotalPower(), ts.OneThirdPlus())
	}
	return signed, ts.TotalPower(), nil
}

// TrustedPowerSigned is the power in trustedSet of the validators that
// signed c, whose signers are indices in vals and whose signatures were
// verified against vals' keys. A signer counts only when its public key,
// not just its address, is the trusted member's.
func TrustedPowerSigned(trustedSet, vals *ledger.ValidatorSet, c *ledger.Commit) uint64 {
	var power uint64
	for _, s := range c.Sigs {
		signer := vals.Get(int(s.ValidatorIndex))
		i, ok := trustedSet.ByAddress(signer.Address())
		if !ok {
			continue
		}
		if m := trustedSet.Get(i); m.PubKey == signer.PubKey {
			power += m.Power
		}
	}
	return power
}

// nextSet returns the set of height tr.height+1, fetching it (and storing
// it with tr) the first time.
func (v *verifier) nextSet(ctx context.Context, tr *trusted) (*ledger.ValidatorSet, error) {
	if tr.next != nil {
		return tr.next, nil
	}
	if vs, ok := v.nextSets[tr.height]; ok {
		return vs, nil
	}
	vs, err := v.fetchSet(ctx, tr.height+1, tr.nextHash, fmt.Sprintf("trusted header %d names as the next set", tr.height))
	if err != nil {
		return nil, err
	}
	v.nextSets[tr.height] = vs
	withNext := *tr
	withNext.next = vs
	if _, err := v.t.add(&withNext); err != nil {
		return nil, err
	}
	return vs, nil
}

// backward verifies target from tr above it, fetching the headers in
// between and checking that each hashes to the last-block hash of the one
// above.
func (v *verifier) backward(ctx context.Context, tr *trusted, target uint64) (*trusted, error) {
	cur := tr.header
	for cur.Height > target {
		want := cur.Height - 1
		prev, _, err := v.fetchCommit(ctx, want)
		if err != nil {
			return nil, err
		}
		if got := prev.Hash(); got != cur.LastBlockHash {
			return nil, verifyErr("header %d hashes to %s, but trusted header %d names %s as its last block", want, got, cur.Height, cur.LastBlockHash)
		}
		if prev.Time >= cur.Time {
			return nil, verifyErr("header %d is dated %s, not before header %d (%s)", want, prev.Time.Time(), cur.Height, cur.Time.Time())
		}
		cur = prev
	}
	return v.trust(&trusted{height: target, header: cur, hash: cur.Hash(), nextHash: cur.NextValidatorsHash},
		Step{From: tr.height, To: target, Method: StepHashChain})
}

// lightBlock returns the header, commit and set of height h, fetched once
// per verification and checked against each other: the header is of this
// chain and height, the set hashes to the header's ValidatorsHash, and the
// commit carries +2/3 of that set for exactly that header.
func (v *verifier) lightBlock(ctx context.Context, h uint64) (*lightBlock, error) {
	if lb, ok := v.pending[h]; ok {
		return lb, nil
	}
	hdr, commit, err := v.fetchCommit(ctx, h)
	if err != nil {
		return nil, err
	}
	id := hdr.Hash()
	if commit.BlockID != id {
		return nil, verifyErr("commit of height %d is for block %s, the header hashes to %s", h, commit.BlockID, id)
	}
	vs, err := v.fetchSet(ctx, h, hdr.ValidatorsHash, fmt.Sprintf("header %d names", h))
	if err != nil {
		return nil, err
	}
	if err := commit.Verify(v.t.ChainID, vs, h, id); err != nil {
		return nil, verifyErr("commit of height %d under the set header %d names: %v", h, h, err)
	}
	lb := &lightBlock{header: hdr, hash: id, commit: commit, vals: vs}
	v.pending[h] = lb
	return lb, nil
}

// fetchCommit asks for the header and commit of height h and checks that
// they are there, of that height and of the trusted chain.
func (v *verifier) fetchCommit(ctx context.Context, h uint64) (*ledger.Header, *ledger.Commit, error) {
	v.headers++
	v.t.NoteFetched(1, 0)
	hdr, commit, err := v.p.SignedHeader(ctx, h)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case hdr == nil || commit == nil:
		return nil, nil, verifyErr("commit of height %d: header or commit missing", h)
	case hdr.Height != h:
		return nil, nil, verifyErr("asked for header %d, got %d", h, hdr.Height)
	case hdr.ChainID != v.t.ChainID:
		return nil, nil, verifyErr("header %d is for chain %q, trusted chain is %q", h, hdr.ChainID, v.t.ChainID)
	}
	return hdr, commit, nil
}

// fetchSet asks for the validator set of height h and checks that it
// hashes to want (what names says names).
func (v *verifier) fetchSet(ctx context.Context, h uint64, want crypto.Hash, names string) (*ledger.ValidatorSet, error) {
	v.t.NoteFetched(0, 1)
	vs, err := v.p.ValidatorSet(ctx, h)
	if err != nil {
		return nil, err
	}
	if vs == nil {
		return nil, verifyErr("validator set of height %d missing", h)
	}
	if vs.Hash() != want {
		return nil, verifyErr("the validator set served for height %d hashes to %s, but %s %s", h, vs.Hash(), names, want)
	}
	return vs, nil
}
