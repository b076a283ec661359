package snapshot

// INTERIM, until ledger.LeafKeyOf lands with branch feat/tree: leafKeyOf
// stands in for it. At that merge this file goes and the callers call
// ledger.LeafKeyOf.

import (
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

func leafKeyOf(meta []byte) ([32]byte, error) {
	if len(meta) == 0 || len(meta) > MaxMetaSize {
		return [32]byte{}, fmt.Errorf("leaf meta of %d bytes", len(meta))
	}
	switch body := meta[1:]; meta[0] {
	case 'a':
		if len(body) != crypto.AddressSize {
			return [32]byte{}, fmt.Errorf("account meta of %d bytes", len(body))
		}
		return ledger.AccountKey(crypto.Address(body)), nil
	case 'k':
		return ledger.RecordKey(body), nil
	case 'e':
		if len(body) != 32 {
			return [32]byte{}, fmt.Errorf("evidence meta of %d bytes", len(body))
		}
		return [32]byte(body), nil
	}
	return [32]byte{}, fmt.Errorf("unknown leaf meta kind %q", meta[0])
}
