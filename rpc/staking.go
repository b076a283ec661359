package rpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger/staking"
	"github.com/ledgerd/ledgerd/ledger/store"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// The staking queries. Those "at a height" (the pool, one validator) read
// the versioned state commitment, so any height answers and proofs come
// with it; the listings read the latest state's flat index (prefix
// iteration), each page of one height (ChainReader.ReadLatest).

// stateHeight turns a height parameter into the height of a committed
// state: 0 (genesis) to the latest.
func (s *Server) stateHeight(hp api.Height) (uint64, error) {
	latest := s.b.Chain().Height()
	if hp.Latest {
		return latest, nil
	}
	if hp.Value > latest {
		return 0, api.Errorf(api.CodeNotFound, "height %d is above the latest committed height %d", hp.Value, latest)
	}
	return hp.Value, nil
}

// records reads the records under keys after height h, with a proof of
// each against the app hash of that state when prove is set.
func (s *Server) records(h uint64, prove bool, proof *api.StateProof, keys ...[]byte) ([][]byte, error) {
	chain := s.b.Chain()
	out := make([][]byte, len(keys))
	for i, k := range keys {
		if !prove {
			v, err := chain.Record(h, k)
			if err != nil {
				return nil, fmt.Errorf("record %q at height %d: %w", k, h, err)
			}
			out[i] = v
			continue
		}
		v, p, err := chain.RecordProof(h, k)
		if err != nil {
			return nil, err
		}
		out[i] = v
		proof.Records = append(proof.Records, api.RecordProof{Key: k, Value: v, Proof: p})
	}
	return out, nil
}

// newStateProof starts the proof of records after height h.
func (s *Server) newStateProof(h uint64, prove bool) (*api.StateProof, error) {
	if !prove {
		return nil, nil
	}
	ah, err := s.b.Chain().AppHash(h)
	if err != nil {
		return nil, err
	}
	return &api.StateProof{AppHash: ah, HeaderHeight: api.Uint64(h + 1), Records: []api.RecordProof{}}, nil
}

func (s *Server) stakingPool(ctx context.Context, c *call) (any, error) {
	hp := api.Latest
	var prove bool
	if err := c.bind(&hp, &prove); err != nil {
		return nil, err
	}
	h, err := s.stateHeight(hp)
	if err != nil {
		return nil, err
	}
	proof, err := s.newStateProof(h, prove)
	if err != nil {
		return nil, err
	}
	vals, err := s.records(h, prove, proof, staking.PoolKey)
	if err != nil {
		return nil, err
	}
	var pool staking.Pool
	if vals[0] != nil {
		if pool, err = staking.DecodePool(vals[0]); err != nil {
			return nil, fmt.Errorf("pool at height %d: %w", h, err)
		}
	}
	return &api.StakingPool{Height: api.Uint64(h), Bonded: api.Uint64(pool.Bonded), Unbonding: api.Uint64(pool.Unbonding),
		Burned: api.Uint64(pool.Burned), Candidates: pool.Candidates, Proof: proof}, nil
}

func (s *Server) getValidator(ctx context.Context, c *call) (any, error) {
	var op crypto.Address
	hp := api.Latest
	var prove bool
	if err := c.bind(&op, &hp, &prove); err != nil {
		return nil, err
	}
	h, err := s.stateHeight(hp)
	if err != nil {
		return nil, err
	}
	proof, err := s.newStateProof(h, prove)
	if err != nil {
		return nil, err
	}
	raw, err := s.records(h, prove, proof, staking.ValidatorKey(op))
	if err != nil {
		return nil, err
	}
	if raw[0] == nil {
		return nil, api.Errorf(api.CodeNotFound, "no validator is operated by %s after height %d", op, h)
	}
	v, err := staking.DecodeValidator(raw[0])
	if err != nil {
		return nil, fmt.Errorf("validator %s at height %d: %w", op, h, err)
	}
	cons := v.ConsAddr()
	raw, err = s.records(h, prove, proof, staking.SigningInfoKey(cons), staking.ActiveKey)
	if err != nil {
		return nil, err
	}
	params := s.b.Genesis().Staking
	out := &api.ValidatorStatus{Height: api.Uint64(h), Proof: proof}
	if raw[0] != nil {
		si, err := staking.DecodeSigningInfo(raw[0])
		if err != nil {
			return nil, fmt.Errorf("signing info of %s at height %d: %w", cons, h, err)
		}
		out.Signing = &api.SigningRecord{WindowStart: api.Uint64(si.StartHeight), MissedInWindow: api.Uint64(si.MissedCount),
			Window: api.Uint64(params.SignedBlocksWindow)}
	}
	active := false
	if raw[1] != nil {
		members, err := staking.DecodeActive(raw[1])
		if err != nil {
			return nil, fmt.Errorf("active set at height %d: %w", h, err)
		}
		for _, m := range members {
			active = active || m.Operator == op
		}
	}
	out.StakingValidator = api.DescribeValidator(v, params.PowerUnit, active)
	vs, err := s.b.ValidatorsAt(h + 1)
	if err != nil {
		return nil, fmt.Errorf("validator set of height %d: %w", h+1, err)
	}
	_, out.Validating = vs.ByAddress(cons)
	return out, nil
}

// stakingLimit checks a page size parameter of the staking listings.
func stakingLimit(limit int) error {
	if limit < 1 || limit > api.MaxStakingPage {
		return api.Errorf(api.CodeInvalidParams, `invalid params: parameter "limit": want 1 to %d, got %d`, api.MaxStakingPage, limit)
	}
	return nil
}

// readLatest runs fn on the latest state's records, each read of one
// height.
func (s *Server) readLatest(fn func(h uint64, q staking.Query) error) error {
	err := s.b.Chain().ReadLatest(func(h uint64, r store.Records) error { return fn(h, staking.NewQuery(r)) })
	if errors.Is(err, store.ErrBusy) {
		return api.Errorf(api.CodeUnavailable, "%v; retry", err)
	}
	return err
}

func (s *Server) validatorsByPower(ctx context.Context, c *call) (any, error) {
	var from api.HexBytes
	limit := api.MaxStakingPage
	if err := c.bind(&from, &limit); err != nil {
		return nil, err
	}
	if err := stakingLimit(limit); err != nil {
		return nil, err
	}
	if len(from) == 0 {
		from = nil
	}
	params := s.b.Genesis().Staking
	out := &api.ValidatorsByPower{}
	err := s.readLatest(func(h uint64, q staking.Query) error {
		vals, next, err := q.ValidatorsByPower(params.PowerUnit, from, limit)
		if err != nil {
			return err
		}
		members, err := q.Active()
		if err != nil {
			return err
		}
		active := make(map[crypto.Address]bool, len(members))
		for _, m := range members {
			active[m.Operator] = true
		}
		out.Height, out.Next = api.Uint64(h), next
		out.Validators = make([]api.StakingValidator, len(vals))
		for i, v := range vals {
			out.Validators[i] = api.DescribeValidator(v, params.PowerUnit, active[v.Operator])
		}
		return nil
	})
	if errors.Is(err, staking.ErrBadPosition) {
		return nil, api.Errorf(api.CodeInvalidParams, `invalid params: parameter "from": not the "next" of an earlier page`)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Server) delegationsByDelegator(ctx context.Context, c *call) (any, error) {
	return s.delegations(c, func(q staking.Query, a, after crypto.Address, limit int) ([]staking.DelegationInfo, bool, error) {
		return q.DelegationsByDelegator(a, after, limit)
	}, func(d staking.DelegationInfo) crypto.Address { return d.Operator })
}

func (s *Server) delegationsByValidator(ctx context.Context, c *call) (any, error) {
	return s.delegations(c, func(q staking.Query, a, after crypto.Address, limit int) ([]staking.DelegationInfo, bool, error) {
		return q.DelegationsByValidator(a, after, limit)
	}, func(d staking.DelegationInfo) crypto.Address { return d.Delegator })
}

// delegations answers one page of a delegation listing: list reads it,
// cursor is the address a page is ordered by.
func (s *Server) delegations(c *call, list func(q staking.Query, a, after crypto.Address, limit int) ([]staking.DelegationInfo, bool, error),
	cursor func(staking.DelegationInfo) crypto.Address) (any, error) {
	var a, after crypto.Address
	limit := api.MaxStakingPage
	if err := c.bind(&a, &after, &limit); err != nil {
		return nil, err
	}
	if err := stakingLimit(limit); err != nil {
		return nil, err
	}
	out := &api.Delegations{}
	err := s.readLatest(func(h uint64, q staking.Query) error {
		ds, more, err := list(q, a, after, limit)
		if err != nil {
			return err
		}
		out.Height, out.NextAfter = api.Uint64(h), nil
		out.Delegations = make([]api.Delegation, len(ds))
		for i, d := range ds {
			out.Delegations[i] = api.Delegation{Delegator: d.Delegator, Operator: d.Operator, Shares: api.Uint64(d.Shares), Tokens: api.Uint64(d.Tokens)}
		}
		if more && len(ds) > 0 {
			next := cursor(ds[len(ds)-1])
			out.NextAfter = &next
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Server) getUnbondings(ctx context.Context, c *call) (any, error) {
	var del, after crypto.Address
	limit := api.MaxStakingPage
	if err := c.bind(&del, &after, &limit); err != nil {
		return nil, err
	}
	if err := stakingLimit(limit); err != nil {
		return nil, err
	}
	out := &api.Unbondings{}
	err := s.readLatest(func(h uint64, q staking.Query) error {
		us, more, err := q.Unbondings(del, after, limit)
		if err != nil {
			return err
		}
		out.Height, out.NextAfter = api.Uint64(h), nil
		out.Unbondings = make([]api.Unbonding, len(us))
		for i, u := range us {
			entries := make([]api.UnbondingEntry, len(u.Entries))
			for j, e := range u.Entries {
				entries[j] = api.UnbondingEntry{CreationHeight: api.Uint64(e.CreationHeight), CompletionHeight: api.Uint64(e.CompletionHeight),
					InitialBalance: api.Uint64(e.InitialBalance), Balance: api.Uint64(e.Balance)}
			}
			out.Unbondings[i] = api.Unbonding{Delegator: u.Delegator, Operator: u.Operator, Entries: entries}
		}
		if more && len(us) > 0 {
			next := us[len(us)-1].Operator
			out.NextAfter = &next
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
