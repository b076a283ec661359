package store

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger/kv"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
	"github.com/ledgerd/ledgerd/wire"
)

func TestLocationEncoding(t *testing.T) {
	b := encodeLocation(TxLocation{Height: 0x0102030405060708, Index: 0x0a0b0c0d})
	if string(b) != "\x01\x02\x03\x04\x05\x06\x07\x08\x0a\x0b\x0c\x0d" {
		t.Fatalf("encodeLocation = %x", b)
	}
	if l, err := decodeLocation(b); err != nil || l != (TxLocation{Height: 0x0102030405060708, Index: 0x0a0b0c0d}) {
		t.Fatalf("decodeLocation = %+v, %v", l, err)
	}
	if _, err := decodeLocation(b[:11]); !errors.Is(err, wire.ErrTruncated) {
		t.Fatalf("11 bytes: err = %v, want ErrTruncated", err)
	}
	if _, err := decodeLocation(append(b, 0)); !errors.Is(err, wire.ErrTrailingBytes) {
		t.Fatalf("13 bytes: err = %v, want ErrTrailingBytes", err)
	}
}

// A damaged index entry is reported as an error; it must not panic the
// node (an RPC call reads these).
func TestCorruptIndexEntriesAreErrors(t *testing.T) {
	c := ledgertest.NewChain(1, 1, 1000)
	db := kv.NewMem()
	s, _ := newStore(t, db, c)
	id := crypto.Sum([]byte("some block"))
	txh := crypto.Sum([]byte("some tx"))
	addr := c.Accounts[0].PubKey().Address()
	for _, n := range []int{0, 1, 7, 9, 11, 13} {
		bad := bytes.Repeat([]byte{1}, n) // sorts after the all-zero start of a page
		b := db.NewBatch()
		b.Put(append(prefixHash, id[:]...), bad)
		b.Put(append(prefixTx, txh[:]...), bad)
		b.Put(acctTxKey(addr, bad), txh[:])
		if err := db.Write(b, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.BlockByHash(id); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("hash index entry of %d bytes: err = %v, want a decode error", n, err)
		}
		if _, err := s.TxLocation(txh); err == nil {
			t.Errorf("tx index entry of %d bytes accepted", n)
		}
		if _, _, err := s.AccountTxs(addr, TxLocation{}, 10); n > 0 && err == nil {
			t.Errorf("account tx key ending in %d location bytes accepted", n)
		}
		b = db.NewBatch()
		b.Delete(acctTxKey(addr, bad))
		if err := db.Write(b, false); err != nil {
			t.Fatal(err)
		}
	}
}
