package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/wire"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// The handshake protocol admits a peer to the node: until a peer has
// completed it, none of the chain's stream protocols or gossip RPCs from it
// are served and it counts nowhere as a peer. Its protocol ID carries no
// chain ID, so a node of another chain speaks it too and learns why it is
// refused. On every new connection the dialling side opens one stream and
// writes its hello; the listening side reads it, answers with its own, and
// both judge the other's:
//
//	version (1) | chain ID (uvarint length + bytes) | genesis hash (32) |
//	flag (1: 0, or 1 followed by) validator public key (32) | signature (64)
//
// A peer whose chain ID or genesis hash differs is disconnected and banned
// for Config.BanDuration. The optional validator part is a signature, under
// crypto.DomainHandshake and the chain ID, over the genesis hash, the
// sender's peer ID and the receiver's peer ID: it proves the sender's node
// is run by that validator, which earns it the slots reserved for
// validators. A stream that does not complete within Config.HandshakeTimeout
// or exceeds maxHelloBytes is reset, and a connection whose peer has not
// been admitted by then is closed.
const (
	handshakeProtocol = protocol.ID("/ledgerd/handshake/1")
	handshakeVersion  = 1
	maxHelloBytes     = 1 + 1 + crypto.MaxChainIDLen + crypto.HashSize + 1 + crypto.PubKeySize + crypto.SignatureSize
)

// hello is one side's statement in the handshake.
type hello struct {
	chainID   string
	genesis   crypto.Hash
	validator *crypto.PubKey // nil when the sender claims no validator
	sig       crypto.Signature
}

func (h *hello) encode() []byte {
	w := wire.NewWriter(make([]byte, 0, maxHelloBytes))
	w.U8(handshakeVersion)
	w.PrefixedString(h.chainID)
	w.Fixed(h.genesis[:])
	w.Bool(h.validator != nil)
	if h.validator != nil {
		w.Fixed(h.validator[:])
		w.Fixed(h.sig[:])
	}
	return w.Bytes()
}

func decodeHello(b []byte) (*hello, error) {
	if len(b) > maxHelloBytes {
		return nil, fmt.Errorf("decode hello: %d bytes, at most %d", len(b), maxHelloBytes)
	}
	r := wire.NewReader(b)
	r.Version("hello", handshakeVersion)
	h := &hello{chainID: r.PrefixedString("chain ID", crypto.MaxChainIDLen)}
	r.Fixed(h.genesis[:])
	if r.Bool("validator flag") {
		var pk crypto.PubKey
		r.Fixed(pk[:])
		r.Fixed(h.sig[:])
		h.validator = &pk
	}
	if err := r.Finish("hello"); err != nil {
		return nil, err
	}
	if err := crypto.ValidateChainID(h.chainID); err != nil {
		return nil, fmt.Errorf("decode hello: %w", err)
	}
	return h, nil
}

// handshakeSignBytes is what a validator signs to vouch for its node's
// peer ID (from) in a handshake with to.
func handshakeSignBytes(chainID string, genesis crypto.Hash, from, to peer.ID) []byte {
	w := wire.NewWriter(make([]byte, 0, crypto.HashSize+2*48))
	w.Fixed(genesis[:])
	w.PrefixedString(string(from))
	w.PrefixedString(string(to))
	return crypto.SignBytes(crypto.DomainHandshake, chainID, w.Bytes())
}

// newHello is the hello from self to peer `to`.
func newHello(chainID string, genesis crypto.Hash, valKey *crypto.PrivKey, self, to peer.ID) *hello {
	h := &hello{chainID: chainID, genesis: genesis}
	if valKey != nil {
		pk := valKey.PubKey()
		h.validator = &pk
		h.sig = valKey.Sign(handshakeSignBytes(chainID, genesis, self, to))
	}
	return h
}

// errOtherChain marks a hello of another chain or genesis.
var errOtherChain = errors.New("peer is on another chain")

// readHello reads one hello frame from br.
func readHello(br *bufio.Reader) (*hello, error) {
	frame, err := readFrame(br, maxHelloBytes)
	if err != nil {
		return nil, fmt.Errorf("read hello: %w", err)
	}
	h, err := decodeHello(frame)
	return h, malformed(err)
}

// dialHello runs the dialling side on s, within its deadline: it writes
// ours, reads theirs, and closes the stream, which tells the listener its
// answer arrived.
func dialHello(s network.Stream, ours *hello) (*hello, error) {
	if err := writeFrame(s, ours.encode()); err != nil {
		return nil, fmt.Errorf("write hello: %w", err)
	}
	theirs, err := readHello(bufio.NewReaderSize(s, 128))
	if err != nil {
		return nil, err
	}
	_ = s.Close()
	return theirs, nil
}

// Handshake runs the dialling side of ledgerd's handshake from h to p,
// stating chainID and genesis (and no validator). A libp2p host that is not
// a Node (a tool, a test's raw peer) calls it after connecting, or a Node
// closes the connection after Config.HandshakeTimeout. It returns an error
// wrapping errOtherChain's message when p is on another chain.
func Handshake(ctx context.Context, h host.Host, p peer.ID, chainID string, genesis crypto.Hash) error {
	s, err := h.NewStream(ctx, p, handshakeProtocol)
	if err != nil {
		return fmt.Errorf("handshake with %s: %w", p, err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	theirs, err := dialHello(s, newHello(chainID, genesis, nil, h.ID(), p))
	if err != nil {
		s.Reset()
		return fmt.Errorf("handshake with %s: %w", p, err)
	}
	if theirs.chainID != chainID || theirs.genesis != genesis {
		return fmt.Errorf("handshake with %s: %w: chain %q genesis %s", p, errOtherChain, theirs.chainID, theirs.genesis)
	}
	return nil
}

// admission is what the node knows of one connected peer's handshake.
type admission struct {
	done      chan struct{} // closed once decided (admitted, refused or gone)
	ok        bool          // admitted; set before done closes
	validator bool          // proved to be run by a validator
	inbound   bool          // the first connection was dialled by the peer
	since     time.Time     // when it was admitted
	timer     bool          // the handshake deadline is armed
	dialling  bool          // this node runs the dialling side
}

// admissions holds an entry per connected peer (created when its first
// connection or stream appears, dropped when its last connection closes),
// so it is bounded by the connection cap.
type admissions struct {
	mu      sync.Mutex
	m       map[peer.ID]*admission
	changed chan struct{} // closed and replaced when a peer is admitted or leaves
}

func newAdmissions() *admissions {
	return &admissions{m: make(map[peer.ID]*admission), changed: make(chan struct{})}
}

func (a *admissions) notifyLocked() {
	close(a.changed)
	a.changed = make(chan struct{})
}

// watch returns a channel closed on the next admission or departure.
func (a *admissions) watch() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.changed
}

// entry returns p's entry, creating a pending one.
func (a *admissions) entry(p peer.ID, inbound bool) *admission {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.entryLocked(p, inbound)
}

func (a *admissions) entryLocked(p peer.ID, inbound bool) *admission {
	e := a.m[p]
	if e == nil {
		e = &admission{done: make(chan struct{}), inbound: inbound}
		a.m[p] = e
	}
	return e
}

// admitted reports whether p has been admitted.
func (a *admissions) admitted(p peer.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.m[p]
	return e != nil && e.ok
}

// info returns p's admission state (zero when unknown).
func (a *admissions) info(p peer.ID) (ok, validator bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.m[p]; e != nil {
		return e.ok, e.validator
	}
	return false, false
}

// list returns the admitted peers.
func (a *admissions) list() []peer.ID {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]peer.ID, 0, len(a.m))
	for p, e := range a.m {
		if e.ok {
			out = append(out, p)
		}
	}
	return out
}

// remove forgets p (its last connection closed), waking its waiters.
func (a *admissions) remove(p peer.ID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.m[p]; e != nil {
		delete(a.m, p)
		select {
		case <-e.done:
		default:
			close(e.done)
		}
		a.notifyLocked()
	}
}

// onConnected arms the handshake for a new connection c: the dialling side
// starts the exchange, and either side closes the connection if the peer
// is not admitted within the handshake timeout. It runs on the network's
// notification goroutine and does not block.
func (n *Node) onConnected(c network.Conn) {
	p := c.RemotePeer()
	inbound := c.Stat().Direction == network.DirInbound
	n.admits.mu.Lock()
	e := n.admits.entryLocked(p, inbound)
	armTimer := !e.timer
	e.timer = true
	dial := !inbound && !e.dialling && !e.ok
	if dial {
		e.dialling = true
	}
	n.admits.mu.Unlock()
	if armTimer {
		time.AfterFunc(n.cfg.HandshakeTimeout, func() { n.handshakeExpired(p, e) })
	}
	if dial {
		n.goTracked(func() { n.dialHandshake(p) })
	}
}

// handshakeExpired closes p's connections if e, its entry, is still
// undecided when the handshake timeout fires.
func (n *Node) handshakeExpired(p peer.ID, e *admission) {
	select {
	case <-e.done:
		return
	default:
	}
	if n.ctx.Err() != nil {
		return
	}
	n.log.Info("peer did not complete the handshake in time; disconnecting", "peer", p, "timeout", n.cfg.HandshakeTimeout)
	n.refuse(p, e)
}

// dialHandshake runs the dialling side of the handshake with p.
func (n *Node) dialHandshake(p peer.ID) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.HandshakeTimeout)
	defer cancel()
	s, err := n.host.NewStream(ctx, p, handshakeProtocol)
	if err != nil {
		n.log.Debug("handshake: open stream", "peer", p, "err", err)
		return // the deadline closes the connection
	}
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	theirs, err := dialHello(s, n.hello(p))
	if err != nil {
		s.Reset()
		n.handshakeFault(p, err)
		return
	}
	n.act(p, n.assess(p, theirs))
}

// serveHandshake runs the listening side of the handshake.
func (n *Node) serveHandshake(s network.Stream) {
	if !n.track() {
		s.Reset()
		return
	}
	defer n.wg.Done()
	p := s.Conn().RemotePeer()
	_ = s.SetDeadline(time.Now().Add(n.cfg.HandshakeTimeout))
	br := bufio.NewReaderSize(s, 128)
	theirs, err := readHello(br)
	if err != nil {
		s.Reset()
		n.handshakeFault(p, err)
		return
	}
	v := n.assess(p, theirs)
	if err := writeFrame(s, n.hello(p).encode()); err != nil {
		s.Reset()
		n.log.Debug("handshake: write hello", "peer", p, "err", err)
		return // the deadline closes the connection
	}
	if v.ban != "" {
		// Let the dialler read why before the connection goes: it
		// closes the stream once it has our hello (bounded by the
		// deadline).
		_, _ = br.ReadByte()
	}
	_ = s.Close()
	n.act(p, v)
}

// hello is our hello to peer to. It proves our validator key only while
// the key is in a validator set around our height.
func (n *Node) hello(to peer.ID) *hello {
	key := n.cfg.ValidatorKey
	if key != nil && !n.isValidator(key.PubKey().Address()) {
		key = nil
	}
	return newHello(n.cfg.ChainID, n.cfg.GenesisHash, key, n.host.ID(), to)
}

// handshakeFault handles a handshake that failed on the wire: a malformed
// hello is penalised; a timeout or reset is left to the deadline.
func (n *Node) handshakeFault(p peer.ID, err error) {
	if isMalformed(err) {
		n.penalise(p, "malformed handshake: "+err.Error(), malformedWeight)
	}
	n.log.Debug("handshake failed", "peer", p, "err", err)
}

// helloVerdict is the outcome of a peer's hello.
type helloVerdict struct {
	ban       string // why p is banned; "" if it is not
	validator bool   // p proved a validator runs it
}

// assess judges p's hello: another chain or genesis, or a false validator
// claim, gets p banned (recorded in the gater at once, so it cannot
// reconnect while the connection winds down).
func (n *Node) assess(p peer.ID, h *hello) helloVerdict {
	if h.chainID != n.cfg.ChainID || h.genesis != n.cfg.GenesisHash {
		n.log.Warn("refused peer of another chain", "peer", p,
			"their_chain", h.chainID, "their_genesis", h.genesis,
			"our_chain", n.cfg.ChainID, "our_genesis", n.cfg.GenesisHash)
		v := helloVerdict{ban: fmt.Sprintf("%v: chain %q genesis %s", errOtherChain, h.chainID, h.genesis)}
		n.gater.ban(p, n.cfg.BanDuration)
		return v
	}
	if h.validator == nil {
		return helloVerdict{}
	}
	if !h.validator.Verify(handshakeSignBytes(h.chainID, h.genesis, p, n.host.ID()), h.sig) {
		n.gater.ban(p, n.cfg.BanDuration)
		return helloVerdict{ban: "handshake: false validator claim"}
	}
	// A key outside the sets around our height is not a lie: the set
	// changes, and the peer's height may differ from ours. It is admitted
	// as any other peer, without a validator's slot.
	return helloVerdict{validator: n.isValidator(h.validator.Address())}
}

// act carries out v: a ban disconnects p, otherwise p is admitted if a
// slot is free for it (admitPeer).
func (n *Node) act(p peer.ID, v helloVerdict) {
	if v.ban != "" {
		n.Ban(p, v.ban)
		return
	}
	n.admitPeer(p, v.validator)
}

// refuse closes p's connections and marks its entry decided (not admitted).
func (n *Node) refuse(p peer.ID, e *admission) {
	n.admits.mu.Lock()
	if n.admits.m[p] == e {
		delete(n.admits.m, p)
	}
	select {
	case <-e.done:
	default:
		close(e.done)
	}
	n.admits.notifyLocked()
	n.admits.mu.Unlock()
	if err := n.host.Network().ClosePeer(p); err != nil {
		n.log.Debug("close refused peer", "peer", p, "err", err)
	}
}

// waitAdmitted blocks until p is admitted (true), refused or gone, the
// handshake timeout passes, or the node closes (false).
func (n *Node) waitAdmitted(p peer.ID, inbound bool) bool {
	e := n.admits.entry(p, inbound)
	t := time.NewTimer(n.cfg.HandshakeTimeout)
	defer t.Stop()
	select {
	case <-e.done:
		n.admits.mu.Lock()
		defer n.admits.mu.Unlock()
		return e.ok
	case <-t.C:
	case <-n.ctx.Done():
	}
	// A stream whose connection closed before the peer's entry existed
	// must not leave one behind.
	if n.host.Network().Connectedness(p) != network.Connected {
		n.admits.mu.Lock()
		if n.admits.m[p] == e && !e.ok {
			delete(n.admits.m, p)
		}
		n.admits.mu.Unlock()
	}
	return false
}

// admittedOnly wraps a stream handler so it runs only for admitted peers,
// waiting (up to the handshake timeout) for a handshake in progress.
func (n *Node) admittedOnly(h network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		p := s.Conn().RemotePeer()
		if !n.waitAdmitted(p, s.Conn().Stat().Direction == network.DirInbound) {
			s.Reset()
			return
		}
		h(s)
	}
}

// admittedPeers are the connected peers that completed the handshake.
func (n *Node) admittedPeers() []peer.ID { return n.admits.list() }

// isValidator reports whether a is a validator of the height being decided,
// the one before or the next: a validator that just joined or just left
// still proves its claim.
func (n *Node) isValidator(a crypto.Address) bool {
	h, _ := n.handler.ConsensusPosition()
	for _, at := range []uint64{h - 1, h, h + 1} {
		if at == 0 || at > h+1 {
			continue
		}
		if vals, err := n.vals.ValidatorsAt(at); err == nil && vals != nil {
			if _, ok := vals.ByAddress(a); ok {
				return true
			}
		}
	}
	return false
}
