package staking

import (
	"encoding/binary"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
)

// Prefix is the prefix of every natural key this package reads or writes.
// The ledger keeps these keys in a flat table (for prefix iteration) and in
// the state tree under SHA-256 of the key.
const Prefix = "stk/"

// The key families. Every multi-part key is fixed-width after its prefix
// (20-byte addresses, 8-byte big-endian heights), so its parts split
// without separators and prefix iteration yields them in a useful order.
const (
	prefixVal  = Prefix + "val/"  // <operator> -> Validator
	prefixCons = Prefix + "cons/" // <cons addr> -> ConsRecord (kept for good)
	prefixPow  = Prefix + "pow/"  // <^power 8B><cons addr> -> PowerRecord (eligible validators)
	prefixDel  = Prefix + "del/"  // <delegator><operator> -> Delegation
	prefixDelV = Prefix + "delv/" // <operator><delegator> -> marker
	prefixUbd  = Prefix + "ubd/"  // <delegator><operator> -> Unbonding
	prefixUbdQ = Prefix + "ubdq/" // <completion 8B><delegator><operator> -> marker
	prefixUbdV = Prefix + "ubdv/" // <operator><delegator> -> marker
	prefixSign = Prefix + "sign/" // <cons addr> -> SigningInfo
	prefixMiss = Prefix + "miss/" // <cons addr><chunk 8B> -> MissChunk
)

// PoolKey is the key of the Pool record.
var PoolKey = []byte(Prefix + "pool")

// ActiveKey is the key of the active set last computed.
var ActiveKey = []byte(Prefix + "active")

const addrLen = crypto.AddressSize

func key(prefix string, parts ...[]byte) []byte {
	n := len(prefix)
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	k = append(k, prefix...)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// ValidatorKey is the key of the validator operated by op.
func ValidatorKey(op crypto.Address) []byte { return key(prefixVal, op[:]) }

// ConsRecordKey is the key of the record naming the validator of a consensus
// address.
func ConsRecordKey(cons crypto.Address) []byte { return key(prefixCons, cons[:]) }

// DelegationKey is the key of del's delegation to the validator op.
func DelegationKey(del, op crypto.Address) []byte { return key(prefixDel, del[:], op[:]) }

// UnbondingKey is the key of del's unbonding entries from the validator op.
func UnbondingKey(del, op crypto.Address) []byte { return key(prefixUbd, del[:], op[:]) }

// SigningInfoKey is the key of a consensus address's signing record.
func SigningInfoKey(cons crypto.Address) []byte { return key(prefixSign, cons[:]) }

func powerKey(power uint64, cons crypto.Address) []byte {
	return key(prefixPow, be64(^power), cons[:])
}
func delByValKey(op, del crypto.Address) []byte { return key(prefixDelV, op[:], del[:]) }
func queueKey(completion uint64, del, op crypto.Address) []byte {
	return key(prefixUbdQ, be64(completion), del[:], op[:])
}
func ubdByValKey(op, del crypto.Address) []byte        { return key(prefixUbdV, op[:], del[:]) }
func missKey(cons crypto.Address, chunk uint64) []byte { return key(prefixMiss, cons[:], be64(chunk)) }
func missPrefix(cons crypto.Address) []byte            { return key(prefixMiss, cons[:]) }

// splitAddrs splits the part of k after prefix into n addresses, after
// skip other bytes; it fails unless the lengths match exactly.
func splitAddrs(k []byte, prefix string, skip, n int) ([]crypto.Address, []byte, error) {
	if len(k) != len(prefix)+skip+n*addrLen || string(k[:len(prefix)]) != prefix {
		return nil, nil, fmt.Errorf("staking: malformed key %q under %s", k, prefix)
	}
	rest := k[len(prefix):]
	head := rest[:skip]
	rest = rest[skip:]
	out := make([]crypto.Address, n)
	for i := range out {
		copy(out[i][:], rest[i*addrLen:])
	}
	return out, head, nil
}

// parsePowerKey returns the power and consensus address of a power key.
func parsePowerKey(k []byte) (uint64, crypto.Address, error) {
	a, head, err := splitAddrs(k, prefixPow, 8, 1)
	if err != nil {
		return 0, crypto.Address{}, err
	}
	return ^binary.BigEndian.Uint64(head), a[0], nil
}

// parseQueueKey returns the completion height, delegator and operator of a
// maturity-queue key.
func parseQueueKey(k []byte) (uint64, crypto.Address, crypto.Address, error) {
	a, head, err := splitAddrs(k, prefixUbdQ, 8, 2)
	if err != nil {
		return 0, crypto.Address{}, crypto.Address{}, err
	}
	return binary.BigEndian.Uint64(head), a[0], a[1], nil
}

// parsePair returns the two addresses of a key of prefix followed by two
// addresses.
func parsePair(k []byte, prefix string) (crypto.Address, crypto.Address, error) {
	a, _, err := splitAddrs(k, prefix, 0, 2)
	if err != nil {
		return crypto.Address{}, crypto.Address{}, err
	}
	return a[0], a[1], nil
}

// parseSingle returns the address of a key of prefix followed by one
// address.
func parseSingle(k []byte, prefix string) (crypto.Address, error) {
	a, _, err := splitAddrs(k, prefix, 0, 1)
	if err != nil {
		return crypto.Address{}, err
	}
	return a[0], nil
}
