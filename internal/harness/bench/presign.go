package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// Transfer states.
const (
	stateUnsent    uint32 = iota // not (yet) admitted
	stateAdmitted                // a node answered with its hash
	stateAbandoned               // refused for good (a reason that retrying cannot fix)
)

// transfer is one pre-signed transfer and what happened to it. Times are
// nanoseconds since the load started.
type transfer struct {
	enc   []byte // canonical encoding, sent as hex
	hash  crypto.Hash
	state atomic.Uint32
	// firstTry is when it was first sent; sent is when the request that
	// was admitted started; committed is when the head of its block arrived
	// (0: not yet).
	firstTry  atomic.Int64
	sent      atomic.Int64
	committed atomic.Int64
	// slot is set while it holds one of the closed loop's in-flight slots.
	slot atomic.Bool
}

// plan is every pre-signed transfer: account a's k-th transfer (nonce
// start[a]+k) is txs[a*perAcct+k].
type plan struct {
	txs     []transfer
	perAcct int
	byHash  map[crypto.Hash]int32
}

// presign signs perAcct transfers per account, in nonce order from
// nonces[a], each moving 1 unit (fee 1) to the next account (or, with a
// single account, to a fixed address), on all CPUs.
func presign(ctx context.Context, chainID string, keys []crypto.PrivKey, nonces []uint64, perAcct int) (*plan, error) {
	p := &plan{txs: make([]transfer, len(keys)*perAcct), perAcct: perAcct}
	addrs := make([]crypto.Address, len(keys))
	for i, k := range keys {
		addrs[i] = k.PubKey().Address()
	}
	var sink crypto.Address
	sh := crypto.Sum([]byte("ledgerd bench sink"))
	copy(sink[:], sh[:])
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				a := int(next.Add(1) - 1)
				if a >= len(keys) || ctx.Err() != nil {
					return
				}
				to := sink
				if len(keys) > 1 {
					to = addrs[(a+1)%len(keys)]
				}
				for k := 0; k < perAcct; k++ {
					tx := &ledger.Tx{ChainID: chainID, To: to, Amount: 1, Fee: 1, Nonce: nonces[a] + uint64(k)}
					tx.Sign(keys[a])
					t := &p.txs[a*perAcct+k]
					t.enc = tx.Encode()
					t.hash = crypto.Sum(t.enc)
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pre-sign: %w", err)
	}
	p.byHash = make(map[crypto.Hash]int32, len(p.txs))
	for i := range p.txs {
		p.byHash[p.txs[i].hash] = int32(i)
	}
	return p, nil
}

// pendingNonces asks, for each account, the node it will send to for the
// nonce to sign with next.
func pendingNonces(ctx context.Context, keys []crypto.PrivKey, clientOf func(acct int) *client.Client) ([]uint64, error) {
	nonces := make([]uint64, len(keys))
	errs := make([]error, len(keys))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				a := int(next.Add(1) - 1)
				if a >= len(keys) {
					return
				}
				acc, err := clientOf(a).Account(ctx, keys[a].PubKey().Address())
				if err != nil {
					errs[a] = fmt.Errorf("nonce of account %d: %w", a, err)
					continue
				}
				nonces[a] = uint64(acc.Nonce)
				if acc.PendingNonce != nil {
					nonces[a] = uint64(*acc.PendingNonce)
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return nonces, nil
}
