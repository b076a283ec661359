// Package adversary is a byzantine peer for ledgerd and the harness that
// turns it on a real network (issue 18: one byzantine peer must not halt
// or slow the chain).
//
// The attacker is a set of libp2p identities (Noise over TCP) that speak
// the node's own protocols: the chain handshake (p2p.Handshake, with the
// chain ID and genesis hash) on every connection they make, except in the
// attack whose point is a peer that never handshakes; gossipsub on the
// chain's consensus topics and, on a second router speaking
// p2p.TxGossipProtocols, the transaction topic; and the status, block-sync
// and catch-up stream protocols, using the wire encodings of package p2p.
// Every attack has its own loopback range, 127.(10+i).0.0/16: an attack
// that is one attacker uses one address for all its identities, and one
// whose point is many identities from many addresses (Sybils filling peer
// or serving slots, churn, peers that never handshake) gives each identity
// its own (Linux routes all of 127/8 to the loopback interface). It holds what a byzantine participant may
// hold: one validator's key (under a third of the power) and one funded
// account. Each attack (Attacks) is a function bounded by a context and
// scaled by an intensity; identifiable attackers rotate to a fresh identity
// when the nodes drop the current one, so the pressure lasts the whole
// attack.
//
// Run spawns four ledgerd validator processes (internal/harness/localnet),
// drives honest load (presigned-rate transfers to three of them, each account in
// nonce order), measures a baseline window, then runs each attack in turn
// with the load on. Per attack it reports the longest gap between block
// header times, the submit-to-commit p50/p99 of transfers first submitted
// during the attack, what each node did to the attacker's identities
// (banned, disconnected after the handshake, a negative gossip score or a
// charged penalty in ledger_peers, or nothing), and
// attack-specific checks (evidence committed, a restarted validator caught
// up, an honest newcomer admitted). After the last attack the load stops,
// every admitted transfer must commit exactly once, and every node's block
// hash at every height must agree. The checks:
//
//   - block gap <= 2 x the baseline's median interval + the round-0
//     propose, prevote and precommit timeouts of genesis;
//   - p99 <= max(2 x baseline p99, baseline p99 + Config.LatencyFloor);
//   - identifiable attackers penalised by every node;
//   - no fork, nothing admitted lost or committed twice.
package adversary
