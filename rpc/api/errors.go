package api

import "fmt"

// Standard JSON-RPC 2.0 error codes.
const (
	CodeParseError     = -32700 // the body is not valid JSON
	CodeInvalidRequest = -32600 // valid JSON, but not a JSON-RPC 2.0 request
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602 // wrong parameter count, type or value (bad hex, bad address...)
	CodeInternal       = -32603
)

// Server error codes (the range JSON-RPC reserves for implementations).
const (
	// CodeRequestTooLarge: the body or WebSocket message exceeds the
	// node's rpc.max_body_bytes.
	CodeRequestTooLarge = -32001
	// CodeBatchTooLarge: a batch holds more than rpc.max_batch_requests calls.
	CodeBatchTooLarge = -32002
	// CodeTooManySubscriptions: the connection already holds
	// rpc.max_subscriptions_per_client subscriptions.
	CodeTooManySubscriptions = -32003
	// CodeNeedsWebSocket: the method (ledger_subscribe, ledger_unsubscribe)
	// is served over WebSocket only.
	CodeNeedsWebSocket = -32004
	// CodeNotFound: the block, commit, height or subscription does not
	// exist on this node.
	CodeNotFound = -32005
	// CodeTimeout: ledger_sendTransactionAndWait gave up waiting for the
	// commit; the transaction may still commit (data.status says where it is).
	CodeTimeout = -32006
	// CodeUnavailable: the node is shutting down or cannot serve the request now.
	CodeUnavailable = -32007
	// CodeResponseTooLarge: an answer, or a batch's answers together,
	// would exceed rpc.max_response_bytes / rpc.max_batch_response_bytes.
	CodeResponseTooLarge = -32008
	// CodeRateLimited: the client (its IP address) sent more calls than
	// rpc.max_requests_per_second_per_client allows; retry later.
	CodeRateLimited = -32009
	// CodeOverloaded: the node's budget of answer bytes in flight
	// (rpc.max_response_bytes_in_flight) is spent; retry later.
	CodeOverloaded = -32010
	// CodeHostNotAllowed: the Host header names neither an IP address nor
	// a name in rpc.vhosts (a DNS-rebinding guard); answered with HTTP 403.
	CodeHostNotAllowed = -32011
	// CodeOriginNotAllowed: a WebSocket handshake's Origin is not in
	// rpc.ws_origins (nor rpc.cors_allowed_origins); answered with HTTP 403.
	CodeOriginNotAllowed = -32012
	// CodeTooManyConnections: the client (its IP address) holds
	// rpc.max_connections_per_client connections or
	// rpc.max_websockets_per_client WebSockets, or the node holds
	// rpc.max_websockets; answered with HTTP 429 or 503.
	CodeTooManyConnections = -32013
	// CodePruned: the state at the height asked for was pruned (see the
	// node's [pruning] configuration); data.oldest_height is the
	// lowest height whose state the node still keeps.
	CodePruned = -32014
)

// Application error codes: why the node refused a transaction. They are
// 1000 plus the mempool's stable reason number, and never renumbered.
// Error data carries {"reason": name, "pending_nonce": n} (the nonce only
// for the nonce and duplicate reasons) so a wallet can re-sync.
const (
	CodeTxInvalid           = 1001 // a stateless rule: zero amount, transfer to oneself, a field the kind does not use
	CodeTxTooLarge          = 1002 // the encoding exceeds the node's size limit
	CodeWrongChain          = 1003 // the transaction names another chain ID
	CodeBadSignature        = 1004 // the signature does not verify
	CodeDuplicate           = 1005 // the same transaction is already pending
	CodeNonceTooLow         = 1006 // the nonce was used by a committed transaction (a replay)
	CodeNonceGap            = 1007 // the nonce is too far ahead of the account's
	CodeInsufficientFunds   = 1008 // the balance cannot pay amount + fee after the sender's pending ones
	CodeSenderLimit         = 1009 // the sender has too many pending transactions
	CodeFeeTooLowToReplace  = 1010 // a same-nonce transaction is pending and this one's fee is not enough higher
	CodeMempoolFull         = 1011 // the pool is full of better-paying transactions
	CodeStateUnavailable    = 1012 // the node could not read the sender's account
	CodeTxDropped           = 1030 // admitted, then dropped before committing (data.reason: replaced, evicted, expired...)
	mempoolCodeOffset       = 1000
	maxMempoolRejectionCode = 12
)

// CodeForMempoolReason returns the application code for mempool rejection
// reason number r (mempool.Code), and false when r is not a rejection reason.
func CodeForMempoolReason(r int) (int, bool) {
	if r < 1 || r > maxMempoolRejectionCode {
		return 0, false
	}
	return mempoolCodeOffset + r, true
}

var codeNames = map[int]string{
	CodeParseError:           "parse_error",
	CodeInvalidRequest:       "invalid_request",
	CodeMethodNotFound:       "method_not_found",
	CodeInvalidParams:        "invalid_params",
	CodeInternal:             "internal_error",
	CodeRequestTooLarge:      "request_too_large",
	CodeBatchTooLarge:        "batch_too_large",
	CodeTooManySubscriptions: "too_many_subscriptions",
	CodeNeedsWebSocket:       "needs_websocket",
	CodeNotFound:             "not_found",
	CodeTimeout:              "timeout",
	CodeUnavailable:          "unavailable",
	CodeResponseTooLarge:     "response_too_large",
	CodeRateLimited:          "rate_limited",
	CodeOverloaded:           "overloaded",
	CodeHostNotAllowed:       "host_not_allowed",
	CodeOriginNotAllowed:     "origin_not_allowed",
	CodeTooManyConnections:   "too_many_connections",
	CodePruned:               "pruned",
	CodeTxInvalid:            "invalid",
	CodeTxTooLarge:           "tx_too_large",
	CodeWrongChain:           "wrong_chain",
	CodeBadSignature:         "bad_signature",
	CodeDuplicate:            "duplicate",
	CodeNonceTooLow:          "nonce_too_low",
	CodeNonceGap:             "nonce_gap",
	CodeInsufficientFunds:    "insufficient_funds",
	CodeSenderLimit:          "sender_limit",
	CodeFeeTooLowToReplace:   "fee_too_low_to_replace",
	CodeMempoolFull:          "mempool_full",
	CodeStateUnavailable:     "state_unavailable",
	CodeTxDropped:            "tx_dropped",
}

// CodeName returns the stable snake_case name of an error code, the
// "outcome" label of the ledgerd_rpc_requests_total metric.
func CodeName(code int) string {
	if s, ok := codeNames[code]; ok {
		return s
	}
	return fmt.Sprintf("code_%d", code)
}

// Error is a JSON-RPC error object. Data, when present, is a JSON value
// with details (for transaction rejections an ErrorData).
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// Error returns "message (code N)".
func (e *Error) Error() string { return fmt.Sprintf("%s (code %d)", e.Message, e.Code) }

// ErrorData is the data of application errors.
type ErrorData struct {
	// Reason is the stable name of the code (CodeName).
	Reason string `json:"reason"`
	// PendingNonce is the nonce the sender should use next, for
	// nonce_too_low, nonce_gap and duplicate.
	PendingNonce *Uint64 `json:"pending_nonce,omitempty"`
	// Hash names the transaction, for timeout and tx_dropped.
	Hash *string `json:"hash,omitempty"`
	// Status is where the transaction is, for timeout: pending or unknown.
	Status TxStatus `json:"status,omitempty"`
	// OldestHeight is the lowest height whose state the node keeps, for
	// pruned.
	OldestHeight *Uint64 `json:"oldest_height,omitempty"`
}

// Errorf returns an *Error with a formatted message and data.reason set
// to the code's stable name.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Data: &ErrorData{Reason: CodeName(code)}}
}
