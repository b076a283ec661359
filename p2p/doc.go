// Package p2p connects a ledgerd node to its peers: a libp2p host, gossipsub
// topics for transactions, proposals (with block parts), votes and evidence,
// and request/response stream protocols, each /ledgerd/<chain>/<name>/1:
//
//   - status: latest height and base, exchanged on connect and periodically;
//   - blocksync: blocks with their commits, in batches;
//   - catchup: the current round's proposal, parts and votes;
//   - snapshots: state-snapshot offers, manifests and chunks (state sync),
//     spoken by nodes whose Handler is a SnapshotSource;
//   - lightblock: a header with its commit and validator set, for verifying
//     heights from the genesis, spoken by nodes whose Handler is a
//     LightBlockSource.
//
// Every stream protocol has one request frame and a bounded answer, a read
// deadline for the request, a bounded number of streams served at once (2
// per peer), and answers drawn from the per-peer serving budget; a malformed
// request is penalised, and an answer that breaks the protocol gets the
// peer that sent it banned.
//
// # Host
//
// The host listens on TCP (Noise security, yamux streams) and QUIC v1 (TLS 1.3
// built into QUIC). Its identity is an ed25519 key kept in the node's home
// (LoadOrGenNodeKey). Persistent peers are redialled with exponential backoff
// for as long as the node runs and are protected from connection trimming;
// bootstrap peers are dialled once at start. A connection manager trims
// connections above Config.MaxPeers and the connection gater refuses inbound
// peers beyond it (persistent peers always get in) and every banned peer.
//
// # Gossip
//
// Topics carry the chain ID (/ledgerd/<chain>/<kind>/1), so a node of another
// chain never joins them. Every message is a version byte, a kind byte and
// canonical ledger encodings (envelope.go has the layout). A proposal is one
// message; its block travels as part messages on the same topic, each at most
// ledger.BlockPartSize bytes plus its Merkle proof and the signed proposal, so
// every part can be checked on its own the moment it arrives. The pubsub
// message size limit (Config.MaxMessageBytes, 256 KiB by default) leaves room
// for one part message and pubsub's own framing.
//
// Transactions travel on their own gossipsub router, with its own stream
// protocols (TxGossipProtocols) and so its own outbound queue per peer; the
// consensus topics (proposals and parts, votes, evidence) share the other.
// A flood of transactions, or a slow peer, can make the node drop
// transaction RPCs but never a vote or a block part.
//
// Each topic has a validator that decodes once, checks the message's basic
// fields, chain and signature against the validator set, and answers:
//   - reject for garbage, a wrong chain, a bad signature, a non-validator
//     signer, a message of the wrong kind for the topic, or a round more
//     than MaxRoundsAhead beyond the window at any height it admits;
//   - ignore for a message that is honest but of no use now: a height below
//     the consensus position, or too far above it (the node is behind and block
//     sync, not gossip, will bring it forward); transactions beyond the
//     sender's per-peer rate, or that the Handler's optional TxChecker finds
//     stale or unable ever to execute (the latter also cost the relaying peer
//     PenaltyJunkTx each, through Penalize);
//   - accept otherwise, attaching the decoded value, which a per-topic loop
//     hands to the Handler.
//
// Signatures are verified here, in the validator, for every kind including
// transactions: only the network layer can penalise the peer that sent a bad
// signature, and doing it before forwarding keeps forged messages from
// spreading. A Handler may therefore trust that every value it receives is
// well-formed, signed by the right key for this chain and, for consensus
// messages, signed by a member of the validator set.
//
// Rejected messages weigh heavily in gossipsub's peer score
// (InvalidMessageDeliveriesWeight). What only the application can judge —
// consensus refusing a message, the mempool refusing a relayed transaction,
// a height claim block sync could not back — is charged with Penalize and
// enters the score as its application-specific part. A peer whose score
// falls below the graylist threshold, whose penalty reaches it, or that
// sends Config.RejectLimit rejected messages within Config.RejectWindow, is
// disconnected and banned by the connection gater for Config.BanDuration.
//
// # Recovering missed messages
//
// Gossip may lose messages. When the consensus position (height, round) has
// not moved for Config.CatchupInterval, the node asks up to two peers at its
// height, over /ledgerd/<chain>/catchup/1, for the proposal, block parts and
// votes they hold for that height from that round on (Handler.RoundMessages).
// The answers pass the same checks as gossip and reach the same Handler
// methods. The driver may also call CatchUp itself, for example when a
// propose timeout fires. A node behind by whole heights uses block sync.
//
// # Block sync
//
// Peers exchange their latest height and base (the lowest height whose
// block they serve: 1 for a full node, higher for one that pruned or was
// restored by state sync; Handler's optional BlockBase) over
// /ledgerd/<chain>/status/1 when they connect and every
// Config.StatusInterval; a verified vote or proposal also
// tells us its author has reached the height before it. WaitBehind returns when
// two peers (or the only one) are ahead by more than Config.SyncLag heights,
// or one peer has been ahead for longer than Config.SyncStall; the driver
// then runs a Syncer alongside consensus, which fetches blocks and commits
// from several peers in parallel over /ledgerd/<chain>/blocksync/1, verifies
// every commit against the validator set and every block's body against its
// header, and hands them over in height order. Only that verified block
// makes the driver pause consensus: a claim alone never does. A peer that
// serves a bad block or commit is banned and its heights are fetched from
// another; a peer that cannot back its claim (no blocks for heights it
// claims, or stalled answers) is penalised, its claim stops counting, and
// claiming it again gets it banned. A peer is only ever asked for heights
// from its base up, and lacking heights below its base is no fault; a peer
// whose base is above the next height does not count as being ahead, so a
// node whose every peer pruned past it is not sent to block sync (the
// driver sees it in PeerBases and can go to state sync).
//
// # State sync
//
// A node joining a long chain restores a state snapshot instead of
// replaying every block. This package carries it and leaves the snapshot
// format to the node: manifests and chunks are opaque bytes, bounded by
// MaxManifestBytes and MaxChunkBytes. DiscoverSnapshots asks every peer
// what it offers (/ledgerd/<chain>/snapshots/1) and groups the offers by
// snapshot with the peers offering each; FetchManifest fetches a manifest
// and checks it against the offer's hash; FetchChunks fetches the chunks
// from the offering peers in parallel, a few requests per peer, least
// loaded peer first, and hands each to the node's Verify callback, which
// checks the chunk's proof against the app hash. A chunk that fails gets
// its peer banned and is fetched from another; a peer that offered the
// snapshot and then answers "not found" is penalised; timeouts and busy
// answers back off; the fetch fails cleanly once no offering peer is left.
// Chunks restored before a restart are skipped (FetchSpec.Done).
//
// The snapshot's height must be checked against a header the node
// verified itself, from the genesis, by peers' commits. The lightblock
// protocol serves the header, commit and validator set of a height;
// FetchLightBlock fetches one from a peer and checks that it holds
// together, and LightBlocks is a LightBlockProvider that asks several peers
// and reports a conflict when two serve different ones. Deciding which
// headers to trust is the light client's job, not this package's.
//
// # Driving it
//
// The node driver implements Handler, publishes its own messages with the
// Publish methods, and owns one loop that returns to block sync whenever the
// node falls behind:
//
//	n, err := p2p.New(ctx, cfg, key, handler, vals)
//	...
//	defer n.Close()
//	for { // beside the consensus goroutine
//		if _, err := n.WaitBehind(ctx); err != nil {
//			return err
//		}
//		h, err := n.NewSyncer().Sync(ctx, store.Height()+1, handToConsensusGoroutine)
//		// that goroutine pauses consensus at the first verified block it
//		// gets, stores each, and restarts consensus at h+1 once Sync returns
//	}
//
// WaitMesh lets it wait for the gossip mesh before proposing the first block.
//
// # Handler contract
//
// Handler methods are called from several goroutines at once and must be safe
// for that. They should return quickly: a slow handler stalls its topic's
// delivery loop, and pubsub then drops that topic's messages for this node
// (counted and logged) rather than blocking the network. The same value may
// be delivered more than once (gossip and catch-up overlap). The node never
// delivers the messages it published itself.
package p2p
