package chaos

import (
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/ledgerd/ledgerd/crypto"
)

// The workload's accounts come in groups: sender g transfers only to
// recipient g, so a group's operations touch no other group's accounts and
// the linearizability check splits the history by group (porcupine's
// P-compositionality) without losing anything.

// Role says which account of its group an operation reads.
type Role uint8

// Account roles within a group.
const (
	Sender Role = iota
	Recipient
)

// OpKind says what an operation did.
type OpKind uint8

// Operation kinds.
const (
	OpTransfer OpKind = iota // sender -> recipient, amount plus fee paid by the sender
	OpRead                   // ledger_getAccount of one account
)

// Pending is the Return time of an operation whose outcome the client
// never learned: a transfer it submitted but never saw committed. The
// checker may place it anywhere after its call, including after every
// other operation (as if it never happened).
const Pending int64 = math.MaxInt64

// Op is one recorded client operation. Times are nanoseconds since the
// history began.
type Op struct {
	Client int    `json:"client"`
	Kind   OpKind `json:"kind"`
	Group  int    `json:"group"`
	Call   int64  `json:"call"`
	Return int64  `json:"return"`

	// Transfers: what was signed, and where the client saw it commit.
	TxHash crypto.Hash `json:"tx_hash,omitzero"`
	Amount uint64      `json:"amount,omitempty"`
	Fee    uint64      `json:"fee,omitempty"`
	Nonce  uint64      `json:"nonce"`
	Height uint64      `json:"height,omitempty"` // commit height (transfers) or the height read at (reads)

	// Reads: the account read and what the node answered.
	Role    Role   `json:"role,omitempty"`
	Balance uint64 `json:"balance,omitempty"`
	Node    int    `json:"node"`
}

// Acknowledged reports whether the client saw the transfer committed.
func (o *Op) Acknowledged() bool { return o.Kind == OpTransfer && o.Return != Pending }

// History records operations from many goroutines.
type History struct {
	start time.Time

	mu  sync.Mutex
	ops []Op
}

// NewHistory starts a history whose clock begins now.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the history's clock: nanoseconds since it began, monotonic.
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// Add records an operation.
func (h *History) Add(o Op) {
	h.mu.Lock()
	h.ops = append(h.ops, o)
	h.mu.Unlock()
}

// Ops returns a copy of the operations recorded so far.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// GroupState is the model's state of one group: what the sender holds and
// its next nonce, and what the recipient holds.
type GroupState struct {
	SenderBalance    uint64
	SenderNonce      uint64
	RecipientBalance uint64
}

// Model returns the porcupine model of the ledger as the workload uses it:
// per group, a transfer applies only with the sender's next nonce and
// enough balance for amount plus fee, and a read returns the account's
// balance (and, for the sender, nonce) as of its linearization point.
// initial[g] is group g's state at genesis.
func Model(initial []GroupState) porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			by := make([][]porcupine.Operation, len(initial))
			for _, o := range history {
				g := o.Input.(Op).Group
				by[g] = append(by[g], o)
			}
			return slices.DeleteFunc(by, func(p []porcupine.Operation) bool { return len(p) == 0 })
		},
		Init: func() any { return groupInit{} },
		Step: func(state, input, _ any) (bool, any) {
			in := input.(Op)
			s, ok := state.(GroupState)
			if !ok {
				s = initial[in.Group] // the first step of a partition
			}
			return step(s, in)
		},
		Equal: func(a, b any) bool { return a == b },
		DescribeOperation: func(input, _ any) string {
			o := input.(Op)
			if o.Kind == OpTransfer {
				return fmt.Sprintf("g%d transfer %d+%d nonce %d", o.Group, o.Amount, o.Fee, o.Nonce)
			}
			who := "sender"
			if o.Role == Recipient {
				who = "recipient"
			}
			return fmt.Sprintf("g%d read %s @%d (node%d) -> %d nonce %d", o.Group, who, o.Height, o.Node, o.Balance, o.Nonce)
		},
		DescribeState: func(state any) string {
			if s, ok := state.(GroupState); ok {
				return fmt.Sprintf("sender %d nonce %d, recipient %d", s.SenderBalance, s.SenderNonce, s.RecipientBalance)
			}
			return "genesis"
		},
	}
}

// groupInit stands for "the group's genesis state" until the first step
// of a partition tells which group it is (porcupine's Init takes no
// argument).
type groupInit struct{}

// step applies one operation to a group's state.
func step(s GroupState, o Op) (bool, any) {
	switch o.Kind {
	case OpTransfer:
		if o.Nonce != s.SenderNonce || s.SenderBalance < o.Amount+o.Fee {
			return false, s
		}
		s.SenderBalance -= o.Amount + o.Fee
		s.SenderNonce++
		s.RecipientBalance += o.Amount
		return true, s
	case OpRead:
		if o.Role == Sender {
			return o.Balance == s.SenderBalance && o.Nonce == s.SenderNonce, s
		}
		return o.Balance == s.RecipientBalance && o.Nonce == 0, s
	}
	return false, s
}

// Check reports whether ops are linearizable under Model(initial), giving
// up after timeout (porcupine.Unknown).
func Check(initial []GroupState, ops []Op, timeout time.Duration) porcupine.CheckResult {
	return porcupine.CheckOperationsTimeout(Model(initial), operations(ops), timeout)
}

// Visualize checks ops again, recording the longest partial
// linearizations, and writes porcupine's HTML view of them to path (for
// a history Check refused).
func Visualize(initial []GroupState, ops []Op, timeout time.Duration, path string) error {
	_, info := porcupine.CheckOperationsVerbose(Model(initial), operations(ops), timeout)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("visualize history: %w", err)
	}
	if err := porcupine.Visualize(Model(initial), info, f); err != nil {
		f.Close()
		return fmt.Errorf("visualize history: %w", err)
	}
	return f.Close()
}

func operations(ops []Op) []porcupine.Operation {
	hist := make([]porcupine.Operation, len(ops))
	for i, o := range ops {
		hist[i] = porcupine.Operation{ClientId: o.Client, Input: o, Call: o.Call, Return: o.Return}
	}
	return hist
}
