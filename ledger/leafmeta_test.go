package ledger_test

import (
	"bytes"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
)

// TestLeafKeyOf: each meta maps to the key its leaf sits under, and
// anything else is refused.
func TestLeafKeyOf(t *testing.T) {
	addr := crypto.Address{1, 2, 3}
	ev := crypto.Sum([]byte("evidence"))
	good := []struct {
		name string
		meta []byte
		want [32]byte
	}{
		{"account", ledger.AccountMeta(addr), ledger.AccountKey(addr)},
		{"record", ledger.RecordMeta([]byte("val/xyz")), ledger.RecordKey([]byte("val/xyz"))},
		{"longest record", ledger.RecordMeta(bytes.Repeat([]byte{7}, ledger.MaxLeafMeta-1)), ledger.RecordKey(bytes.Repeat([]byte{7}, ledger.MaxLeafMeta-1))},
		{"evidence", ledger.EvidenceMeta(ev), ev},
	}
	for _, tc := range good {
		if got, err := ledger.LeafKeyOf(tc.meta); err != nil || got != tc.want {
			t.Errorf("%s: LeafKeyOf = %x, %v; want %x", tc.name, got, err, tc.want)
		}
	}
	bad := map[string][]byte{
		"empty":              nil,
		"unknown kind":       append([]byte{'z'}, addr[:]...),
		"short address":      ledger.AccountMeta(addr)[:crypto.AddressSize],
		"long address":       append(ledger.AccountMeta(addr), 0),
		"empty record key":   {ledger.MetaRecord},
		"record over bound":  ledger.RecordMeta(bytes.Repeat([]byte{7}, ledger.MaxLeafMeta)),
		"short evidence key": ledger.EvidenceMeta(ev)[:32],
	}
	for name, meta := range bad {
		if got, err := ledger.LeafKeyOf(meta); err == nil {
			t.Errorf("%s: LeafKeyOf(%x) = %x, want an error", name, meta, got)
		}
	}
}

// FuzzLeafKeyOf: LeafKeyOf never panics, and whatever it accepts is the
// meta that the matching builder makes, mapping to the builder's key.
func FuzzLeafKeyOf(f *testing.F) {
	f.Add(ledger.AccountMeta(crypto.Address{9}))
	f.Add(ledger.RecordMeta([]byte("k")))
	f.Add(ledger.EvidenceMeta(crypto.Hash{5}))
	f.Add([]byte{})
	f.Add([]byte{'a'})
	f.Fuzz(func(t *testing.T, meta []byte) {
		key, err := ledger.LeafKeyOf(meta)
		if err != nil {
			return
		}
		if len(meta) > ledger.MaxLeafMeta {
			t.Fatalf("accepted %d bytes of meta", len(meta))
		}
		var rebuilt []byte
		var want [32]byte
		switch meta[0] {
		case ledger.MetaAccount:
			addr := crypto.Address(meta[1:])
			rebuilt, want = ledger.AccountMeta(addr), ledger.AccountKey(addr)
		case ledger.MetaRecord:
			rebuilt, want = ledger.RecordMeta(meta[1:]), ledger.RecordKey(meta[1:])
		case ledger.MetaEvidence:
			rebuilt, want = ledger.EvidenceMeta(crypto.Hash(meta[1:])), [32]byte(meta[1:])
		default:
			t.Fatalf("accepted kind %#x", meta[0])
		}
		if !bytes.Equal(rebuilt, meta) || key != want {
			t.Fatalf("meta %x: key %x, builder gives %x and %x", meta, key, rebuilt, want)
		}
	})
}
