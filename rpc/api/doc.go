// Package api holds the wire types of ledgerd's JSON-RPC API, shared by the
// server (package rpc) and the Go client (package rpc/client): method
// names, parameter and result types, and the error codes.
//
// Integers that may exceed 2^53 (heights, amounts, nonces) are decimal
// strings in JSON; hashes and keys are lower-case hex; addresses are
// bech32 ("ldg1..."). docs/rpc.md documents every method with examples.
package api

// Method names. Every method lives in the ledger_ namespace.
const (
	MethodSendTransaction        = "ledger_sendTransaction"
	MethodSendTransactionAndWait = "ledger_sendTransactionAndWait"
	MethodGetTransaction         = "ledger_getTransaction"
	MethodGetAccount             = "ledger_getAccount"
	MethodGetAccountTransactions = "ledger_getAccountTransactions"
	MethodGetBlockByHeight       = "ledger_getBlockByHeight"
	MethodGetBlockByHash         = "ledger_getBlockByHash"
	MethodGetCommit              = "ledger_getCommit"
	MethodStatus                 = "ledger_status"
	MethodValidators             = "ledger_validators"
	MethodGenesis                = "ledger_genesis"
	MethodMempool                = "ledger_mempool"
	MethodPendingTransactions    = "ledger_pendingTransactions"
	MethodPeers                  = "ledger_peers"
	MethodSuggestFee             = "ledger_suggestFee"
	MethodStakingPool            = "ledger_stakingPool"
	MethodGetValidator           = "ledger_getValidator"
	MethodValidatorsByPower      = "ledger_validatorsByPower"
	MethodDelegationsByDelegator = "ledger_getDelegationsByDelegator"
	MethodDelegationsByValidator = "ledger_getDelegationsByValidator"
	MethodGetUnbondings          = "ledger_getUnbondings"
	MethodSubscribe              = "ledger_subscribe"
	MethodUnsubscribe            = "ledger_unsubscribe"
	// NotificationSubscription is the method of the notifications a
	// WebSocket subscription delivers.
	NotificationSubscription = "ledger_subscription"
)
