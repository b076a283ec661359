package statetree

import (
	"context"

	"github.com/ledgerd/ledgerd/ledger/kv"
)

// benchNodePrefix: nodes of a tree under "s/" live under "s/N" (keyed by
// version and path).
var benchNodePrefix = []byte("s/N")

func init() {
	benchPrune = func(tr *Tree, db kv.DB, keepFrom uint64) error {
		_, err := tr.Prune(context.Background(), db, keepFrom, 10_000)
		return err
	}
}
