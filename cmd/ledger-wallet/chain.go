package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
	"github.com/ledgerd/ledgerd/wallet"
)

type balanceOut struct {
	Address      crypto.Address `json:"address"`
	Balance      api.Uint64     `json:"balance"`
	Nonce        api.Uint64     `json:"nonce"`
	PendingNonce *api.Uint64    `json:"pending_nonce,omitempty"`
	Height       api.Uint64     `json:"height"`
	Verified     bool           `json:"verified"`
	AppHash      *crypto.Hash   `json:"app_hash,omitempty"`
	// With --verify: the verified header that commits to the state shown
	// (Height+1), when it was made, and the endpoint that served it.
	HeaderHeight     *api.Uint64 `json:"header_height,omitempty"`
	HeaderTime       *time.Time  `json:"header_time,omitempty"`
	HeaderAgeSeconds *float64    `json:"header_age_seconds,omitempty"`
	Endpoint         string      `json:"endpoint,omitempty"`
	// HeadersFetched is how many headers the light client fetched to
	// verify the header (0 when it trusted it already).
	HeadersFetched *int `json:"headers_fetched,omitempty"`
}

// defaultMaxAge is how old balance --verify lets the newest verified
// header be: far above a live chain's block interval, far below the time
// a hidden payment would matter.
const defaultMaxAge = 10 * time.Minute

func runBalance(e *env, args []string) error {
	fs := e.flags("balance")
	verify := fs.Bool("verify", false, "prove the balance against the app hash of a header the light client verified, from the trusted genesis across validator-set changes")
	maxAge := fs.Duration("max-age", defaultMaxAge, "with --verify, refuse when the newest verified header among the --rpc endpoints is older than this (0: any age)")
	pos, err := e.parse(fs, args, 1, 1, "ADDRESS|NAME [--verify [--max-age D]]")
	if err != nil {
		return err
	}
	if *maxAge < 0 {
		return fmt.Errorf("--max-age %s: want a positive duration, or 0 for any age", *maxAge)
	}
	addr, err := e.address(pos[0])
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var out balanceOut
	if *verify {
		t, err := e.trust(c)
		if err != nil {
			return err
		}
		t.MaxAge = *maxAge
		va, err := c.VerifiedAccount(e.ctx, t, addr)
		e.reportLight(t)
		if errors.Is(err, client.ErrStale) {
			return fmt.Errorf("%w\n(give more --rpc endpoints, or accept an older state with --max-age D or --max-age 0)", err)
		}
		if err != nil {
			return err
		}
		for _, s := range va.Skipped {
			if errors.Is(s.Err, client.ErrVerification) {
				fmt.Fprintf(e.stderr, "WARNING: %s failed verification (a lying or broken node); its answers were not used: %v\n", s.Endpoint, s.Err)
			} else {
				fmt.Fprintf(e.stderr, "note: %s was not used: %v\n", s.Endpoint, s.Err)
			}
		}
		ah, hh, ht := va.AppHash, api.Uint64(va.Header.Height), va.Header.Time.Time().UTC()
		age := max(time.Since(ht), 0).Seconds()
		fetched := va.HeadersFetched
		out = balanceOut{Address: addr, Balance: api.Uint64(va.Account.Balance), Nonce: api.Uint64(va.Account.Nonce),
			Height: api.Uint64(va.Height), Verified: true, AppHash: &ah,
			HeaderHeight: &hh, HeaderTime: &ht, HeaderAgeSeconds: &age, Endpoint: va.Endpoint, HeadersFetched: &fetched}
	} else {
		acc, err := c.Account(e.ctx, addr)
		if err != nil {
			return err
		}
		out = balanceOut{Address: addr, Balance: acc.Balance, Nonce: acc.Nonce, PendingNonce: acc.PendingNonce, Height: acc.Height}
	}
	return e.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "address:  %s\nbalance:  %d\nnonce:    %d\n", out.Address, out.Balance, out.Nonce)
		if out.PendingNonce != nil {
			fmt.Fprintf(w, "pending nonce: %d\n", *out.PendingNonce)
		}
		if out.Verified {
			fmt.Fprintf(w, "verified: yes: the state after height %d, app hash %s, is in header %d, verified from the trusted genesis across validator-set changes\n",
				out.Height, *out.AppHash, *out.HeaderHeight)
			fmt.Fprintf(w, "header:   %d, made %s (%s ago), the newest verified header from %s\n",
				*out.HeaderHeight, out.HeaderTime.Format(time.RFC3339), time.Duration(*out.HeaderAgeSeconds*float64(time.Second)).Round(time.Second), out.Endpoint)
		} else {
			fmt.Fprintf(w, "height:   %d (unverified; use --verify to check it)\n", out.Height)
		}
	})
}

type sentOut struct {
	Hash   crypto.Hash  `json:"hash"`
	Nonce  api.Uint64   `json:"nonce"`
	Status api.TxStatus `json:"status"`
	Height *api.Uint64  `json:"height,omitempty"`
	Index  *uint32      `json:"index,omitempty"`
	// ProofHeight (with --wait) is the block whose header commits to the
	// state after the transfer; send --wait returns once it exists.
	ProofHeight *api.Uint64 `json:"proof_height,omitempty"`
}

func runSend(e *env, args []string) error {
	fs := e.flags("send")
	from := fs.String("from", "", "name of the sending key")
	to := fs.String("to", "", "recipient address (or key name)")
	amountS := fs.String("amount", "", "amount to send")
	feeS := fs.String("fee", "", "fee (default: the node's suggestion)")
	wait := fs.Bool("wait", false, "wait until the transfer commits")
	count := fs.Int("count", 1, "send this many transfers of --amount in a row")
	waitTimeout := fs.Duration("wait-timeout", 0, "longest wait for each commit with --wait (default: the node's)")
	if _, err := e.parse(fs, args, 0, 0, "--from NAME --to ADDRESS --amount N [--fee N] [--wait] [--count K]"); err != nil {
		return err
	}
	if *from == "" || *to == "" || *amountS == "" {
		return errors.New("send needs --from NAME, --to ADDRESS and --amount N")
	}
	if *count < 1 || *count > 10000 {
		return fmt.Errorf("--count %d: want 1 to 10000", *count)
	}
	amount, err := strconv.ParseUint(*amountS, 10, 64)
	if err != nil || amount == 0 {
		return fmt.Errorf("--amount %q: want a positive whole number", *amountS)
	}
	toAddr, err := e.address(*to)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	ks, err := e.keystore()
	if err != nil {
		return err
	}
	if _, err := ks.Info(*from); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var fee uint64
	if *feeS != "" {
		if fee, err = strconv.ParseUint(*feeS, 10, 64); err != nil {
			return fmt.Errorf("--fee %q: want a whole number", *feeS)
		}
	} else {
		sf, err := c.SuggestFee(e.ctx)
		if err != nil {
			return fmt.Errorf("fee suggestion: %w", err)
		}
		fee = uint64(sf.Fee)
	}
	st, err := c.Status(e.ctx)
	if err != nil {
		return err
	}
	pass, err := e.passphrase(fmt.Sprintf("Passphrase of %s: ", *from), false)
	if err != nil {
		return err
	}
	key, err := ks.Key(*from, pass)
	if err != nil {
		return err
	}
	s := wallet.NewSender(c, key, st.ChainID)
	var outs []sentOut
	var txs []*ledger.Tx
	for i := 0; i < *count; i++ {
		tx, err := s.Send(e.ctx, toAddr, amount, fee)
		if err != nil {
			e.printSent(outs)
			return fmt.Errorf("transfer %d of %d: %w", i+1, *count, err)
		}
		txs = append(txs, tx)
		outs = append(outs, sentOut{Hash: tx.Hash(), Nonce: api.Uint64(tx.Nonce), Status: api.TxPending})
	}
	if *wait {
		var last uint64
		for i, tx := range txs {
			r, err := wallet.Wait(e.ctx, c, tx, *waitTimeout)
			if err != nil {
				e.printSent(outs)
				return fmt.Errorf("waiting for %s: %w", tx.Hash(), err)
			}
			outs[i].Status, outs[i].Height, outs[i].Index = r.Status, r.Height, r.Index
			if r.Height != nil {
				last = max(last, uint64(*r.Height))
			}
		}
		// The state after block h is committed only by header h+1: wait
		// for it, so that balance --verify shows these transfers at once.
		if last > 0 {
			if _, err := wallet.WaitProven(e.ctx, c, last); err != nil {
				e.printSent(outs)
				return err
			}
			for i := range outs {
				if outs[i].Height != nil {
					ph := *outs[i].Height + 1
					outs[i].ProofHeight = &ph
				}
			}
		}
	}
	return e.printSent(outs)
}

func (e *env) printSent(outs []sentOut) error {
	if outs == nil {
		outs = []sentOut{}
	}
	var v any = outs
	if len(outs) == 1 {
		v = outs[0]
	}
	return e.print(v, func(w io.Writer) {
		for _, o := range outs {
			fmt.Fprintf(w, "%s  nonce %d  %s", o.Hash, o.Nonce, o.Status)
			if o.Height != nil {
				fmt.Fprintf(w, " at height %d", *o.Height)
				if o.Index != nil {
					fmt.Fprintf(w, " index %d", *o.Index)
				}
				if o.ProofHeight != nil {
					fmt.Fprintf(w, ", proven by header %d", *o.ProofHeight)
				}
			}
			fmt.Fprintln(w)
		}
	})
}

func runTx(e *env, args []string) error {
	fs := e.flags("tx")
	verify := fs.Bool("verify", false, "prove the transaction's inclusion against a verified header")
	pos, err := e.parse(fs, args, 1, 1, "HASH [--verify]")
	if err != nil {
		return err
	}
	h, err := crypto.HashFromHex(pos[0])
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var t *api.Transaction
	if *verify {
		trust, err := e.trust(c)
		if err != nil {
			return err
		}
		t, err = c.VerifiedTx(e.ctx, trust, h)
		e.reportLight(trust)
		if err != nil {
			return err
		}
	} else if t, err = c.Tx(e.ctx, h, true); err != nil {
		return err
	}
	out := struct {
		*api.Transaction
		Verified bool `json:"verified"`
	}{t, *verify}
	return e.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "hash:    %s\nstatus:  %s\n", t.Hash, t.Status)
		if t.Tx != nil {
			printTx(w, t.Tx)
		}
		if t.Height != nil {
			fmt.Fprintf(w, "height:  %d\nindex:   %d\nblock:   %s\n", *t.Height, *t.Index, *t.BlockHash)
		}
		if t.Failed && t.Receipt != nil {
			fmt.Fprintf(w, "FAILED:  %s (the fee was paid, the nonce used; nothing else changed)\n", t.Receipt.Error)
		}
		if *verify {
			fmt.Fprintln(w, "verified: yes: its inclusion proof leads to the tx root of a header verified from the trusted genesis across validator-set changes")
		}
	})
}

// printTx writes a transaction's fields, those its kind uses.
func printTx(w io.Writer, tx *ledger.Tx) {
	if tx.Kind != ledger.TxTransfer {
		fmt.Fprintf(w, "kind:    %s\n", tx.Kind)
	}
	fmt.Fprintf(w, "from:    %s\n", tx.Sender())
	switch tx.Kind {
	case ledger.TxTransfer:
		fmt.Fprintf(w, "to:      %s\namount:  %d\n", tx.To, tx.Amount)
	case ledger.TxCreateValidator:
		fmt.Fprintf(w, "cons key: %s\nmoniker: %q\nself-bond: %d\n", tx.ConsKey, tx.Moniker, tx.Amount)
	case ledger.TxDelegate, ledger.TxUndelegate:
		fmt.Fprintf(w, "validator: %s\namount:  %d\n", tx.To, tx.Amount)
	}
	fmt.Fprintf(w, "fee:     %d\nnonce:   %d\n", tx.Fee, tx.Nonce)
}

// historyRow is the DIRECTION and COUNTERPARTY columns of t in addr's
// history: "sent" or "received" for a transfer; for a staking transaction
// its kind, and "(your validator)" when addr is the validator it names.
func historyRow(t api.AccountTx, addr crypto.Address) (dir, other string) {
	if t.Kind == ledger.TxTransfer {
		if t.From != addr {
			return "received", t.From.String()
		}
		return "sent", t.To.String()
	}
	switch {
	case t.From != addr:
		return t.Kind.String() + " (your validator)", t.From.String()
	case t.To.IsZero():
		return t.Kind.String(), "-"
	default:
		return t.Kind.String(), t.To.String()
	}
}

func runHistory(e *env, args []string) error {
	fs := e.flags("history")
	fromH := fs.Uint64("from-height", 0, "first height to list")
	fromI := fs.Uint("from-index", 0, "first index in the block at --from-height (as printed after \"more:\")")
	limit := fs.Int("limit", 100, "most transactions to list (fetched in pages of up to 1000)")
	pos, err := e.parse(fs, args, 1, 1, "ADDRESS|NAME [--from-height H] [--from-index I] [--limit N]")
	if err != nil {
		return err
	}
	if *limit < 1 {
		return fmt.Errorf("--limit must be positive, got %d", *limit)
	}
	if *fromI > math.MaxUint32 {
		return fmt.Errorf("--from-index %d is out of range", *fromI)
	}
	addr, err := e.address(pos[0])
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	page, err := c.AccountHistory(e.ctx, addr, *fromH, uint32(*fromI), *limit)
	if err != nil {
		return err
	}
	return e.print(page, func(w io.Writer) {
		if len(page.Txs) == 0 {
			fmt.Fprintf(w, "no committed transactions of %s from height %d\n", addr, *fromH)
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HEIGHT\tINDEX\tDIRECTION\tCOUNTERPARTY\tAMOUNT\tFEE\tNONCE\tHASH")
		for _, t := range page.Txs {
			dir, other := historyRow(t, addr)
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%d\t%d\t%s\n", t.Height, t.Index, dir, other, t.Amount, t.Fee, t.Nonce, t.Hash)
		}
		tw.Flush()
		if page.NextFromHeight != nil {
			var idx uint32
			if page.NextFromIndex != nil {
				idx = *page.NextFromIndex
			}
			fmt.Fprintf(w, "more: run again with --from-height %d --from-index %d\n", *page.NextFromHeight, idx)
		}
	})
}

func runStatus(e *env, args []string) error {
	fs := e.flags("status")
	if _, err := e.parse(fs, args, 0, 0, ""); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	st, err := c.Status(e.ctx)
	if err != nil {
		return err
	}
	return e.print(st, func(w io.Writer) {
		fmt.Fprintf(w, "chain:        %s (genesis %s)\nnode:         %s (%s)\nheight:       %d\nblock:        %s\ntime:         %s\ncatching up:  %v\npeers:        %d\n",
			st.ChainID, st.GenesisHash, st.NodeID, st.Moniker, st.LatestHeight, st.LatestBlockHash,
			st.LatestBlockTime.Time().Format(time.RFC3339), st.CatchingUp, st.Peers)
		if st.ValidatorAddress != nil {
			fmt.Fprintf(w, "validator:    %s\n", *st.ValidatorAddress)
		}
	})
}
