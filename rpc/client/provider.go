package client

import (
	"context"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/light"
	"github.com/ledgerd/ledgerd/rpc/api"
)

// provider serves the light client (light.Provider) from one client's
// JSON-RPC answers: ledger_getCommit for headers and commits,
// ledger_validators for sets.
type provider struct{ c *Client }

func (p provider) SignedHeader(ctx context.Context, h uint64) (*ledger.Header, *ledger.Commit, error) {
	cm, err := p.c.Commit(ctx, api.At(h))
	if err != nil {
		return nil, nil, err
	}
	return cm.Header, cm.Commit, nil
}

// ValidatorSet rebuilds the set from its members, checking that each
// member's address is its public key's (the set's hash covers the keys;
// the verifier checks that hash).
func (p provider) ValidatorSet(ctx context.Context, h uint64) (*ledger.ValidatorSet, error) {
	out, err := p.c.Validators(ctx, api.At(h))
	if err != nil {
		return nil, err
	}
	if uint64(out.Height) != h {
		return nil, light.Errorf("asked for the validator set of height %d, got height %d's", h, out.Height)
	}
	if len(out.Validators) > ledger.MaxValidators {
		return nil, light.Errorf("validator set of height %d has %d members, at most %d", h, len(out.Validators), ledger.MaxValidators)
	}
	vals := make([]ledger.Validator, len(out.Validators))
	for i, m := range out.Validators {
		if m.Address != m.PubKey.Address() {
			return nil, light.Errorf("validator set of height %d: member %s has public key %s, whose address is %s", h, m.Address, m.PubKey, m.PubKey.Address())
		}
		vals[i] = ledger.Validator{PubKey: m.PubKey, Power: uint64(m.Power), Name: m.Name}
	}
	vs, err := ledger.NewValidatorSet(vals)
	if err != nil {
		return nil, light.Errorf("validator set of height %d: %v", h, err)
	}
	return vs, nil
}
