// Package rpc is ledgerd's JSON-RPC 2.0 server: HTTP POST and WebSocket
// on one port, /health and /metrics beside them. docs/rpc.md is the
// reference for users; package rpc/api holds the wire types and error
// codes, and package rpc/client the Go client.
//
// # Shape
//
// Methods live in the ledger_ namespace and take their parameters by
// position or by name. Reads go to the node's store and mempool, which
// readers never block (no consensus locks), through the two interfaces
// that hold only what the handlers read (ChainReader, TxPool). A Backend
// interface, which package node implements, keeps this package free of
// the node. The staking queries read single records at any height from
// the state commitment (with proofs) and page through the latest state's
// flat index, each page of one height (ChainReader.ReadLatest).
//
// # Bounds
//
// Every input is bounded before it is decoded: request bodies and
// WebSocket messages (MaxBodyBytes), batches (MaxBatchRequests),
// subscriptions per connection (MaxSubscriptions), connections
// (MaxConnections), list answers (1000 items; staking pages 100), waits
// (MaxWait). Outputs
// are bounded by bytes: each answer (MaxResponseBytes), a batch's answers
// (MaxBatchResponseBytes), all answers not yet written
// (MaxResponseBytesInFlight) and each WebSocket's queue (WSQueueBytes).
// Clients are kept apart by IP address (clients.go): connection,
// WebSocket and call-rate limits per client, refusals answered at once.
// Hosts and WebSocket origins are checked against DNS rebinding
// (guard.go). A bad call gets a JSON-RPC error, never a panic (handlers
// are also guarded by recover), and only that call fails.
//
// # Subscriptions
//
// The server holds one subscription to the node's events and fans it out
// through a hub. Each WebSocket connection has one writer goroutine and a
// queue bounded in messages and bytes; the hub never waits on a client: a
// client that lets its queue fill with notifications is dropped with close
// code 1008 and a reason that says so, and one that does not read its
// answers is no longer read from until it does.
//
// # Ownership
//
// Serve owns every goroutine the server starts (the hub, the HTTP server,
// one reader and one writer per WebSocket connection, waiting calls) and
// returns only after all have ended, so the node can close its stores
// right after.
package rpc
