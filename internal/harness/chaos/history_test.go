package chaos

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Histories over two groups, each sender starting with 1000.
var genesisState = []GroupState{{SenderBalance: 1000}, {SenderBalance: 1000}}

func transfer(g int, nonce, amount uint64, call, ret int64) Op {
	return Op{Kind: OpTransfer, Group: g, Client: g, Nonce: nonce, Amount: amount, Fee: 1, Call: call, Return: ret}
}

func readSender(g int, balance, nonce uint64, call, ret int64) Op {
	return Op{Kind: OpRead, Group: g, Client: 10, Role: Sender, Balance: balance, Nonce: nonce, Call: call, Return: ret}
}

func readRecipient(g int, balance uint64, call, ret int64) Op {
	return Op{Kind: OpRead, Group: g, Client: 11, Role: Recipient, Balance: balance, Call: call, Return: ret}
}

func TestHistoryCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"reads see acknowledged transfers", []Op{
			transfer(0, 0, 10, 0, 10),
			readSender(0, 989, 1, 20, 30),
			readRecipient(0, 10, 20, 30),
			transfer(0, 1, 5, 40, 50),
			readRecipient(0, 15, 60, 70),
		}, porcupine.Ok},
		{"a read concurrent with a transfer may see either state", []Op{
			transfer(0, 0, 10, 0, 100),
			readRecipient(0, 0, 10, 20),
			readRecipient(0, 10, 30, 40),
		}, porcupine.Ok},
		{"a read after an acknowledgement must not see the old balance", []Op{
			transfer(0, 0, 10, 0, 10),
			readRecipient(0, 0, 20, 30),
		}, porcupine.Illegal},
		{"a read must not see a transfer before it was submitted", []Op{
			readRecipient(0, 10, 0, 5),
			transfer(0, 0, 10, 10, 20),
		}, porcupine.Illegal},
		{"reads must not go back in time", []Op{
			transfer(0, 0, 10, 0, 100),
			readRecipient(0, 10, 10, 20),
			readRecipient(0, 0, 30, 40),
		}, porcupine.Illegal},
		{"a transfer applied twice is caught", []Op{
			transfer(0, 0, 10, 0, 10),
			readSender(0, 978, 2, 20, 30),
		}, porcupine.Illegal},
		{"an acknowledged transfer that vanished is caught", []Op{
			transfer(0, 0, 10, 0, 10),
			transfer(0, 1, 10, 20, 30),
			readRecipient(0, 10, 40, 50),
		}, porcupine.Illegal},
		{"the fee is paid by the sender and goes nowhere in the group", []Op{
			transfer(0, 0, 10, 0, 10),
			readSender(0, 990, 1, 20, 30),
		}, porcupine.Illegal},
		{"a transfer whose outcome is unknown may have happened", []Op{
			transfer(0, 0, 10, 0, Pending),
			readRecipient(0, 10, 20, 30),
		}, porcupine.Ok},
		{"or not", []Op{
			transfer(0, 0, 10, 0, Pending),
			readRecipient(0, 0, 20, 30),
		}, porcupine.Ok},
		{"but not both ways", []Op{
			transfer(0, 0, 10, 0, Pending),
			readRecipient(0, 10, 20, 30),
			readRecipient(0, 0, 40, 50),
		}, porcupine.Illegal},
		{"nonces apply in order", []Op{
			transfer(0, 1, 10, 0, 10),
		}, porcupine.Illegal},
		{"an overdraft cannot commit", []Op{
			transfer(0, 0, 1000, 0, 10),
		}, porcupine.Illegal},
		{"groups are independent", []Op{
			transfer(0, 0, 10, 0, 10),
			transfer(1, 0, 20, 0, 10),
			readRecipient(1, 20, 20, 30),
			readRecipient(0, 10, 20, 30),
		}, porcupine.Ok},
		{"a violation in one group fails the whole history", []Op{
			transfer(0, 0, 10, 0, 10),
			transfer(1, 0, 20, 0, 10),
			readRecipient(0, 10, 20, 30),
			readRecipient(1, 10, 20, 30),
		}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Check(genesisState, tc.ops, 10*time.Second); got != tc.want {
				t.Fatalf("Check = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestVisualizeWritesAFile(t *testing.T) {
	path := t.TempDir() + "/history.html"
	ops := []Op{transfer(0, 0, 10, 0, 10), readRecipient(0, 0, 20, 30)}
	if err := Visualize(genesisState, ops, 10*time.Second, path); err != nil {
		t.Fatal(err)
	}
}
