package ledger_test

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// execCase is one block executed on a state; want is the sentinel the
// error must match and msg a fragment it must contain (both empty: valid).
type execCase struct {
	name  string
	build func(f *chainAt, ms *ledgertest.MapState) (*ledger.State, *ledger.Block)
	want  error
	msg   string
}

func runExecCases(t *testing.T, cases []execCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newChainAt(t, 3, 1000)
			ms := f.c.NewMapState()
			st, b := tc.build(f, ms)
			stBefore, msBefore := *st, cloneMapState(ms)
			res, err := ledger.Execute(st, ms, b)
			checkErr(t, err, tc.want, tc.msg)
			if verr := ledger.Validate(st, ms, b); (verr == nil) != (err == nil) {
				t.Fatalf("Validate = %v but Execute = %v", verr, err)
			}
			if err == nil && res == nil {
				t.Fatal("Execute returned no result and no error")
			}
			if *st != stBefore || !mapStatesEqual(ms, msBefore) {
				t.Fatal("Execute modified the state it read")
			}
		})
	}
}

func checkErr(t *testing.T, err, want error, msg string) {
	t.Helper()
	if want == nil && msg == "" {
		if err != nil {
			t.Fatalf("valid block refused: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("invalid block accepted (want %v %q)", want, msg)
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("err = %v, want errors.Is %v", err, want)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("err = %q, want it to mention %q", err, msg)
	}
}

func cloneMapState(m *ledgertest.MapState) *ledgertest.MapState { return m.Clone() }

func mapStatesEqual(a, b *ledgertest.MapState) bool {
	if len(a.Accounts) != len(b.Accounts) || len(a.Evidence) != len(b.Evidence) || len(a.Records) != len(b.Records) {
		return false
	}
	for k, v := range a.Records {
		if !bytes.Equal(b.Records[k], v) {
			return false
		}
	}
	for k, v := range a.Accounts {
		if b.Accounts[k] != v {
			return false
		}
	}
	for k := range a.Evidence {
		if !b.Evidence[k] {
			return false
		}
	}
	return true
}

func (f *chainAt) acct(i int) crypto.PrivKey              { return f.c.Accounts[i] }
func (f *chainAt) addr(i int) crypto.Address              { return f.c.Accounts[i].PubKey().Address() }
func (f *chainAt) proposer1() crypto.Address              { return f.st0.Validators.Get(0).Address() }
func (f *chainAt) block1(txs ...*ledger.Tx) *ledger.Block { return f.c.NextBlock(f.st0, txs, nil, 0) }

// txCase builds block 1 carrying txs on genesis, after prepare adjusts the
// accounts.
func txCase(name string, want error, msg string, prepare func(f *chainAt, ms *ledgertest.MapState), txs func(f *chainAt) []*ledger.Tx) execCase {
	return execCase{name: name, want: want, msg: msg, build: func(f *chainAt, ms *ledgertest.MapState) (*ledger.State, *ledger.Block) {
		if prepare != nil {
			prepare(f, ms)
		}
		return f.st0, f.block1(txs(f)...)
	}}
}

func one(tx func(f *chainAt) *ledger.Tx) func(f *chainAt) []*ledger.Tx {
	return func(f *chainAt) []*ledger.Tx { return []*ledger.Tx{tx(f)} }
}

func TestExecuteTransfers(t *testing.T) {
	transfer := func(from, to int, amount, fee, nonce uint64) func(f *chainAt) *ledger.Tx {
		return func(f *chainAt) *ledger.Tx {
			return ledgertest.Transfer(f.acct(from), f.addr(to), amount, fee, nonce)
		}
	}
	setAccount := func(i int, a ledger.Account) func(f *chainAt, ms *ledgertest.MapState) {
		return func(f *chainAt, ms *ledgertest.MapState) { ms.Accounts[f.addr(i)] = a }
	}
	runExecCases(t, []execCase{
		txCase("valid transfer", nil, "", nil, one(transfer(0, 1, 10, 1, 0))),
		txCase("spends the whole balance on amount and fee", nil, "", nil, one(transfer(0, 1, 999, 1, 0))),
		txCase("several transfers with consecutive nonces", nil, "", nil, func(f *chainAt) []*ledger.Tx {
			return []*ledger.Tx{transfer(0, 1, 1, 0, 0)(f), transfer(0, 2, 1, 0, 1)(f), transfer(0, 1, 1, 0, 2)(f)}
		}),
		txCase("recipient reaches the largest balance exactly", nil, "", setAccount(1, ledger.Account{Balance: math.MaxUint64 - 10}), one(transfer(0, 1, 10, 0, 0))),
		txCase("spends what it received earlier in the block", nil, "", nil, func(f *chainAt) []*ledger.Tx {
			return []*ledger.Tx{transfer(1, 0, 1000, 0, 0)(f), transfer(0, 2, 2000, 0, 0)(f)}
		}),

		txCase("transfer signed for another chain", ledger.ErrWrongChain, "", nil, one(func(f *chainAt) *ledger.Tx {
			tx := &ledger.Tx{ChainID: "other-chain", To: f.addr(1), Amount: 1}
			tx.Sign(f.acct(0))
			return tx
		})),
		txCase("signature with a flipped bit", ledger.ErrBadSignature, "", nil, one(func(f *chainAt) *ledger.Tx {
			tx := transfer(0, 1, 1, 0, 0)(f)
			tx.Sig[10] ^= 4
			return tx
		})),
		txCase("signed by another key than From", ledger.ErrBadSignature, "", nil, one(func(f *chainAt) *ledger.Tx {
			tx := transfer(0, 1, 1, 0, 0)(f)
			tx.From = f.acct(2).PubKey()
			return tx
		})),
		txCase("amount changed after signing", ledger.ErrBadSignature, "", nil, one(func(f *chainAt) *ledger.Tx {
			tx := transfer(0, 1, 1, 0, 0)(f)
			tx.Amount = 500
			return tx
		})),
		txCase("bad signature on the second transfer", ledger.ErrBadSignature, "tx 1", nil, func(f *chainAt) []*ledger.Tx {
			bad := transfer(1, 2, 1, 0, 0)(f)
			bad.Sig[63] ^= 0x10
			return []*ledger.Tx{transfer(0, 1, 1, 0, 0)(f), bad}
		}),
		txCase("nonce below the account's", ledger.ErrNonceTooLow, "", setAccount(0, ledger.Account{Balance: 1000, Nonce: 5}), one(transfer(0, 1, 1, 0, 4))),
		txCase("nonce replayed within the block", ledger.ErrNonceTooLow, "tx 1", nil, func(f *chainAt) []*ledger.Tx {
			return []*ledger.Tx{transfer(0, 1, 1, 0, 0)(f), transfer(0, 1, 2, 0, 0)(f)}
		}),
		txCase("nonce above the account's", ledger.ErrNonceGap, "", nil, one(transfer(0, 1, 1, 0, 1))),
		txCase("nonce skipping one within the block", ledger.ErrNonceGap, "tx 1", nil, func(f *chainAt) []*ledger.Tx {
			return []*ledger.Tx{transfer(0, 1, 1, 0, 0)(f), transfer(0, 1, 1, 0, 2)(f)}
		}),
		txCase("amount plus fee one above the balance", ledger.ErrInsufficientFunds, "", nil, one(transfer(0, 1, 990, 11, 0))),
		txCase("fee alone is what does not fit", ledger.ErrInsufficientFunds, "", nil, one(transfer(0, 1, 1000, 1, 0))),
		txCase("balance spent by an earlier transfer", ledger.ErrInsufficientFunds, "tx 1", nil, func(f *chainAt) []*ledger.Tx {
			return []*ledger.Tx{transfer(0, 1, 600, 0, 0)(f), transfer(0, 2, 400, 1, 1)(f)}
		}),
		txCase("empty account sends", ledger.ErrInsufficientFunds, "", setAccount(0, ledger.Account{}), one(transfer(0, 1, 1, 0, 0))),
		// The mempool reports this as insufficient funds: no balance can cover it.
		txCase("amount plus fee overflows", ledger.ErrInsufficientFunds, "overflow", setAccount(0, ledger.Account{Balance: math.MaxUint64}), one(transfer(0, 1, math.MaxUint64, 1, 0))),
		txCase("recipient balance overflows", ledger.ErrOverflow, "recipient", setAccount(1, ledger.Account{Balance: math.MaxUint64 - 5}), one(transfer(0, 1, 10, 0, 0))),
		txCase("proposer balance overflows with the fee", ledger.ErrOverflow, "proposer", func(f *chainAt, ms *ledgertest.MapState) {
			ms.Accounts[f.proposer1()] = ledger.Account{Balance: math.MaxUint64 - 5}
		}, one(transfer(0, 1, 1, 10, 0))),
		txCase("zero amount", nil, "zero amount", nil, one(transfer(0, 1, 0, 5, 0))),
		txCase("transfer to the sender itself", nil, "own account", nil, one(transfer(0, 0, 1, 0, 0))),
	})
}

// stakingTx is a valid, signed, affordable transaction of kind k from
// account 0 with nonce n, naming account 1 as the validator.
func stakingTx(f *chainAt, k ledger.TxKind, n uint64) *ledger.Tx {
	switch k {
	case ledger.TxCreateValidator:
		return ledgertest.CreateValidator(f.acct(0), ledgertest.Key("validator", 9).PubKey(), "new", 100, 1, n)
	case ledger.TxDelegate:
		return ledgertest.Delegate(f.acct(0), f.addr(1), 100, 1, n)
	case ledger.TxUndelegate:
		return ledgertest.Undelegate(f.acct(0), f.addr(1), 100, 1, n)
	case ledger.TxUnjail:
		return ledgertest.Unjail(f.acct(0), 1, n)
	}
	panic("not a staking kind")
}

func TestExecuteChecksTheHeader(t *testing.T) {
	// header builds block 2 on the state after block 1, then mutates it.
	header := func(name string, want error, msg string, mut func(f *chainAt, st *ledger.State, b *ledger.Block)) execCase {
		return execCase{name: name, want: want, msg: msg, build: func(f *chainAt, _ *ledgertest.MapState) (*ledger.State, *ledger.Block) {
			st := f.st1.Copy()
			b := f.block2([]*ledger.Tx{
				ledgertest.Transfer(f.acct(0), f.addr(1), 1, 1, 0),
				ledgertest.Transfer(f.acct(1), f.addr(2), 1, 1, 0),
			}, []*ledger.Evidence{f.equivocation(3, 1)})
			if mut != nil {
				mut(f, st, b)
			}
			return st, b
		}}
	}
	other := crypto.Sum([]byte("something else"))
	runExecCases(t, []execCase{
		header("valid block 2", nil, "", nil),
		header("exactly at the byte limit", nil, "", func(_ *chainAt, st *ledger.State, b *ledger.Block) {
			st.Params.MaxBlockBytes = uint64(len(b.Encode()))
		}),
		header("exactly at the tx and evidence limits", nil, "", func(_ *chainAt, st *ledger.State, b *ledger.Block) {
			st.Params.MaxBlockTxs, st.Params.MaxEvidence = 2, 1
		}),
		header("chain ID", ledger.ErrWrongChain, "", func(_ *chainAt, _ *ledger.State, b *ledger.Block) { b.Header.ChainID = "other-chain" }),
		header("height repeats the last", nil, "height 1, want 2", func(_ *chainAt, _ *ledger.State, b *ledger.Block) { b.Header.Height = 1 }),
		header("height skips one", nil, "height 3, want 2", func(_ *chainAt, _ *ledger.State, b *ledger.Block) { b.Header.Height = 3 }),
		header("last block hash", nil, "last block hash", func(_ *chainAt, _ *ledger.State, b *ledger.Block) { b.Header.LastBlockHash = other }),
		header("app hash", nil, "app hash", func(_ *chainAt, _ *ledger.State, b *ledger.Block) { b.Header.AppHash = other }),
		header("validators hash", nil, "validators hash", func(_ *chainAt, _ *ledger.State, b *ledger.Block) { b.Header.ValidatorsHash = other }),
		header("tx root", nil, "tx root", func(_ *chainAt, _ *ledger.State, b *ledger.Block) { b.Header.TxRoot = other }),
		header("tx root of the txs in another order", nil, "tx root", func(_ *chainAt, _ *ledger.State, b *ledger.Block) {
			b.Txs[0], b.Txs[1] = b.Txs[1], b.Txs[0]
		}),
		header("evidence hash", nil, "evidence hash", func(_ *chainAt, _ *ledger.State, b *ledger.Block) { b.Header.EvidenceHash = other }),
		header("evidence hash of no evidence", nil, "evidence hash", func(_ *chainAt, _ *ledger.State, b *ledger.Block) { b.Evidence = nil }),
		header("last commit hash", nil, "last commit hash", func(_ *chainAt, _ *ledger.State, b *ledger.Block) { b.Header.LastCommitHash = other }),
		header("last commit changed after the header", nil, "last commit hash", func(_ *chainAt, _ *ledger.State, b *ledger.Block) {
			b.LastCommit.Sigs = b.LastCommit.Sigs[1:]
		}),
		header("time equal to the last block's", nil, "not after", func(_ *chainAt, st *ledger.State, b *ledger.Block) { b.Header.Time = st.LastBlockTime }),
		header("time before the last block's", nil, "not after", func(_ *chainAt, st *ledger.State, b *ledger.Block) { b.Header.Time = st.LastBlockTime - 1 }),
		header("proposer not a validator", nil, "not a validator", func(f *chainAt, _ *ledger.State, b *ledger.Block) { b.Header.Proposer = f.addr(0) }),
		header("too many transactions", nil, "2 transactions, at most 1", func(_ *chainAt, st *ledger.State, _ *ledger.Block) { st.Params.MaxBlockTxs = 1 }),
		header("too many bytes", nil, "bytes, at most", func(_ *chainAt, st *ledger.State, b *ledger.Block) {
			st.Params.MaxBlockBytes = uint64(len(b.Encode()) - 1)
		}),
		header("too much evidence", nil, "1 pieces of evidence, at most 0", func(_ *chainAt, st *ledger.State, _ *ledger.Block) { st.Params.MaxEvidence = 0 }),

		{name: "block 1 at the genesis time", build: func(f *chainAt, _ *ledgertest.MapState) (*ledger.State, *ledger.Block) {
			b := f.block1()
			b.Header.Time = f.st0.GenesisTime
			return f.st0, b
		}},
		{name: "block 1 before the genesis time", msg: "before genesis", build: func(f *chainAt, _ *ledgertest.MapState) (*ledger.State, *ledger.Block) {
			b := f.block1()
			b.Header.Time = f.st0.GenesisTime - 1
			return f.st0, b
		}},
		{name: "block 1 with a last commit", msg: "must not carry a last commit", build: func(f *chainAt, _ *ledgertest.MapState) (*ledger.State, *ledger.Block) {
			return f.st0, f.c.NextBlock(f.st0, nil, f.c.Commit(f.b1), 0)
		}},
		{name: "block 2 without a last commit", msg: "commit: missing", build: func(f *chainAt, _ *ledgertest.MapState) (*ledger.State, *ledger.Block) {
			return f.st1, f.c.NextBlock(f.st1, nil, nil, 0)
		}},
		{name: "last commit with two of four validators", msg: "signers hold 20 of 40", build: func(f *chainAt, _ *ledgertest.MapState) (*ledger.State, *ledger.Block) {
			return f.st1, f.c.NextBlock(f.st1, nil, f.c.Commit(f.b1, 0, 3), 0)
		}},
		{name: "last commit with three of four validators", build: func(f *chainAt, _ *ledgertest.MapState) (*ledger.State, *ledger.Block) {
			return f.st1, f.c.NextBlock(f.st1, nil, f.c.Commit(f.b1, 0, 1, 3), 0)
		}},
		{name: "last commit with a bad signature", want: ledger.ErrBadSignature, msg: "validator 2", build: func(f *chainAt, _ *ledgertest.MapState) (*ledger.State, *ledger.Block) {
			c := f.c.Commit(f.b1)
			c.Sigs[2].Sig[5] ^= 1
			return f.st1, f.c.NextBlock(f.st1, nil, c, 0)
		}},
		{name: "last commit for another block", msg: "for block", build: func(f *chainAt, _ *ledgertest.MapState) (*ledger.State, *ledger.Block) {
			b1 := *f.b1
			b1.Header.Time++
			return f.st1, f.c.NextBlock(f.st1, nil, f.c.Commit(&b1), 0)
		}},
		{name: "last commit for another height", msg: "for height", build: func(f *chainAt, _ *ledgertest.MapState) (*ledger.State, *ledger.Block) {
			c := f.c.Commit(f.b1)
			c.Height = 2
			return f.st1, f.c.NextBlock(f.st1, nil, c, 0)
		}},
	})
}

func TestExecuteChecksEvidence(t *testing.T) {
	// evidence builds block 2 carrying the evidence evs returns.
	evidence := func(name string, want error, msg string, prepare func(f *chainAt, ms *ledgertest.MapState), evs func(f *chainAt) []*ledger.Evidence) execCase {
		return execCase{name: name, want: want, msg: msg, build: func(f *chainAt, ms *ledgertest.MapState) (*ledger.State, *ledger.Block) {
			if prepare != nil {
				prepare(f, ms)
			}
			return f.st1, f.block2(nil, evs(f))
		}}
	}
	x, y, z := crypto.Sum([]byte("x")), crypto.Sum([]byte("y")), crypto.Sum([]byte("z"))
	signed := func(k crypto.PrivKey, chainID string, typ ledger.VoteType, h uint64, round uint32, id crypto.Hash) *ledger.Vote {
		v := &ledger.Vote{Type: typ, Height: h, Round: round, BlockID: id}
		v.Sign(chainID, k)
		return v
	}
	precommit := func(k crypto.PrivKey, id crypto.Hash) *ledger.Vote {
		return signed(k, ledgertest.ChainID, ledger.Precommit, 1, 0, id)
	}
	single := func(ev func(f *chainAt) *ledger.Evidence) func(f *chainAt) []*ledger.Evidence {
		return func(f *chainAt) []*ledger.Evidence { return []*ledger.Evidence{ev(f)} }
	}
	runExecCases(t, []execCase{
		evidence("equivocating precommits", nil, "", nil, single(func(f *chainAt) *ledger.Evidence { return f.equivocation(2, 1) })),
		evidence("equivocating prevotes, one for nil", nil, "", nil, single(func(f *chainAt) *ledger.Evidence {
			k := f.c.ValKeys[1]
			return ledger.NewEvidence(signed(k, ledgertest.ChainID, ledger.Prevote, 1, 3, x), signed(k, ledgertest.ChainID, ledger.Prevote, 1, 3, crypto.Hash{}))
		})),
		evidence("two validators' equivocations", nil, "", nil, func(f *chainAt) []*ledger.Evidence {
			return []*ledger.Evidence{f.equivocation(0, 1), f.equivocation(1, 1)}
		}),
		evidence("votes for the same block", nil, "same block", nil, single(func(f *chainAt) *ledger.Evidence {
			v := precommit(f.c.ValKeys[0], x)
			return &ledger.Evidence{VoteA: *v, VoteB: *v}
		})),
		evidence("votes by different validators", nil, "same validator", nil, single(func(f *chainAt) *ledger.Evidence {
			return ledger.NewEvidence(precommit(f.c.ValKeys[0], x), precommit(f.c.ValKeys[1], y))
		})),
		evidence("votes of different rounds", nil, "same validator, height, round and type", nil, single(func(f *chainAt) *ledger.Evidence {
			k := f.c.ValKeys[0]
			return ledger.NewEvidence(signed(k, ledgertest.ChainID, ledger.Precommit, 1, 0, x), signed(k, ledgertest.ChainID, ledger.Precommit, 1, 1, y))
		})),
		evidence("a prevote and a precommit", nil, "same validator, height, round and type", nil, single(func(f *chainAt) *ledger.Evidence {
			k := f.c.ValKeys[0]
			return ledger.NewEvidence(signed(k, ledgertest.ChainID, ledger.Prevote, 1, 0, x), signed(k, ledgertest.ChainID, ledger.Precommit, 1, 0, y))
		})),
		evidence("votes in non-canonical order", nil, "canonical order", nil, single(func(f *chainAt) *ledger.Evidence {
			ev := f.equivocation(0, 1)
			ev.VoteA, ev.VoteB = ev.VoteB, ev.VoteA
			return ev
		})),
		evidence("already committed in an earlier block", nil, "already committed", func(f *chainAt, ms *ledgertest.MapState) {
			ms.Evidence[f.equivocation(0, 1).Key()] = true
		}, single(func(f *chainAt) *ledger.Evidence { return f.equivocation(0, 1) })),
		evidence("the same evidence twice in the block", nil, "already committed", nil, func(f *chainAt) []*ledger.Evidence {
			return []*ledger.Evidence{f.equivocation(0, 1), f.equivocation(0, 1)}
		}),
		evidence("the same offence proved by another pair of votes", nil, "already committed", nil, func(f *chainAt) []*ledger.Evidence {
			k := f.c.ValKeys[0]
			return []*ledger.Evidence{
				ledger.NewEvidence(precommit(k, x), precommit(k, y)),
				ledger.NewEvidence(precommit(k, x), precommit(k, z)),
			}
		}),
		evidence("for the block's own height", nil, "not an earlier one", nil, single(func(f *chainAt) *ledger.Evidence { return f.equivocation(0, 2) })),
		evidence("for a future height", nil, "not an earlier one", nil, single(func(f *chainAt) *ledger.Evidence { return f.equivocation(0, 3) })),
		evidence("signed by a non-validator", nil, "not a validator", nil, single(func(f *chainAt) *ledger.Evidence {
			return equivocationBy(ledgertest.Key("outsider", 0), 1, x, y)
		})),
		evidence("vote B with a bad signature", ledger.ErrBadSignature, "vote B", nil, single(func(f *chainAt) *ledger.Evidence {
			ev := f.equivocation(0, 1)
			ev.VoteB.Sig[0] ^= 1
			return ev
		})),
		evidence("vote A with a bad signature", ledger.ErrBadSignature, "vote A", nil, single(func(f *chainAt) *ledger.Evidence {
			ev := f.equivocation(0, 1)
			ev.VoteA.Sig[40] ^= 1
			return ev
		})),
		evidence("votes signed for another chain", ledger.ErrBadSignature, "", nil, single(func(f *chainAt) *ledger.Evidence {
			k := f.c.ValKeys[0]
			return ledger.NewEvidence(signed(k, "other-chain", ledger.Precommit, 1, 0, x), signed(k, "other-chain", ledger.Precommit, 1, 0, y))
		})),
		evidence("votes of height 0", nil, "height 0", nil, single(func(f *chainAt) *ledger.Evidence {
			return equivocationBy(f.c.ValKeys[0], 0, x, y)
		})),
	})
}

func TestExecuteReportsEvidenceKeys(t *testing.T) {
	f := newChainAt(t, 1, 10)
	evs := []*ledger.Evidence{f.equivocation(3, 1), f.equivocation(1, 1)}
	res, err := ledger.Execute(f.st1, f.c.NewMapState(), f.block2(nil, evs))
	if err != nil {
		t.Fatal(err)
	}
	want := []crypto.Hash{evs[0].Key(), evs[1].Key()}
	if !slices.Equal(res.Evidence, want) {
		t.Fatalf("Result.Evidence = %v, want the keys in block order %v", res.Evidence, want)
	}
	// The key names the offence, not the pair of votes proving it.
	k := f.c.ValKeys[3]
	other := equivocationBy(k, 1, crypto.Sum([]byte("p")), crypto.Sum([]byte("q")))
	if other.Key() != evs[0].Key() || other.Hash() == evs[0].Hash() {
		t.Fatal("two proofs of one offence must share a key and differ in hash")
	}
}

func TestExecuteMovesBalancesFeesAndNonces(t *testing.T) {
	f := newChainAt(t, 3, 1000)
	ms := f.c.NewMapState()
	ms.Accounts[f.addr(0)] = ledger.Account{Balance: 1000, Nonce: 7}
	txs := []*ledger.Tx{
		ledgertest.Transfer(f.acct(0), f.addr(1), 100, 3, 7),
		ledgertest.Transfer(f.acct(1), f.addr(2), 50, 2, 0),
		ledgertest.Transfer(f.acct(0), f.addr(2), 10, 0, 8),
	}
	b := f.block2(txs, nil)
	proposer := b.Header.Proposer
	res, err := ledger.Execute(f.st1, ms, b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[crypto.Address]ledger.Account{
		f.addr(0): {Balance: 1000 - 103 - 10, Nonce: 9},
		f.addr(1): {Balance: 1000 + 100 - 52, Nonce: 1},
		f.addr(2): {Balance: 1000 + 50 + 10, Nonce: 0},
		proposer:  {Balance: 5},
	}
	if len(res.Accounts) != len(want) {
		t.Fatalf("%d accounts changed, want %d: %+v", len(res.Accounts), len(want), res.Accounts)
	}
	for _, u := range res.Accounts {
		if w, ok := want[u.Address]; !ok || u.Account != w {
			t.Errorf("account %s = %+v, want %+v", u.Address, u.Account, w)
		}
	}
	if !slices.IsSortedFunc(res.Accounts, func(a, b ledger.AccountUpdate) int { return bytes.Compare(a.Address[:], b.Address[:]) }) {
		t.Error("Result.Accounts is not sorted by address")
	}
	for i, rc := range res.Receipts {
		if want := (ledger.Receipt{TxHash: txs[i].Hash(), Height: 2, Index: uint32(i), Fee: txs[i].Fee}); rc != want {
			t.Errorf("receipt %d = %+v, want %+v", i, rc, want)
		}
	}
	if len(res.Receipts) != len(txs) {
		t.Errorf("%d receipts for %d txs", len(res.Receipts), len(txs))
	}
}

// Over a chain of blocks of random valid transfers, Execute keeps the sum
// of balances equal to the supply, and its result is the same every time.
func TestExecuteConservesSupplyOverAChain(t *testing.T) {
	r, seed := testRand(t)
	const nAccts = 6
	c := ledgertest.NewChain(4, nAccts, 1_000)
	ms := c.NewMapState()
	st := c.Genesis.Copy()
	var last *ledger.Block
	for height := 1; height <= 6; height++ {
		var txs []*ledger.Tx
		pending := map[crypto.Address]ledger.Account{}
		for range r.IntN(12) {
			i, j := r.IntN(nAccts), r.IntN(nAccts-1)
			if j >= i {
				j++
			}
			from := c.Accounts[i].PubKey().Address()
			acc, ok := pending[from]
			if !ok {
				acc = ms.Accounts[from]
			}
			if acc.Balance < 2 {
				continue
			}
			amount := 1 + r.Uint64N(acc.Balance-1)
			fee := r.Uint64N(acc.Balance - amount + 1)
			txs = append(txs, ledgertest.Transfer(c.Accounts[i], c.Accounts[j].PubKey().Address(), amount, fee, acc.Nonce))
			acc.Balance -= amount + fee
			acc.Nonce++
			pending[from] = acc
			// The recipient's new funds are not counted here; they stay spendable next block.
		}
		var lc *ledger.Commit
		if last != nil {
			lc = c.Commit(last)
		}
		b := c.NextBlock(st, txs, lc, r.IntN(4))
		res, err := ledger.Execute(st, ms, b)
		if err != nil {
			t.Fatalf("seed %d: block %d: %v", seed, height, err)
		}
		again, err := ledger.Execute(st, ms, b)
		if err != nil || !resultsEqual(res, again) {
			t.Fatalf("seed %d: block %d: a second execution differs", seed, height)
		}
		if err := ms.Apply(b.Height(), res); err != nil {
			t.Fatal(err)
		}
		sum, err := ledger.StakeHeld(ms)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range ms.Accounts {
			sum += a.Balance
		}
		if sum != st.TotalSupply {
			t.Fatalf("seed %d: after block %d balances and stake sum to %d, supply %d", seed, height, sum, st.TotalSupply)
		}
		st = st.Next(b, res, crypto.Sum(b.Encode())) // any commitment: the header must carry it
		last = b
	}
}

func resultsEqual(a, b *ledger.Result) bool {
	return slices.Equal(a.Accounts, b.Accounts) && slices.Equal(a.Evidence, b.Evidence) && slices.Equal(a.Receipts, b.Receipts)
}

func TestCheckTxAppliesTheBlockRules(t *testing.T) {
	k := ledgertest.Key("account", 0)
	to := ledgertest.Key("account", 1).PubKey().Address()
	acc := ledger.Account{Balance: 100, Nonce: 3}
	cases := []struct {
		name string
		tx   func() *ledger.Tx
		want error
	}{
		{"valid", func() *ledger.Tx { return ledgertest.Transfer(k, to, 90, 10, 3) }, nil},
		{"wrong chain", func() *ledger.Tx {
			tx := &ledger.Tx{ChainID: "x", To: to, Amount: 1, Nonce: 3}
			tx.Sign(k)
			return tx
		}, ledger.ErrWrongChain},
		{"nonce too low", func() *ledger.Tx { return ledgertest.Transfer(k, to, 1, 0, 2) }, ledger.ErrNonceTooLow},
		{"nonce gap", func() *ledger.Tx { return ledgertest.Transfer(k, to, 1, 0, 4) }, ledger.ErrNonceGap},
		{"insufficient funds", func() *ledger.Tx { return ledgertest.Transfer(k, to, 91, 10, 3) }, ledger.ErrInsufficientFunds},
		{"bad signature", func() *ledger.Tx {
			tx := ledgertest.Transfer(k, to, 1, 0, 3)
			tx.Fee = 1 // after signing
			return tx
		}, ledger.ErrBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ledger.CheckTx(ledgertest.ChainID, acc, tc.tx())
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("CheckTx = %v, want %v", err, tc.want)
			}
		})
	}
}
