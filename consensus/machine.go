package consensus

import (
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// Config is what a Machine needs: the chain, the validator set of every
// height, who we are, and the paper's valid(v).
type Config struct {
	// ChainID is the chain the machine runs consensus for.
	ChainID string
	// Validators gives the validator set of each height with its proposer
	// priorities. The machine asks for its height and the next one when
	// it enters a height; a set changes at the earliest two heights after
	// the block that changed it, so both are known once the previous
	// height is committed. It must be deterministic (the committed
	// chain's answer).
	Validators ValidatorSets
	// Self is this node's validator address; the zero address makes a
	// non-validator that follows the protocol and decides but never votes
	// or proposes.
	Self crypto.Address
	// ValidValue is valid(v): nil when b may be decided at its height. It
	// must be deterministic (a function of b and of the committed state
	// below b's height only), pure and safe to call at any time during the
	// height; the machine caches its answer per block for the height.
	ValidValue func(b *ledger.Block) error
}

// proposalEntry is a proposal kept for its round, with its block.
type proposalEntry struct {
	proposal *ledger.Proposal
	block    *ledger.Block
	id       crypto.Hash
}

// heightMessages is what the machine holds for one height, with the
// height's validator set.
type heightMessages struct {
	vals      *ledger.ValidatorSet
	proposers *ProposerSelector
	selfIndex int // -1 when we are not a validator of the height
	votes     *VoteKeeper
	proposals map[uint32][]*proposalEntry // per round, in arrival order
}

func (m *Machine) newHeightMessages(h uint64) (*heightMessages, error) {
	prio, err := m.cfg.Validators.PrioritiesAt(h)
	if err != nil {
		return nil, fmt.Errorf("validators of height %d: %w", h, err)
	}
	if prio == nil || prio.Validators() == nil || prio.Validators().Size() == 0 {
		return nil, fmt.Errorf("validators of height %d: empty set", h)
	}
	vals := prio.Validators()
	self := -1
	if !m.cfg.Self.IsZero() {
		if i, ok := vals.ByAddress(m.cfg.Self); ok {
			self = i
		}
	}
	return &heightMessages{vals: vals, proposers: NewProposerSelector(prio), selfIndex: self,
		votes: NewVoteKeeper(vals, h), proposals: make(map[uint32][]*proposalEntry)}, nil
}

// Machine is the round state machine of one validator (or follower) for a
// sequence of heights. It is not safe for concurrent use: one driver
// goroutine owns it.
type Machine struct {
	cfg Config

	// The paper's variables (L2-L9), for the current height.
	height      uint64
	round       uint32
	step        Step
	lockedValue *ledger.Block
	lockedRound int32
	validValue  *ledger.Block
	validRound  int32
	decision    *ledger.Block

	// The "for the first time" anchors of the current round (L34, L36,
	// L47), reset by startRound. They are the only record of it: the rule
	// guards read the vote keeper's tallies, which stay true once reached,
	// and re-run after every event (applyRules), so a rule with "for the
	// first time" fires once per round because it sets its anchor. The
	// other rules need none: firing changes what their guards read (the
	// step for L22, L28 and L44, the decision for L49, the round for L55).
	prevoteTimeoutScheduled   bool
	polkaValueHandled         bool
	precommitTimeoutScheduled bool
	// awaitingValue: we are the proposer of (height, round) and asked the
	// driver for a value (L18).
	awaitingValue bool

	cur   *heightMessages // height
	next  *heightMessages // height+1, kept until it starts
	valid map[crypto.Hash]error

	out []Effect
}

// New returns a machine for height, not yet started: it keeps messages for
// height (and height+1) and starts round 0 on EventNewHeight{height}.
// A driver that jumps ahead (block sync) makes a new Machine.
func New(cfg Config, height uint64) (*Machine, error) {
	if err := crypto.ValidateChainID(cfg.ChainID); err != nil {
		return nil, fmt.Errorf("consensus config: %w", err)
	}
	if cfg.Validators == nil {
		return nil, errors.New("consensus config: no validator sets")
	}
	if cfg.ValidValue == nil {
		return nil, errors.New("consensus config: no ValidValue function")
	}
	if height == 0 {
		return nil, errors.New("consensus config: height 0; the first height is 1")
	}
	m := &Machine{cfg: cfg}
	msgs, err := m.newHeightMessages(height)
	if err != nil {
		return nil, fmt.Errorf("consensus config: %w", err)
	}
	if err := m.resetHeight(height, msgs); err != nil {
		return nil, fmt.Errorf("consensus config: %w", err)
	}
	return m, nil
}

// resetHeight enters height (not started) with the messages kept for it
// (L53: reset the locks and the message log).
func (m *Machine) resetHeight(h uint64, msgs *heightMessages) error {
	next, err := m.newHeightMessages(h + 1)
	if err != nil {
		return err
	}
	m.height, m.round, m.step = h, 0, StepNewHeight
	m.lockedValue, m.lockedRound = nil, -1
	m.validValue, m.validRound = nil, -1
	m.decision = nil
	m.prevoteTimeoutScheduled, m.polkaValueHandled, m.precommitTimeoutScheduled = false, false, false
	m.awaitingValue = false
	m.cur = msgs
	m.cur.votes.SetRound(0)
	m.next = next
	m.valid = make(map[crypto.Hash]error)
	return nil
}

// RoundState is a snapshot of the machine's variables, for logs, traces
// and tests.
type RoundState struct {
	Height      uint64
	Round       uint32
	Step        Step
	LockedRound int32
	LockedValue crypto.Hash // zero when nothing is locked
	ValidRound  int32
	ValidValue  crypto.Hash
	Decision    crypto.Hash // zero until decided
}

// String renders the RoundState in one line, for logs and traces.
func (s RoundState) String() string {
	return fmt.Sprintf("h=%d r=%d %s locked=%d/%s valid=%d/%s", s.Height, s.Round, s.Step,
		s.LockedRound, ShortID(s.LockedValue), s.ValidRound, ShortID(s.ValidValue))
}

func idOf(b *ledger.Block) crypto.Hash {
	if b == nil {
		return crypto.Hash{}
	}
	return b.Hash()
}

// State returns a snapshot of the machine's variables.
func (m *Machine) State() RoundState {
	return RoundState{
		Height: m.height, Round: m.round, Step: m.step,
		LockedRound: m.lockedRound, LockedValue: idOf(m.lockedValue),
		ValidRound: m.validRound, ValidValue: idOf(m.validValue),
		Decision: idOf(m.decision),
	}
}

// Height is the height the machine is working on (or has just decided).
func (m *Machine) Height() uint64 { return m.height }

// Round is the current round.
func (m *Machine) Round() uint32 { return m.round }

// Proposer returns the proposer of (height, round) for the heights the
// machine holds (its own and the next); ok is false for any other.
func (m *Machine) Proposer(height uint64, round uint32) (addr crypto.Address, ok bool) {
	msgs := m.held(height)
	if msgs == nil {
		return crypto.Address{}, false
	}
	return msgs.proposers.Proposer(round), true
}

// ValidatorsAt returns the validator set of height for the heights the
// machine holds (its own and the next), nil for any other.
func (m *Machine) ValidatorsAt(height uint64) *ledger.ValidatorSet {
	if msgs := m.held(height); msgs != nil {
		return msgs.vals
	}
	return nil
}

// held returns the messages of height if the machine holds it.
func (m *Machine) held(height uint64) *heightMessages {
	switch height {
	case m.height:
		return m.cur
	case m.height + 1:
		return m.next
	}
	return nil
}

// Step feeds one event to the machine and returns the effects, in the
// order the driver must carry them out. A non-nil error means the event
// was refused and changed nothing (compare with errors.Is against the
// Err* values); it need not be written to the write-ahead log.
func (m *Machine) Step(ev Event) ([]Effect, error) {
	var err error
	switch e := ev.(type) {
	case EventNewHeight:
		err = m.onNewHeight(e)
	case EventProposal:
		err = m.onProposal(e)
	case EventVote:
		err = m.onVote(e)
	case EventTimeout:
		err = m.onTimeout(e)
	case EventProposeValue:
		err = m.onProposeValue(e)
	default:
		err = fmt.Errorf("%w: unknown event type %T", ErrMalformed, ev)
	}
	if err != nil {
		m.out = nil
		return nil, err
	}
	m.applyRules()
	out := m.out
	m.out = nil
	return out, nil
}

func (m *Machine) emit(e Effect) { m.out = append(m.out, e) }

// onNewHeight starts the height: the machine's first, or the next one
// after a decision (L52-L54, L10).
func (m *Machine) onNewHeight(e EventNewHeight) error {
	switch {
	case m.step == StepNewHeight && e.Height == m.height:
	case m.step == StepDecided && e.Height == m.height+1:
		if err := m.resetHeight(e.Height, m.next); err != nil {
			return fmt.Errorf("%w: %v", ErrHeightSequence, err)
		}
	case e.Height <= m.height:
		return fmt.Errorf("%w: new height %d at height %d (%s)", ErrStale, e.Height, m.height, m.step)
	default:
		return fmt.Errorf("%w: new height %d at height %d (%s)", ErrHeightSequence, e.Height, m.height, m.step)
	}
	m.startRound(0)
	return nil
}

// messagesFor routes a message for height h: the current height's store,
// the next height's, or a refusal.
func (m *Machine) messagesFor(h uint64) (*heightMessages, error) {
	switch {
	case h == m.height && m.step != StepDecided:
		return m.cur, nil
	case h == m.height+1:
		return m.next, nil
	case h <= m.height:
		return nil, fmt.Errorf("%w: message for height %d at height %d (%s)", ErrStale, h, m.height, m.step)
	}
	return nil, fmt.Errorf("%w: message for height %d at height %d", ErrTooFarAhead, h, m.height)
}

// onProposal checks a proposal and keeps it for its round. The proposer
// must be proposer(h, r) and the block must be the one the proposal names,
// with a body matching its header, so that the block ID identifies it.
func (m *Machine) onProposal(e EventProposal) error {
	p, b := e.Proposal, e.Block
	if p == nil || b == nil {
		return fmt.Errorf("%w: proposal without proposal or block", ErrMalformed)
	}
	if err := p.ValidateBasic(); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	msgs, err := m.messagesFor(p.Height)
	if err != nil {
		return err
	}
	if want := msgs.proposers.Proposer(p.Round); p.Proposer != want {
		return fmt.Errorf("%w: h=%d r=%d from %s, proposer is %s", ErrWrongProposer, p.Height, p.Round, ShortAddr(p.Proposer), ShortAddr(want))
	}
	list := msgs.proposals[p.Round]
	for _, pe := range list {
		if pe.id == p.BlockID {
			return ErrDuplicate
		}
	}
	if len(list) >= MaxProposalsPerRound && !msgs.votes.Names(p.Round, p.BlockID) {
		return fmt.Errorf("%w: round %d already has %d proposals", ErrTooFarAhead, p.Round, len(list))
	}
	if b.Height() != p.Height {
		return fmt.Errorf("%w: proposal for height %d carries block %d", ErrMalformed, p.Height, b.Height())
	}
	if b.Hash() != p.BlockID {
		return fmt.Errorf("%w: proposal names %s, block is %s", ErrMalformed, ShortID(p.BlockID), ShortID(b.Hash()))
	}
	if err := bodyMatchesHeader(b); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	i, _ := msgs.vals.ByAddress(p.Proposer)
	if err := msgs.votes.Observe(i, p.Round); err != nil {
		return err
	}
	pc := *p
	msgs.proposals[p.Round] = append(list, &proposalEntry{proposal: &pc, block: b, id: p.BlockID})
	return nil
}

// bodyMatchesHeader checks that the block's contents are the ones its
// header commits to, so equal block IDs mean equal blocks.
func bodyMatchesHeader(b *ledger.Block) error {
	h := &b.Header
	switch {
	case h.TxRoot != ledger.TxRootOf(b.Txs):
		return errors.New("block transactions do not match the header")
	case h.EvidenceHash != ledger.EvidenceRootOf(b.Evidence):
		return errors.New("block evidence does not match the header")
	case h.LastCommitHash != b.LastCommit.Hash():
		return errors.New("block last commit does not match the header")
	}
	return nil
}

// onVote counts a vote of the current or the next height and reports
// equivocation.
func (m *Machine) onVote(e EventVote) error {
	v := e.Vote
	if v == nil {
		return fmt.Errorf("%w: vote event without a vote", ErrMalformed)
	}
	if err := v.ValidateBasic(); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	msgs, err := m.messagesFor(v.Height)
	if err != nil {
		return err
	}
	ev, err := msgs.votes.Add(v)
	if err != nil {
		return err
	}
	if ev != nil {
		m.emit(EffectEvidence{Evidence: ev})
	}
	return nil
}

// onTimeout runs the timeout handlers (L57, L61, L65). A timeout whose
// guard no longer holds is stale.
func (m *Machine) onTimeout(e EventTimeout) error {
	if !e.Kind.valid() {
		return fmt.Errorf("%w: timeout kind %d", ErrMalformed, e.Kind)
	}
	if e.Height != m.height || e.Round != m.round || !m.step.inRound() {
		return fmt.Errorf("%w: %s at h=%d r=%d %s", ErrStale, e, m.height, m.round, m.step)
	}
	var fired bool
	switch e.Kind {
	case TimeoutPropose:
		fired = m.onTimeoutPropose()
	case TimeoutPrevote:
		fired = m.onTimeoutPrevote()
	case TimeoutPrecommit:
		fired = m.onTimeoutPrecommit()
	}
	if !fired {
		return fmt.Errorf("%w: %s in step %s", ErrStale, e, m.step)
	}
	return nil
}

// onProposeValue takes the value the driver built (getValue(), L18) and
// proposes it (L19), if we still wait for it.
func (m *Machine) onProposeValue(e EventProposeValue) error {
	if e.Block == nil {
		return fmt.Errorf("%w: propose-value without a block", ErrMalformed)
	}
	if !m.awaitingValue || e.Height != m.height || e.Round != m.round || m.step != StepPropose {
		return fmt.Errorf("%w: %s at h=%d r=%d %s", ErrStale, e, m.height, m.round, m.step)
	}
	if e.Block.Height() != m.height {
		return fmt.Errorf("%w: value for height %d at height %d", ErrMalformed, e.Block.Height(), m.height)
	}
	m.awaitingValue = false
	m.broadcastProposal(e.Block, -1)
	return nil
}

// isValid is valid(v), cached per block for the height.
func (m *Machine) isValid(b *ledger.Block, id crypto.Hash) bool {
	err, ok := m.valid[id]
	if !ok {
		err = m.cfg.ValidValue(b)
		m.valid[id] = err
	}
	return err == nil
}

// isValidator reports whether we are a validator of the current height.
func (m *Machine) isValidator() bool { return m.cur.selfIndex >= 0 }

func (m *Machine) broadcastProposal(b *ledger.Block, polRound int32) {
	parts, _ := ledger.SplitBlock(b.Encode())
	m.emit(EffectBroadcastProposal{
		Proposal: ledger.Proposal{Height: m.height, Round: m.round, POLRound: polRound, BlockID: b.Hash(), Parts: parts, Proposer: m.cfg.Self},
		Block:    b,
	})
}

func (m *Machine) broadcastVote(t ledger.VoteType, id crypto.Hash) {
	if !m.isValidator() {
		return
	}
	m.emit(EffectBroadcastVote{Vote: ledger.Vote{Type: t, Height: m.height, Round: m.round, BlockID: id, Validator: m.cfg.Self}})
}

func (m *Machine) scheduleTimeout(k TimeoutKind) {
	m.emit(EffectScheduleTimeout{Height: m.height, Round: m.round, Kind: k})
}

// VotesFor returns copies of the votes of type t for id (zero for nil) in
// round of height, at most one per validator, in validator order: what a
// gossip layer sends a peer that lacks them, for example the polka behind
// a proposal's POLRound. It returns nil for a height the machine does not
// hold.
func (m *Machine) VotesFor(height uint64, round uint32, t ledger.VoteType, id crypto.Hash) []ledger.Vote {
	msgs := m.held(height)
	if msgs == nil {
		return nil
	}
	var out []ledger.Vote
	for _, v := range msgs.votes.VotesFor(round, t, id) {
		out = append(out, *v)
	}
	return out
}
