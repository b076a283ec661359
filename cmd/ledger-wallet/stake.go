package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/staking"
	"github.com/ledgerd/ledgerd/privval"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/wallet"
)

const stakeUsage = "usage: ledger-wallet stake create-validator|delegate|undelegate|unjail|validator|validators|delegations ... (global flags anywhere)"

func runStake(e *env, args []string) error {
	sub := map[string]func(*env, []string) error{
		"create-validator": stakeCreateValidator, "delegate": stakeDelegate, "undelegate": stakeUndelegate,
		"unjail": stakeUnjail, "validator": stakeValidator, "validators": stakeValidators, "delegations": stakeDelegations,
	}
	word, rest, err := commandWord(args)
	if err != nil {
		return err
	}
	if word == "" || word == "help" {
		return errors.New(stakeUsage)
	}
	f, ok := sub[word]
	if !ok {
		return fmt.Errorf("unknown stake command %q: want create-validator, delegate, undelegate, unjail, validator, validators or delegations", word)
	}
	return f(e, rest)
}

// stakeTxFlags are the flags every staking transaction takes.
type stakeTxFlags struct {
	from, fee   *string
	wait        *bool
	waitTimeout *time.Duration
}

func addStakeTxFlags(fs *flag.FlagSet) stakeTxFlags {
	return stakeTxFlags{
		from:        fs.String("from", "", "name of the signing key (the delegator, or the validator's operator)"),
		fee:         fs.String("fee", "", "fee (default: the node's suggestion)"),
		wait:        fs.Bool("wait", false, "wait until the transaction commits, and fail if the staking rules refused it"),
		waitTimeout: fs.Duration("wait-timeout", 0, "longest wait for the commit with --wait (default: the node's)"),
	}
}

// parseAmount reads a positive whole number of tokens.
func parseAmount(flag, s string) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("--%s N is required", flag)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("--%s %q: want a positive whole number", flag, s)
	}
	return v, nil
}

// stakeOut is what a staking transaction command prints.
type stakeOut struct {
	Hash   crypto.Hash   `json:"hash"`
	Kind   ledger.TxKind `json:"kind"`
	Nonce  api.Uint64    `json:"nonce"`
	Status api.TxStatus  `json:"status"`
	Height *api.Uint64   `json:"height,omitempty"`
	Index  *uint32       `json:"index,omitempty"`
	// Failed (with --wait): committed, but the staking rules refused it;
	// Error says why. The fee was paid and the nonce used.
	Failed bool   `json:"failed,omitempty"`
	Error  string `json:"error,omitempty"`
}

// errTxFailed is returned when a staking transaction committed as failed.
var errTxFailed = errors.New("committed, but the staking rules refused it (the fee was paid, the nonce used)")

// sendStake signs and sends tmpl from the key --from, waits for it with
// --wait, and prints the outcome. A transaction that committed as failed
// prints its reason and returns an error.
func (e *env) sendStake(f stakeTxFlags, tmpl ledger.Tx) error {
	if *f.from == "" {
		return errors.New("--from NAME is required")
	}
	ks, err := e.keystore()
	if err != nil {
		return err
	}
	if _, err := ks.Info(*f.from); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	if *f.fee != "" {
		if tmpl.Fee, err = strconv.ParseUint(*f.fee, 10, 64); err != nil {
			return fmt.Errorf("--fee %q: want a whole number", *f.fee)
		}
	} else {
		sf, err := c.SuggestFee(e.ctx)
		if err != nil {
			return fmt.Errorf("fee suggestion: %w", err)
		}
		tmpl.Fee = uint64(sf.Fee)
	}
	st, err := c.Status(e.ctx)
	if err != nil {
		return err
	}
	pass, err := e.passphrase(fmt.Sprintf("Passphrase of %s: ", *f.from), false)
	if err != nil {
		return err
	}
	key, err := ks.Key(*f.from, pass)
	if err != nil {
		return err
	}
	tx, err := wallet.NewSender(c, key, st.ChainID).SendTx(e.ctx, tmpl)
	if err != nil {
		return err
	}
	out := stakeOut{Hash: tx.Hash(), Kind: tx.Kind, Nonce: api.Uint64(tx.Nonce), Status: api.TxPending}
	if *f.wait {
		r, err := wallet.Wait(e.ctx, c, tx, *f.waitTimeout)
		if err != nil {
			e.printStake(out)
			return fmt.Errorf("waiting for %s: %w", tx.Hash(), err)
		}
		out.Status, out.Height, out.Index, out.Failed = r.Status, r.Height, r.Index, r.Failed
		if r.Receipt != nil {
			out.Error = r.Receipt.Error
		}
	}
	if err := e.printStake(out); err != nil {
		return err
	}
	if out.Failed {
		return fmt.Errorf("%s %s: %w: %s", out.Kind, out.Hash, errTxFailed, out.Error)
	}
	return nil
}

func (e *env) printStake(o stakeOut) error {
	return e.print(o, func(w io.Writer) {
		fmt.Fprintf(w, "%s  %s  nonce %d  %s", o.Hash, o.Kind, o.Nonce, o.Status)
		if o.Height != nil {
			fmt.Fprintf(w, " at height %d", *o.Height)
		}
		if o.Failed {
			fmt.Fprintf(w, ", FAILED: %s", o.Error)
		}
		fmt.Fprintln(w)
	})
}

func stakeCreateValidator(e *env, args []string) error {
	fs := e.flags("stake create-validator")
	f := addStakeTxFlags(fs)
	consKey := fs.String("cons-key", "", "the validator's consensus public key: 64 hex digits, or the path of a priv_validator_key.json (its public key is read)")
	moniker := fs.String("moniker", "", "the validator's name (at most 64 bytes)")
	amountS := fs.String("amount", "", "tokens to self-bond (at least the genesis power_unit)")
	if _, err := e.parse(fs, args, 0, 0, "--from NAME --cons-key HEX|FILE --moniker M --amount N [--fee N] [--wait]"); err != nil {
		return err
	}
	amount, err := parseAmount("amount", *amountS)
	if err != nil {
		return err
	}
	if *consKey == "" {
		return errors.New("--cons-key is required: the node's consensus public key (`ledgerd show-validator`), or its config/priv_validator_key.json")
	}
	pk, err := readConsKey(*consKey)
	if err != nil {
		return err
	}
	if err := staking.CheckMoniker(*moniker); err != nil {
		return fmt.Errorf("--moniker: %w", err)
	}
	// A self-bond below one power unit gives no power: the node would
	// commit the transaction as failed and keep its fee.
	c, err := e.client()
	if err != nil {
		return err
	}
	doc, _, err := c.Genesis(e.ctx)
	if err != nil {
		return err
	}
	if unit := doc.Staking.PowerUnit; amount < unit {
		return fmt.Errorf("--amount %d is below one power unit (%d tokens on this chain): the validator would have no voting power", amount, unit)
	}
	return e.sendStake(f, ledger.Tx{Kind: ledger.TxCreateValidator, ConsKey: pk, Moniker: *moniker, Amount: amount})
}

// readConsKey reads --cons-key: a public key in hex, or a validator key
// file whose public key is taken (the file is checked whole, as the node
// checks it, so a damaged one is refused).
func readConsKey(arg string) (crypto.PubKey, error) {
	if pk, err := crypto.PubKeyFromHex(strings.TrimPrefix(arg, "0x")); err == nil {
		return pk, nil
	} else if _, serr := os.Stat(arg); serr != nil {
		return crypto.PubKey{}, fmt.Errorf("--cons-key %q is neither a public key (%v) nor a readable key file (%v)", arg, err, serr)
	}
	k, err := privval.LoadKeyFile(arg)
	if err != nil {
		return crypto.PubKey{}, fmt.Errorf("--cons-key: %w", err)
	}
	return k.PubKey(), nil
}

func stakeDelegate(e *env, args []string) error {
	return stakeBond(e, "delegate", ledger.TxDelegate, args)
}
func stakeUndelegate(e *env, args []string) error {
	return stakeBond(e, "undelegate", ledger.TxUndelegate, args)
}

// stakeBond sends a delegation or an undelegation.
func stakeBond(e *env, name string, kind ledger.TxKind, args []string) error {
	fs := e.flags("stake " + name)
	f := addStakeTxFlags(fs)
	validator := fs.String("validator", "", "the validator's operator address (or key name)")
	what := "tokens to bond to the validator"
	if kind == ledger.TxUndelegate {
		what = "tokens to unbond (they return to the account after the unbonding period)"
	}
	amountS := fs.String("amount", "", what)
	if _, err := e.parse(fs, args, 0, 0, "--from NAME --validator OPERATOR --amount N [--fee N] [--wait]"); err != nil {
		return err
	}
	amount, err := parseAmount("amount", *amountS)
	if err != nil {
		return err
	}
	if *validator == "" {
		return errors.New("--validator OPERATOR is required")
	}
	op, err := e.address(*validator)
	if err != nil {
		return fmt.Errorf("--validator: %w", err)
	}
	return e.sendStake(f, ledger.Tx{Kind: kind, To: op, Amount: amount})
}

func stakeUnjail(e *env, args []string) error {
	fs := e.flags("stake unjail")
	f := addStakeTxFlags(fs)
	if _, err := e.parse(fs, args, 0, 0, "--from OPERATOR-KEY [--fee N] [--wait]"); err != nil {
		return err
	}
	return e.sendStake(f, ledger.Tx{Kind: ledger.TxUnjail})
}

// validatorState says in words where a validator stands.
func validatorState(v api.StakingValidator) string {
	switch {
	case v.Tombstoned:
		return "tombstoned (it double-signed; its consensus key can never validate again)"
	case v.Jailed:
		return fmt.Sprintf("jailed (may unjail from height %d)", v.JailedUntil)
	case v.Active:
		return "active"
	case v.Power == 0:
		return "inactive (below one power unit)"
	default:
		return "inactive (outside the active set by power)"
	}
}

func stakeValidator(e *env, args []string) error {
	fs := e.flags("stake validator")
	height := fs.String("height", "latest", `the state after this height ("latest" or a number)`)
	pos, err := e.parse(fs, args, 1, 1, "OPERATOR|NAME [--height H]")
	if err != nil {
		return err
	}
	op, err := e.address(pos[0])
	if err != nil {
		return err
	}
	var hp api.Height
	if err := hp.UnmarshalJSON([]byte(strconv.Quote(*height))); err != nil {
		return fmt.Errorf("--height %q: %w", *height, err)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	v, err := c.StakingValidator(e.ctx, op, hp, false)
	if err != nil {
		return err
	}
	return e.print(v, func(w io.Writer) {
		fmt.Fprintf(w, "operator:   %s\nmoniker:    %q\ncons key:   %s (address %s)\n", v.Operator, v.Moniker, v.ConsKey, v.ConsAddress)
		fmt.Fprintf(w, "status:     %s\n", validatorState(v.StakingValidator))
		if v.Validating {
			fmt.Fprintf(w, "validating: yes, in the validator set of height %d\n", v.Height+1)
		} else {
			fmt.Fprintf(w, "validating: no, not in the validator set of height %d (a change takes effect two heights after its block)\n", v.Height+1)
		}
		fmt.Fprintf(w, "power:      %d\ntokens:     %d\nshares:     %d\ncreated:    height %d\n", v.Power, v.Tokens, v.Shares, v.CreatedHeight)
		if s := v.Signing; s != nil {
			fmt.Fprintf(w, "signing:    missed %d in the window started at height %d (window %d heights)\n", s.MissedInWindow, s.WindowStart, s.Window)
		}
		fmt.Fprintf(w, "as of:      the state after height %d\n", v.Height)
	})
}

func stakeValidators(e *env, args []string) error {
	fs := e.flags("stake validators")
	limit := fs.Int("limit", 1000, "most validators to list (fetched in pages of 100)")
	if _, err := e.parse(fs, args, 0, 0, "[--limit N]"); err != nil {
		return err
	}
	if *limit < 1 {
		return fmt.Errorf("--limit must be positive, got %d", *limit)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	vals, err := c.AllValidatorsByPower(e.ctx, *limit)
	if err != nil {
		return err
	}
	if vals == nil {
		vals = []api.StakingValidator{}
	}
	return e.print(vals, func(w io.Writer) {
		if len(vals) == 0 {
			fmt.Fprintln(w, "no validators")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "OPERATOR\tMONIKER\tPOWER\tTOKENS\tSTATUS")
		for _, v := range vals {
			state, _, _ := strings.Cut(validatorState(v), " (")
			fmt.Fprintf(tw, "%s\t%q\t%d\t%d\t%s\n", v.Operator, v.Moniker, v.Power, v.Tokens, state)
		}
		tw.Flush()
	})
}

// maxListed bounds the delegations and unbondings stake delegations
// fetches.
const maxListed = 10_000

type delegationsOut struct {
	Address     crypto.Address   `json:"address"`
	Delegations []api.Delegation `json:"delegations"`
	Unbondings  []api.Unbonding  `json:"unbondings"`
}

func stakeDelegations(e *env, args []string) error {
	fs := e.flags("stake delegations")
	pos, err := e.parse(fs, args, 1, 1, "ACCOUNT|NAME")
	if err != nil {
		return err
	}
	addr, err := e.address(pos[0])
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	out := delegationsOut{Address: addr, Delegations: []api.Delegation{}, Unbondings: []api.Unbonding{}}
	var after crypto.Address
	for len(out.Delegations) < maxListed {
		page, err := c.DelegationsByDelegator(e.ctx, addr, after, api.MaxStakingPage)
		if err != nil {
			return err
		}
		out.Delegations = append(out.Delegations, page.Delegations...)
		if page.NextAfter == nil || len(page.Delegations) == 0 {
			break
		}
		after = *page.NextAfter
	}
	after = crypto.Address{}
	for len(out.Unbondings) < maxListed {
		page, err := c.Unbondings(e.ctx, addr, after, api.MaxStakingPage)
		if err != nil {
			return err
		}
		out.Unbondings = append(out.Unbondings, page.Unbondings...)
		if page.NextAfter == nil || len(page.Unbondings) == 0 {
			break
		}
		after = *page.NextAfter
	}
	return e.print(out, func(w io.Writer) {
		if len(out.Delegations) == 0 {
			fmt.Fprintf(w, "%s has no delegations\n", addr)
		} else {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VALIDATOR\tSHARES\tTOKENS")
			for _, d := range out.Delegations {
				fmt.Fprintf(tw, "%s\t%d\t%d\n", d.Operator, d.Shares, d.Tokens)
			}
			tw.Flush()
		}
		if len(out.Unbondings) > 0 {
			fmt.Fprintln(w, "\nunbonding:")
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VALIDATOR\tBALANCE\tSINCE\tRETURNS AT")
			for _, u := range out.Unbondings {
				for _, en := range u.Entries {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", u.Operator, en.Balance, en.CreationHeight, en.CompletionHeight)
				}
			}
			tw.Flush()
		}
	})
}
