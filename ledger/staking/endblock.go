package staking

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ledgerd/ledgerd/crypto"
)

// Infraction is a double sign at Height by the validator of ConsAddr, who
// had Power then; its evidence is committed in the block being executed,
// already verified.
type Infraction struct {
	ConsAddr crypto.Address
	Height   uint64
	Power    uint64
}

// SetMember is one member of the validator set that signed the previous
// block, with its power in that set.
type SetMember struct {
	ConsAddr crypto.Address
	Power    uint64
}

// BlockInfo is what EndBlock needs to know about the block being executed.
type BlockInfo struct {
	Height      uint64       // the block being executed
	LastSet     []SetMember  // the set that signed the previous block, in set order
	Signed      []bool       // Signed[i]: LastSet[i] signed the block's LastCommit
	DoubleSigns []Infraction // evidence committed in this block, already verified
}

// Payout is a matured unbonding entry's balance, owed to Account.
type Payout struct {
	Account crypto.Address
	Amount  uint64
}

// DowntimeDelay is how far before the block that judges it a downtime
// infraction is taken to be: the set delay (a set computed at H signs from
// H+2), as Cosmos's height - ValidatorUpdateDelay - 1.
const DowntimeDelay = 2

// EndBlock runs the block's staking duties, in this order: it slashes,
// jails and tombstones the double signers of info.DoubleSigns; it records
// who signed the previous block and jails (and slashes) validators that
// missed too much of the window; it matures the unbonding entries whose
// completion height has come, and returns what the caller must credit to
// accounts, in maturity-queue order (completion height, delegator,
// validator). Call ActiveSet after it. A rejection (evidence from after
// the block) is found before anything is staged; any other error leaves
// the overlay half-done, to be discarded with the block.
func (s *Staking) EndBlock(info BlockInfo) ([]Payout, error) {
	if s.perr != nil {
		return nil, s.perr
	}
	if len(info.Signed) != len(info.LastSet) {
		return nil, fmt.Errorf("staking: end block %d: %d signed flags for %d set members", info.Height, len(info.Signed), len(info.LastSet))
	}
	for _, inf := range info.DoubleSigns {
		if inf.Height > info.Height {
			return nil, reject("double sign at height %d judged at height %d", inf.Height, info.Height)
		}
	}
	s.height = info.Height
	for _, inf := range info.DoubleSigns {
		if err := s.punishDoubleSign(info.Height, inf); err != nil {
			return nil, err
		}
	}
	for i, m := range info.LastSet {
		if err := s.recordSignature(info.Height, m, info.Signed[i]); err != nil {
			return nil, err
		}
	}
	return s.mature(info.Height)
}

// punishDoubleSign slashes the double signer by SlashFractionDoubleSign of
// its stake at the infraction, jails it for good and tombstones its key,
// the first time; a key already tombstoned, or never seen, is left alone
// (as Cosmos does).
func (s *Staking) punishDoubleSign(height uint64, inf Infraction) error {
	rec, ok, err := s.consRecord(inf.ConsAddr)
	if err != nil || !ok || rec.Tombstoned {
		return err
	}
	rec.Tombstoned = true
	s.ov.set(ConsRecordKey(inf.ConsAddr), rec.Encode())
	v, ok, err := s.validator(rec.Operator)
	if err != nil || !ok {
		return err // gone: nothing left to slash; the key stays refused
	}
	old := v
	if err := s.slash(&v, inf.Height, inf.Power, s.p.SlashFractionDoubleSign, height); err != nil {
		return err
	}
	v.Jailed = true
	v.JailedUntil = math.MaxUint64
	v.Tombstoned = true
	s.putValidator(&old, &v)
	return nil
}

// slash burns fraction of the stake v had at infractionHeight, when its
// power was power: fraction * power * PowerUnit tokens. As Cosmos does, it
// takes first from v's unbonding entries created at or after the
// infraction (their tokens were at stake then) that have not matured, each
// fraction of its initial balance, capped by its balance; the rest comes
// from v's tokens, capped by them. v's shares do not change, so every
// delegator's shares lose the same fraction of their worth. The caller
// writes v.
func (s *Staking) slash(v *Validator, infractionHeight, power uint64, fraction Fraction, now uint64) error {
	amount := fraction.Of(s.p.tokensOfPower(power))
	if amount == 0 {
		return nil
	}
	pool, err := s.pool()
	if err != nil {
		return err
	}
	remaining := amount
	dels, err := s.keys(key(prefixUbdV, v.Operator[:]))
	if err != nil {
		return err
	}
	if plantSlashSkipsUnbonding {
		dels = nil // a bug planted on purpose (plant_simplant.go)
	}
	for _, k := range dels {
		op, del, err := parsePair(k, prefixUbdV)
		if err != nil {
			return err
		}
		u, ok, err := s.unbonding(del, op)
		if err != nil {
			return err
		}
		if !ok {
			return errCorrupt("index entry %q names no unbonding record", k)
		}
		changed := false
		for i := range u.Entries {
			e := &u.Entries[i]
			if e.CreationHeight < infractionHeight || e.CompletionHeight <= now {
				continue // bonded elsewhere at the infraction, or matured
			}
			share := fraction.Of(e.InitialBalance)
			// Cosmos counts the share against the amount even where an
			// earlier slash left less than it: that part was burned then.
			remaining -= min(share, remaining)
			took := min(share, e.Balance)
			if took == 0 {
				continue
			}
			e.Balance -= took
			if pool.Unbonding < took || pool.Burned > math.MaxUint64-took {
				return errCorrupt("pool %+v cannot burn %d unbonding tokens", pool, took)
			}
			pool.Unbonding -= took
			pool.Burned += took
			changed = true
		}
		if changed {
			s.setUnbonding(del, op, &u)
		}
	}
	burn := min(remaining, v.Tokens)
	if pool.Bonded < burn || pool.Burned > math.MaxUint64-burn {
		return errCorrupt("pool %+v cannot burn %d bonded tokens", pool, burn)
	}
	v.Tokens -= burn
	pool.Bonded -= burn
	pool.Burned += burn
	s.setPool(pool)
	return nil
}

// recordSignature records whether m signed the previous block in its
// window of missed bits, and jails it for downtime (Cosmos's rule: more
// than the allowed misses, judged only after a full window since its
// StartHeight). A signature that flips no bit costs one read and no write.
func (s *Staking) recordSignature(height uint64, m SetMember, signed bool) error {
	w := s.p.SignedBlocksWindow
	pos := height % w
	ck := missKey(m.ConsAddr, pos/ChunkBits)
	chunk, _, err := load(s, ck, DecodeMissChunk)
	if err != nil {
		return err
	}
	missed := !signed
	was := chunk.get(pos % ChunkBits)
	if !missed && !was {
		return nil
	}
	info, ok, err := s.signingInfo(m.ConsAddr)
	if err != nil || !ok {
		return err // a consensus address staking does not know: nothing to judge
	}
	if was != missed {
		chunk.set(pos%ChunkBits, missed)
		if chunk.zero() {
			s.ov.del(ck)
		} else {
			s.ov.set(ck, chunk.Encode())
		}
		if missed {
			info.MissedCount++
		} else if info.MissedCount > 0 {
			info.MissedCount--
		}
		s.ov.set(SigningInfoKey(m.ConsAddr), info.Encode())
	}
	if !missed || height <= info.StartHeight+w || info.MissedCount <= s.p.maxMissed() {
		return nil
	}
	rec, ok, err := s.consRecord(m.ConsAddr)
	if err != nil || !ok {
		return err
	}
	v, ok, err := s.validator(rec.Operator)
	if err != nil || !ok || v.Jailed {
		return err
	}
	old := v
	infraction := max(height, DowntimeDelay) - DowntimeDelay
	if err := s.slash(&v, infraction, m.Power, s.p.SlashFractionDowntime, height); err != nil {
		return err
	}
	v.Jailed = true
	v.JailedUntil = height + s.p.DowntimeJailHeights
	s.putValidator(&old, &v)
	return s.resetSigning(m.ConsAddr, height)
}

// mature pays out every unbonding entry whose completion height is at or
// below height, in maturity-queue order, and removes validators left
// empty.
func (s *Staking) mature(height uint64) ([]Payout, error) {
	var due [][]byte
	err := s.ov.iterate([]byte(prefixUbdQ), func(k, _ []byte) error {
		if len(k) < len(prefixUbdQ)+8 || binary.BigEndian.Uint64(k[len(prefixUbdQ):]) > height {
			return errStop
		}
		due = append(due, append([]byte(nil), k...))
		return nil
	})
	if err != nil || len(due) == 0 {
		return nil, err
	}
	pool, err := s.pool()
	if err != nil {
		return nil, err
	}
	var payouts []Payout
	for _, k := range due {
		_, del, op, err := parseQueueKey(k)
		if err != nil {
			return nil, err
		}
		s.ov.del(k)
		u, ok, err := s.unbonding(del, op)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // its entries matured under an earlier queue key
		}
		var amount uint64
		kept := u.Entries[:0]
		for _, e := range u.Entries {
			if e.CompletionHeight > height {
				kept = append(kept, e)
				continue
			}
			if pool.Unbonding < e.Balance || amount > math.MaxUint64-e.Balance {
				return nil, errCorrupt("pool %+v cannot pay %d unbonding tokens", pool, e.Balance)
			}
			pool.Unbonding -= e.Balance
			amount += e.Balance
		}
		u.Entries = kept
		s.setUnbonding(del, op, &u)
		if amount > 0 {
			payouts = append(payouts, Payout{Account: del, Amount: amount})
		}
		s.setPool(pool)
		if len(u.Entries) == 0 {
			if err := s.removeIfEmpty(op); err != nil {
				return nil, err
			}
			if pool, err = s.pool(); err != nil {
				return nil, err
			}
		}
	}
	s.setPool(pool)
	return payouts, nil
}
