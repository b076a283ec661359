// Package rpc is ledgerd's JSON-RPC 2.0 server: HTTP POST and WebSocket
// on one port, /health and /metrics beside them. docs/rpc.md is the
// reference for users; package rpc/api holds the wire types and error
// codes, and package rpc/client the Go client.
//
// # Shape
//
// Methods live in the ledger_ namespace and take their parameters by
// position or by name. Reads go to the node's store and mempool, which
// readers never block (no consensus locks). A Backend interface, which
// package node implements, keeps this package free of the node.
//
// # Bounds
//
// Every input is bounded before it is decoded: request bodies and
// WebSocket messages (MaxBodyBytes), batches (MaxBatchRequests),
// subscriptions per connection (MaxSubscriptions), connections
// (MaxConnections), list answers (1000 items), waits (MaxWait). A bad
// call gets a JSON-RPC error, never a panic (handlers are also guarded by
// recover), and only that call fails.
//
// # Subscriptions
//
// The server holds one subscription to the node's events and fans it out
// through a hub. Each WebSocket connection has one writer goroutine and a
// bounded queue; the hub never waits on a client: a client that lets its
// queue fill is dropped with close code 1008 and a reason that says so.
//
// # Ownership
//
// Serve owns every goroutine the server starts (the hub, the HTTP server,
// one reader and one writer per WebSocket connection, waiting calls) and
// returns only after all have ended, so the node can close its stores
// right after.
package rpc
