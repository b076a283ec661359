package consensus_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/ledgerd/ledgerd/consensus"
	"github.com/ledgerd/ledgerd/consensus/wal"
	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// TestScripts runs the consensus stories in testdata/*.txt: N validators,
// each the shared driver core (consensus/driver) over in-memory seams,
// driven one command at a time. The network holds every message until the
// script delivers or drops it, and timers fire only when the script says,
// so a script fixes one interleaving exactly and its expected output is
// the trace of what every driver did. Regenerate the expected output with
//
//	go test ./consensus/ -run TestScripts -rewrite
//
// and read the diff: the scripts are the specification.
//
// Commands (validator lists are comma separated names, or "all"):
//
//	validators powers=3,1,1,1   a fresh network of validators v0..vN-1,
//	                            named in validator-set order
//	start [nodes=v0,v1]         start the drivers (all not yet started):
//	                            each replays its WAL and starts its height
//	deliver [filter]            deliver the pending messages that match,
//	                            in the order they were sent
//	drop [filter]               discard them
//	stabilize                   deliver until nothing is pending
//	pending                     print the messages in flight
//	timeout v1 propose 1/0      fire a scheduled timeout (propose,
//	                            prevote or precommit) at v1 (or "all")
//	new-height v1               fire the scheduled start of the next height
//	crash v1 [keep-unsynced=N]  kill the process now: the WAL keeps its
//	                            synced records and N of the others
//	arm-crash v1 before=build|proposal|prevote|precommit|decide [keep-unsynced=N]
//	arm-crash v1 before=send-prevote|send-precommit|send-proposal
//	arm-crash v1 after=store    crash inside the next step: before the
//	                            driver carries out that effect, after it
//	                            signed but before the network got it, or
//	                            after the decided block was stored
//	restart v1                  a new process on the same disk: WAL replay
//	lose-block v1 [blocks=N]    the (crashed) node's store loses its last
//	                            block (or its last N)
//	catch-up v1 from=v0         v0 answers v1's catch-up request as the
//	                            node does: it sends v1 the proposal and
//	                            the commit's precommits of the block it
//	                            stored at v1's next height
//	fail-wal v1 [after=N]       the node's WAL append after the next N
//	                            fails (a full disk)
//	gate v1 open|closed         the signing gate
//	equivocate v3 prevote 1/0 block=NAME|nil
//	                            v3 signs a vote with its key, around its
//	                            guard, and sends it to everyone
//	state [v1]                  the machines' variables
//	wal v1                      the WAL records; unsynced ones marked
//	signed v1                   the signer's last signed height/round/step
//	pool [v1]                   the evidence pools' sizes
//
// A filter is any of from=, to= (validator lists), kind= (proposal,
// prevote, precommit, vote, evidence or all), h=, r= and block= (a block
// name or nil).
//
// Output: one line per machine step, "v1: <event> -> <effects>", with the
// effects as the seams saw them: "send ..." (signed and handed to the
// network), "timer ..." (a timeout scheduled), "build B1.0" (the
// Builder's value), "decide ...", "evidence ...", "held ..." (by the
// gate), "skip ..." (the signer refused to sign again during a replay:
// signed before the crash). Lines marked "replay" replay the WAL. Blocks
// are named B<height>.<round> after the round that built them.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scripts in testdata")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			s := &script{t: t}
			datadriven.RunTest(t, f, s.run)
		})
	}
}

// run executes one directive and returns its output.
func (s *script) run(t *testing.T, td *datadriven.TestData) string {
	s.t, s.out = t, nil
	if s.vals == nil && td.Cmd != "validators" {
		td.Fatalf(t, "the first command must be validators")
	}
	a := s.parseArgs(td)
	switch td.Cmd {
	case "validators":
		s.cmdValidators(a)
	case "start":
		s.cmdStart(a)
	case "deliver":
		s.cmdDeliver(a)
	case "drop":
		s.cmdDrop(a)
	case "stabilize":
		s.cmdStabilize()
	case "pending":
		s.cmdPending()
	case "timeout":
		s.cmdTimeout(a)
	case "new-height":
		s.cmdNewHeight(a)
	case "crash":
		for _, n := range a.nodes(1) {
			n.crash("", a.int("keep-unsynced", 0))
		}
	case "arm-crash":
		s.cmdArmCrash(a)
	case "restart":
		for _, n := range a.nodes(1) {
			if n.up {
				td.Fatalf(t, "restart %s: it is running; crash it first", n.name)
			}
			n.boot()
		}
	case "lose-block":
		s.cmdLoseBlock(a)
	case "catch-up":
		s.cmdCatchUp(a)
	case "fail-wal":
		n := a.nodes(1)[0]
		n.failIn = a.int("after", 0) + 1
	case "gate":
		s.cmdGate(a)
	case "equivocate":
		s.cmdEquivocate(a)
	case "state":
		s.cmdState(a)
	case "wal":
		s.cmdWAL(a)
	case "signed":
		s.cmdSigned(a)
	case "pool":
		for _, n := range a.optNodes() {
			s.printf("%s: %d evidence pooled", n.name, n.pool.Size())
		}
	default:
		td.Fatalf(t, "unknown command %q", td.Cmd)
	}
	a.checkUsed()
	s.reportStopped()
	return s.output()
}

// args are a directive's arguments: key=value pairs, and bare words
// (validator lists, timeout kinds, height/round pairs).
type args struct {
	s     *script
	td    *datadriven.TestData
	kv    map[string]string
	words []string
	used  map[string]bool
	all   bool // the validator list was "all"
}

func (s *script) parseArgs(td *datadriven.TestData) *args {
	a := &args{s: s, td: td, kv: map[string]string{}, used: map[string]bool{}}
	for _, c := range td.CmdArgs {
		switch len(c.Vals) {
		case 0:
			a.words = append(a.words, c.Key)
		case 1:
			a.kv[c.Key] = c.Vals[0]
		default:
			a.kv[c.Key] = strings.Join(c.Vals, ",")
		}
	}
	return a
}

func (a *args) fatalf(format string, v ...any) {
	a.td.Fatalf(a.s.t, format, v...)
}

// get returns the value of key, if given.
func (a *args) get(key string) (string, bool) {
	v, ok := a.kv[key]
	a.used[key] = true
	return v, ok
}

func (a *args) int(key string, def int) int {
	v, ok := a.get(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		a.fatalf("%s=%q: %v", key, v, err)
	}
	return n
}

// word removes and returns the bare word satisfying ok.
func (a *args) word(ok func(string) bool) (string, bool) {
	for i, w := range a.words {
		if ok(w) {
			a.words = slices.Delete(a.words, i, i+1)
			return w, true
		}
	}
	return "", false
}

func (a *args) isNodeList(w string) bool {
	if w == "all" {
		return true
	}
	for _, name := range strings.Split(w, ",") {
		if a.s.byName[name] == nil {
			return false
		}
	}
	return true
}

// nodeList resolves a list of names ("all": every validator).
func (a *args) nodeList(w string) []*node {
	if w == "all" {
		a.all = true
		return a.s.nodes
	}
	var out []*node
	for _, name := range strings.Split(w, ",") {
		n := a.s.byName[name]
		if n == nil {
			a.fatalf("unknown validator %q", name)
		}
		out = append(out, n)
	}
	return out
}

// nodes takes the validator list among the bare words; want > 0 requires
// exactly that many.
func (a *args) nodes(want int) []*node {
	w, ok := a.word(a.isNodeList)
	if !ok {
		a.fatalf("name the validator(s)")
	}
	ns := a.nodeList(w)
	if want > 0 && len(ns) != want {
		a.fatalf("want %d validator(s), got %q", want, w)
	}
	return ns
}

// optNodes is nodes, or every validator when none is named.
func (a *args) optNodes() []*node {
	if w, ok := a.word(a.isNodeList); ok {
		return a.nodeList(w)
	}
	return a.s.nodes
}

func parseHR(w string) (uint64, uint32, bool) {
	hs, rs, ok := strings.Cut(w, "/")
	h, err1 := strconv.ParseUint(hs, 10, 64)
	r, err2 := strconv.ParseUint(rs, 10, 32)
	return h, uint32(r), ok && err1 == nil && err2 == nil
}

// hr takes the height/round among the bare words.
func (a *args) hr() (uint64, uint32) {
	w, ok := a.word(func(w string) bool { _, _, ok := parseHR(w); return ok })
	if !ok {
		a.fatalf("want a height/round such as 1/0")
	}
	h, r, _ := parseHR(w)
	return h, r
}

// checkUsed fails the directive on an argument no command read: a typo
// must not pass silently as a filter that matches everything.
func (a *args) checkUsed() {
	if len(a.words) > 0 {
		a.fatalf("unexpected arguments %q", a.words)
	}
	for k := range a.kv {
		if !a.used[k] {
			a.fatalf("unknown argument %s=", k)
		}
	}
}

// cmdValidators makes a fresh network.
func (s *script) cmdValidators(a *args) {
	v, ok := a.get("powers")
	if !ok {
		a.fatalf("validators needs powers=")
	}
	var powers []uint64
	for _, p := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || n == 0 {
			a.fatalf("bad power %q", p)
		}
		powers = append(powers, n)
	}
	s.setup(powers)
	for _, n := range s.nodes {
		s.printf("%s power=%d", n.name, s.vals.Get(n.idx).Power)
	}
	s.printf("total=%d quorum=%d (more than 2/3) skip=%d (more than 1/3)", s.vals.TotalPower(), s.vals.Quorum(), s.vals.OneThirdPlus())
	sets := consensus.Static(s.vals)
	for h := uint64(1); h <= 3; h++ {
		prio, err := sets.PrioritiesAt(h)
		if err != nil {
			a.fatalf("priorities of height %d: %v", h, err)
		}
		sel := consensus.NewProposerSelector(prio)
		var ps []string
		for r := uint32(0); r < 6; r++ {
			ps = append(ps, s.nodes[sel.Index(r)].name)
		}
		s.printf("proposers h=%d r=0..5: %s", h, strings.Join(ps, " "))
	}
}

func (s *script) cmdStart(a *args) {
	var ns []*node
	if v, ok := a.get("nodes"); ok {
		ns = a.nodeList(v)
	} else if w, ok := a.word(a.isNodeList); ok {
		ns = a.nodeList(w)
	} else {
		for _, n := range s.nodes {
			if !n.started {
				ns = append(ns, n)
			}
		}
	}
	for _, n := range ns {
		if n.started {
			a.fatalf("%s was started before; use restart", n.name)
		}
		n.boot()
	}
}

// filter selects messages in flight.
type filter struct {
	from, to map[*node]bool
	kind     string
	h        *uint64
	r        *uint32
	block    *crypto.Hash
}

func (s *script) parseFilter(a *args) filter {
	var f filter
	set := func(key string) map[*node]bool {
		v, ok := a.get(key)
		if !ok {
			return nil
		}
		m := map[*node]bool{}
		for _, n := range a.nodeList(v) {
			m[n] = true
		}
		return m
	}
	f.from, f.to = set("from"), set("to")
	f.kind = "all"
	if v, ok := a.get("kind"); ok {
		switch v {
		case "proposal", "prevote", "precommit", "vote", "evidence", "all":
			f.kind = v
		default:
			a.fatalf("unknown kind %q", v)
		}
	}
	if v, ok := a.get("h"); ok {
		h, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			a.fatalf("h=%q: %v", v, err)
		}
		f.h = &h
	}
	if v, ok := a.get("r"); ok {
		r, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			a.fatalf("r=%q: %v", v, err)
		}
		r32 := uint32(r)
		f.r = &r32
	}
	if v, ok := a.get("block"); ok {
		id, ok := s.blockID(v)
		if !ok {
			a.fatalf("unknown block %q", v)
		}
		f.block = &id
	}
	return f
}

func (f filter) match(m *message) bool {
	if f.from != nil && !f.from[m.from] || f.to != nil && !f.to[m.to] {
		return false
	}
	kind, h, r, id := m.describe()
	switch f.kind {
	case "all":
	case "vote":
		if kind != "prevote" && kind != "precommit" {
			return false
		}
	default:
		if kind != f.kind {
			return false
		}
	}
	return (f.h == nil || *f.h == h) && (f.r == nil || *f.r == r) && (f.block == nil || *f.block == id)
}

// take removes and returns the messages matching f whose recipient is
// running (or every match, for drop), in the order they were sent.
func (s *script) take(f filter, deliverable bool) []*message {
	var out, kept []*message
	for _, m := range s.inflight {
		if f.match(m) && (!deliverable || m.to.running()) {
			out = append(out, m)
		} else {
			kept = append(kept, m)
		}
	}
	s.inflight = kept
	return out
}

func (s *script) cmdDeliver(a *args) {
	f := s.parseFilter(a)
	ms := s.take(f, true)
	if len(ms) == 0 {
		s.printf("nothing to deliver")
	}
	s.deliver(ms)
}

// deliver hands each message to its recipient; one that crashed or
// stopped on the way keeps its messages pending, ahead of those sent
// meanwhile.
func (s *script) deliver(ms []*message) {
	var back []*message
	for _, m := range ms {
		if !m.to.running() {
			back = append(back, m)
			continue
		}
		m.to.receive(m)
	}
	s.inflight = append(back, s.inflight...)
}

func (s *script) cmdDrop(a *args) {
	for _, m := range s.take(s.parseFilter(a), false) {
		s.printf("dropped %s -> %s", s.msgString(m), m.to.name)
	}
}

// maxStabilize bounds stabilize: a script that keeps producing messages
// without timeouts is a bug in the script or the code.
const maxStabilize = 100

func (s *script) cmdStabilize() {
	for i := 0; ; i++ {
		ms := s.take(filter{kind: "all"}, true)
		if len(ms) == 0 {
			return
		}
		if i == maxStabilize {
			s.t.Fatalf("stabilize: still delivering after %d passes", maxStabilize)
		}
		s.deliver(ms)
	}
}

// cmdPending prints the messages in flight, one line per message with its
// recipients in the order sent.
func (s *script) cmdPending() {
	if len(s.inflight) == 0 {
		s.printf("nothing pending")
		return
	}
	var order []string
	to := map[string][]string{}
	for _, m := range s.inflight {
		k := s.msgString(m)
		if _, ok := to[k]; !ok {
			order = append(order, k)
		}
		name := m.to.name
		switch {
		case !m.to.up:
			name += "(down)"
		case !m.to.running():
			name += "(stopped)"
		}
		to[k] = append(to[k], name)
	}
	for _, k := range order {
		s.printf("%s -> %s", k, strings.Join(to[k], ","))
	}
}

var timeoutKinds = map[string]consensus.TimeoutKind{
	"propose": consensus.TimeoutPropose, "prevote": consensus.TimeoutPrevote, "precommit": consensus.TimeoutPrecommit,
}

func (s *script) cmdTimeout(a *args) {
	ns := a.nodes(0)
	kw, ok := a.word(func(w string) bool { _, ok := timeoutKinds[w]; return ok })
	if !ok {
		a.fatalf("want a timeout kind: propose, prevote or precommit")
	}
	h, r := a.hr()
	ev := consensus.EventTimeout{Height: h, Round: r, Kind: timeoutKinds[kw]}
	for _, n := range ns {
		if !n.fire(ev) && !a.all {
			s.printf("%s: no timeout %s %d/%d scheduled", n.name, kw, h, r)
		}
	}
}

func (s *script) cmdNewHeight(a *args) {
	ns := a.nodes(0)
	for _, n := range ns {
		if !n.up || n.nextHeight == 0 {
			if !a.all {
				s.printf("%s: no new height scheduled", n.name)
			}
			continue
		}
		h := n.nextHeight
		n.nextHeight = 0
		n.input(consensus.EventNewHeight{Height: h}, "")
	}
}

func (s *script) cmdArmCrash(a *args) {
	n := a.nodes(1)[0]
	p := &crashPoint{keep: a.int("keep-unsynced", 0)}
	if v, ok := a.get("before"); ok {
		switch v {
		case "build", "proposal", "prevote", "precommit", "decide":
			p.beforeEffect = v
		case "send-proposal", "send-prevote", "send-precommit":
			p.beforeSend = strings.TrimPrefix(v, "send-")
		default:
			a.fatalf("unknown crash point before=%s", v)
		}
	}
	if v, ok := a.get("after"); ok {
		if v != "store" {
			a.fatalf("unknown crash point after=%s", v)
		}
		p.afterStore = true
	}
	if p.beforeEffect == "" && p.beforeSend == "" && !p.afterStore {
		a.fatalf("arm-crash needs before= or after=")
	}
	n.armed = p
}

func (s *script) cmdLoseBlock(a *args) {
	n := a.nodes(1)[0]
	if n.up {
		a.fatalf("lose-block %s: crash it first (the store loses writes in a crash)", n.name)
	}
	k := a.int("blocks", 1)
	h := n.chain.Height()
	if k < 1 || uint64(k) > h {
		a.fatalf("lose-block %s: the store holds %d blocks, cannot lose %d", n.name, h, k)
	}
	for range k {
		n.chain.loseLast()
	}
	if k == 1 {
		s.printf("%s: store lost block %d; stored height %d", n.name, h, n.chain.Height())
		return
	}
	s.printf("%s: store lost blocks %d to %d; stored height %d", n.name, h-uint64(k)+1, h, n.chain.Height())
}

// cmdCatchUp puts in flight to the node what a peer's catch-up answer
// holds for the height after the node's stored one: the peer's stored
// proposal and the precommits of its commit (enough for L49).
func (s *script) cmdCatchUp(a *args) {
	n := a.nodes(1)[0]
	v, ok := a.get("from")
	if !ok {
		a.fatalf("catch-up %s needs from=", n.name)
	}
	from := a.nodeList(v)
	if len(from) != 1 || from[0] == n {
		a.fatalf("catch-up %s: from= names one other validator", n.name)
	}
	p := from[0]
	h := n.chain.Height() + 1
	if p.chain.Height() < h {
		a.fatalf("catch-up %s: %s has not stored height %d", n.name, p.name, h)
	}
	b := p.chain.blocks[h-1]
	s.inflight = append(s.inflight, &message{from: p, to: n, proposal: b.proposal, block: b.block})
	for _, vote := range b.commit.Votes(s.vals) {
		s.inflight = append(s.inflight, &message{from: p, to: n, vote: &vote})
	}
	s.printf("%s: catch-up answer for height %d in flight to %s: %s and %d precommits", p.name, h, n.name,
		s.proposalString(b.proposal), len(b.commit.Sigs))
}

func (s *script) cmdGate(a *args) {
	n := a.nodes(1)[0]
	w, ok := a.word(func(w string) bool { return w == "open" || w == "closed" })
	if !ok {
		a.fatalf("gate %s open|closed", n.name)
	}
	n.gateClosed = w == "closed"
	if !n.gateClosed && n.up {
		if held := n.core.Held(); held > 0 {
			s.printf("%s: gate open: releasing %d held", n.name, held)
		}
		n.core.ReleaseHeld()
	}
}

func (s *script) cmdEquivocate(a *args) {
	n := a.nodes(1)[0]
	tw, ok := a.word(func(w string) bool { return w == "prevote" || w == "precommit" })
	if !ok {
		a.fatalf("equivocate %s prevote|precommit H/R block=NAME", n.name)
	}
	h, r := a.hr()
	name, ok := a.get("block")
	if !ok {
		a.fatalf("equivocate needs block=")
	}
	id, ok := s.blockID(name)
	if !ok {
		// A block nobody built: a made-up ID under that name.
		id = crypto.Sum([]byte("script/block/" + name))
		s.names[id] = name
	}
	t := ledger.Prevote
	if tw == "precommit" {
		t = ledger.Precommit
	}
	v := &ledger.Vote{Type: t, Height: h, Round: r, BlockID: id}
	v.Sign(s.chainID, n.key)
	s.printf("%s: signs %s around its guard", n.name, s.voteString(v))
	s.broadcast(n, &message{vote: v})
}

func (s *script) cmdState(a *args) {
	for _, n := range a.optNodes() {
		if n.core == nil {
			s.printf("%s: not started", n.name)
			continue
		}
		st := n.core.State()
		line := fmt.Sprintf("%s: h=%d r=%d %s locked=%d/%s valid=%d/%s stored=%d", n.name, st.Height, st.Round, st.Step,
			st.LockedRound, s.blockName(st.LockedValue), st.ValidRound, s.blockName(st.ValidValue), n.chain.Height())
		if !st.Decision.IsZero() {
			line += " decision=" + s.blockName(st.Decision)
		}
		if held := n.core.Held(); held > 0 {
			line += fmt.Sprintf(" held=%d", held)
		}
		if !n.up {
			line += " (down)"
		} else if err := n.core.Err(); err != nil {
			line += " (stopped)"
		}
		s.printf("%s", line)
	}
}

func (s *script) cmdWAL(a *args) {
	n := a.nodes(1)[0]
	recs, synced := n.log.Records()
	if len(recs) == 0 {
		s.printf("empty")
	}
	for i, r := range recs {
		var text string
		switch r.Kind {
		case wal.KindEndHeight:
			text = fmt.Sprintf("end-height %d", r.Height)
		default:
			ev, err := consensus.DecodeEvent(r.Data)
			if err != nil {
				text = fmt.Sprintf("undecodable: %v", err)
			} else {
				text = s.eventString(n, ev)
			}
		}
		if i >= synced {
			text += " (unsynced)"
		}
		s.printf("%s", text)
	}
}

func (s *script) cmdSigned(a *args) {
	for _, n := range a.optNodes() {
		ls, err := n.pv.Load()
		switch {
		case err != nil:
			s.printf("%s: %v", n.name, err)
		case ls.Height == 0:
			s.printf("%s: nothing signed", n.name)
		default:
			s.printf("%s: last signed %s %d/%d %s", n.name, ls.Step, ls.Height, ls.Round, s.blockName(ls.BlockID))
		}
	}
}
