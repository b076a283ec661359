package ledger_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/ledger/ledgertest"
)

var allKinds = append([]ledger.TxKind{ledger.TxTransfer}, stakingKinds...)

func TestTxKindNames(t *testing.T) {
	names := map[ledger.TxKind]string{
		ledger.TxTransfer:        "transfer",
		ledger.TxCreateValidator: "create_validator",
		ledger.TxDelegate:        "delegate",
		ledger.TxUndelegate:      "undelegate",
		ledger.TxUnjail:          "unjail",
	}
	for _, k := range allKinds {
		if k.String() != names[k] {
			t.Errorf("kind %d is %q, want %q", uint8(k), k, names[k])
		}
		got, err := ledger.ParseTxKind(names[k])
		if err != nil || got != k {
			t.Errorf("ParseTxKind(%q) = %v, %v", names[k], got, err)
		}
		if k.Staking() != (k != ledger.TxTransfer) {
			t.Errorf("%s: Staking() = %v", k, k.Staking())
		}
	}
	if k, err := ledger.ParseTxKind(""); err != nil || k != ledger.TxTransfer {
		t.Errorf(`ParseTxKind("") = %v, %v; want the transfer`, k, err)
	}
	for _, bad := range []string{"Transfer", "stake", "create-validator", " delegate", "unjail\x00", "5"} {
		if _, err := ledger.ParseTxKind(bad); !errors.Is(err, ledger.ErrUnknownTxKind) {
			t.Errorf("ParseTxKind(%q) = %v, want ErrUnknownTxKind", bad, err)
		}
	}
	for _, k := range []ledger.TxKind{5, 0x80, 0xff} {
		if k.Known() || k.Staking() {
			t.Errorf("kind %d is known", uint8(k))
		}
		if _, err := k.MarshalText(); !errors.Is(err, ledger.ErrUnknownTxKind) {
			t.Errorf("MarshalText of kind %d: %v, want ErrUnknownTxKind", uint8(k), err)
		}
	}
}

// signedOfKind returns a valid, signed transaction of kind k from account
// key 0, with every field its kind uses set.
func signedOfKind(k ledger.TxKind) *ledger.Tx {
	from := ledgertest.Key("account", 0)
	op := ledgertest.Key("account", 1).PubKey().Address()
	switch k {
	case ledger.TxCreateValidator:
		return ledgertest.CreateValidator(from, ledgertest.Key("validator", 9).PubKey(), "node-9 ✓", 2000, 3, 7)
	case ledger.TxDelegate:
		return ledgertest.Delegate(from, op, 500, 3, 7)
	case ledger.TxUndelegate:
		return ledgertest.Undelegate(from, op, 500, 3, 7)
	case ledger.TxUnjail:
		return ledgertest.Unjail(from, 3, 7)
	}
	return ledgertest.Transfer(from, op, 500, 3, 7)
}

// Each kind encodes as its version and kind byte, decodes to the same
// value, and hashes its encoding. A transfer stays version 1 with no kind
// byte (its golden bytes are pinned in TestGoldenEncodings).
func TestTxKindsRoundTrip(t *testing.T) {
	for _, k := range allKinds {
		t.Run(k.String(), func(t *testing.T) {
			tx := signedOfKind(k)
			if err := tx.ValidateBasic(ledgertest.ChainID); err != nil {
				t.Fatalf("ValidateBasic: %v", err)
			}
			if err := tx.VerifySig(); err != nil {
				t.Fatalf("VerifySig: %v", err)
			}
			enc := tx.Encode()
			wantHead := []byte{2, byte(k)}
			if k == ledger.TxTransfer {
				wantHead = []byte{1, byte(len(ledgertest.ChainID))}
			}
			if !bytes.HasPrefix(enc, wantHead) {
				t.Fatalf("encoding starts %x, want %x", enc[:2], wantHead)
			}
			got, err := ledger.DecodeTx(enc)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tx) {
				t.Fatalf("decoded %+v, want %+v", got, tx)
			}
			if !bytes.Equal(got.Encode(), enc) || got.Hash() != crypto.Sum(enc) {
				t.Fatal("re-encoding or hash differs")
			}
			if err := got.VerifySig(); err != nil {
				t.Fatalf("decoded tx: VerifySig: %v", err)
			}
			// The signature is the last 64 bytes; the rest is what is signed.
			want := crypto.SignBytes(crypto.DomainTx, tx.ChainID, enc[:len(enc)-crypto.SignatureSize])
			if !bytes.Equal(tx.SignBytes(), want) {
				t.Fatal("sign bytes are not the encoding without its signature")
			}
		})
	}
}

// One transaction has one encoding: version 2 with the transfer's kind,
// an unknown kind and an unknown version are refused, whatever follows.
func TestDecodeTxRejectsNonCanonicalKinds(t *testing.T) {
	r, seed := testRand(t)
	transfer := randTx(r).Encode()
	cases := []struct {
		name string
		in   []byte
		msg  string
	}{
		// A transfer's version-1 fields under version 2 and kind 0.
		{"version 2, kind 0, transfer fields", append([]byte{2, 0}, transfer[1:]...), "transfer kind"},
		{"version 2, kind 0, delegate fields", withByte(randKindTx(r, ledger.TxDelegate).Encode(), 1, 0), "transfer kind"},
		{"version 2, kind 0, unjail fields", withByte(randKindTx(r, ledger.TxUnjail).Encode(), 1, 0), "transfer kind"},
		{"kind 5", withByte(randKindTx(r, ledger.TxUnjail).Encode(), 1, 5), "unknown transaction kind 5"},
		{"kind 0x80", withByte(randKindTx(r, ledger.TxDelegate).Encode(), 1, 0x80), "unknown transaction kind 128"},
		{"kind 0xff", withByte(randKindTx(r, ledger.TxCreateValidator).Encode(), 1, 0xff), "unknown transaction kind 255"},
		{"version 3", withByte(randKindTx(r, ledger.TxDelegate).Encode(), 0, 3), "unknown encoding version 3"},
		{"version 0", withByte(transfer, 0, 0), "unknown encoding version 0"},
		{"version 2 and nothing else", []byte{2}, "truncated"},
		{"version 2 and a kind only", []byte{2, byte(ledger.TxUnjail)}, "truncated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ledger.DecodeTx(tc.in)
			if err == nil {
				t.Fatalf("seed %d: decoded %+v", seed, v)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("seed %d: err = %v, want it to mention %q", seed, err, tc.msg)
			}
		})
	}
	// An unknown kind is ErrUnknownTxKind, in a block too.
	b := randMixedBlock(r)
	b.Txs[len(b.Txs)-1].Kind = 9
	if _, err := ledger.DecodeBlock(b.Encode()); !errors.Is(err, ledger.ErrUnknownTxKind) {
		t.Fatalf("seed %d: block with a tx of kind 9: err = %v, want ErrUnknownTxKind", seed, err)
	}
}

func withByte(b []byte, off int, v byte) []byte {
	out := bytes.Clone(b)
	out[off] = v
	return out
}

// A block of nothing but the smallest transactions decodes: the decoder's
// bound on the transaction count takes the smallest kind into account.
func TestDecodeBlockOfSmallestTxs(t *testing.T) {
	r, seed := testRand(t)
	b := randBlock(r, 0, 0, false, 0)
	for range 300 {
		tx := randKindTx(r, ledger.TxUnjail)
		tx.ChainID = ""
		b.Txs = append(b.Txs, tx)
	}
	got, err := ledger.DecodeBlock(b.Encode())
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	if len(got.Txs) != 300 || !bytes.Equal(got.Encode(), b.Encode()) {
		t.Fatalf("seed %d: block of 300 unjails does not round-trip", seed)
	}
}

func TestValidateBasicPerKind(t *testing.T) {
	key := ledgertest.Key("account", 0)
	self := key.PubKey().Address()
	op := ledgertest.Key("account", 1).PubKey().Address()
	cons := ledgertest.Key("validator", 9).PubKey()
	base := func(k ledger.TxKind) *ledger.Tx {
		tx := signedOfKind(k)
		tx.Sig = crypto.Signature{} // ValidateBasic does not look at it
		return tx
	}
	type tcase struct {
		name string
		kind ledger.TxKind
		mut  func(tx *ledger.Tx)
		want error  // sentinel, or nil
		msg  string // fragment of the error; "" for a valid tx
	}
	cases := []tcase{
		{"transfer: valid", ledger.TxTransfer, func(*ledger.Tx) {}, nil, ""},
		{"transfer: zero amount", ledger.TxTransfer, func(tx *ledger.Tx) { tx.Amount = 0 }, nil, "transfer of zero amount"},
		{"transfer: to the sender", ledger.TxTransfer, func(tx *ledger.Tx) { tx.To = self }, nil, "own account"},
		{"transfer: amount + fee overflows", ledger.TxTransfer, func(tx *ledger.Tx) { tx.Amount, tx.Fee = math.MaxUint64, 1 }, ledger.ErrInsufficientFunds, "overflows"},
		{"transfer: cons_key set", ledger.TxTransfer, func(tx *ledger.Tx) { tx.ConsKey = cons }, nil, "transfer: cons_key must be empty"},
		{"transfer: moniker set", ledger.TxTransfer, func(tx *ledger.Tx) { tx.Moniker = "x" }, nil, "transfer: moniker must be empty"},

		{"create_validator: valid", ledger.TxCreateValidator, func(*ledger.Tx) {}, nil, ""},
		{"create_validator: empty moniker", ledger.TxCreateValidator, func(tx *ledger.Tx) { tx.Moniker = "" }, nil, ""},
		{"create_validator: moniker of 64 bytes", ledger.TxCreateValidator, func(tx *ledger.Tx) { tx.Moniker = strings.Repeat("é", 32) }, nil, ""},
		{"create_validator: zero self-bond", ledger.TxCreateValidator, func(tx *ledger.Tx) { tx.Amount = 0 }, nil, "create_validator of zero amount"},
		{"create_validator: no consensus key", ledger.TxCreateValidator, func(tx *ledger.Tx) { tx.ConsKey = crypto.PubKey{} }, nil, "no consensus key"},
		{"create_validator: to set", ledger.TxCreateValidator, func(tx *ledger.Tx) { tx.To = op }, nil, "create_validator: to must be empty"},
		{"create_validator: moniker of 65 bytes", ledger.TxCreateValidator, func(tx *ledger.Tx) { tx.Moniker = strings.Repeat("m", 65) }, nil, "65 bytes, at most 64"},
		{"create_validator: moniker not UTF-8", ledger.TxCreateValidator, func(tx *ledger.Tx) { tx.Moniker = "node\xff" }, nil, "not valid UTF-8"},
		{"create_validator: moniker with a newline", ledger.TxCreateValidator, func(tx *ledger.Tx) { tx.Moniker = "node\nx" }, nil, "control character"},
		{"create_validator: moniker with DEL", ledger.TxCreateValidator, func(tx *ledger.Tx) { tx.Moniker = "node\x7f" }, nil, "control character"},
		{"create_validator: moniker with a C1 control", ledger.TxCreateValidator, func(tx *ledger.Tx) { tx.Moniker = "node\u0085" }, nil, "control character"},
		{"create_validator: self-bond + fee overflows", ledger.TxCreateValidator, func(tx *ledger.Tx) { tx.Amount, tx.Fee = math.MaxUint64, 1 }, ledger.ErrInsufficientFunds, "overflows"},

		{"delegate: valid", ledger.TxDelegate, func(*ledger.Tx) {}, nil, ""},
		{"delegate: to the sender's own validator", ledger.TxDelegate, func(tx *ledger.Tx) { tx.To = self }, nil, ""},
		{"delegate: zero amount", ledger.TxDelegate, func(tx *ledger.Tx) { tx.Amount = 0 }, nil, "delegate of zero amount"},
		{"delegate: no validator", ledger.TxDelegate, func(tx *ledger.Tx) { tx.To = crypto.Address{} }, nil, "no validator operator address"},
		{"delegate: cons_key set", ledger.TxDelegate, func(tx *ledger.Tx) { tx.ConsKey = cons }, nil, "delegate: cons_key must be empty"},
		{"delegate: moniker set", ledger.TxDelegate, func(tx *ledger.Tx) { tx.Moniker = "x" }, nil, "delegate: moniker must be empty"},
		{"delegate: amount + fee overflows", ledger.TxDelegate, func(tx *ledger.Tx) { tx.Amount, tx.Fee = 2, math.MaxUint64-1 }, ledger.ErrInsufficientFunds, "overflows"},

		{"undelegate: valid", ledger.TxUndelegate, func(*ledger.Tx) {}, nil, ""},
		// The amount leaves a delegation, not the account: it is not
		// added to the fee.
		{"undelegate: amount + fee beyond 2^64", ledger.TxUndelegate, func(tx *ledger.Tx) { tx.Amount, tx.Fee = math.MaxUint64, 1 }, nil, ""},
		{"undelegate: zero amount", ledger.TxUndelegate, func(tx *ledger.Tx) { tx.Amount = 0 }, nil, "undelegate of zero amount"},
		{"undelegate: no validator", ledger.TxUndelegate, func(tx *ledger.Tx) { tx.To = crypto.Address{} }, nil, "no validator operator address"},
		{"undelegate: cons_key set", ledger.TxUndelegate, func(tx *ledger.Tx) { tx.ConsKey = cons }, nil, "undelegate: cons_key must be empty"},
		{"undelegate: moniker set", ledger.TxUndelegate, func(tx *ledger.Tx) { tx.Moniker = "x" }, nil, "undelegate: moniker must be empty"},

		{"unjail: valid", ledger.TxUnjail, func(*ledger.Tx) {}, nil, ""},
		{"unjail: to set", ledger.TxUnjail, func(tx *ledger.Tx) { tx.To = op }, nil, "unjail: to must be empty"},
		{"unjail: amount set", ledger.TxUnjail, func(tx *ledger.Tx) { tx.Amount = 1 }, nil, "unjail: amount must be zero"},
		{"unjail: cons_key set", ledger.TxUnjail, func(tx *ledger.Tx) { tx.ConsKey = cons }, nil, "unjail: cons_key must be empty"},
		{"unjail: moniker set", ledger.TxUnjail, func(tx *ledger.Tx) { tx.Moniker = "x" }, nil, "unjail: moniker must be empty"},

		{"unknown kind", ledger.TxUnjail, func(tx *ledger.Tx) { tx.Kind = 5 }, ledger.ErrUnknownTxKind, "kind"},
	}
	for _, k := range allKinds {
		cases = append(cases, tcase{k.String() + ": wrong chain", k, func(tx *ledger.Tx) { tx.ChainID = "other" }, ledger.ErrWrongChain, `tx for chain "other"`})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx := base(tc.kind)
			tc.mut(tx)
			err := tx.ValidateBasic(ledgertest.ChainID)
			checkErr(t, err, tc.want, tc.msg)
		})
	}
}

// Changing any field a kind encodes breaks the signature; setting a field
// it does not encode (which the signature cannot cover) breaks
// ValidateBasic. So no field of a valid transaction can change unnoticed.
func TestSignatureCoversKindAndFields(t *testing.T) {
	other := ledgertest.Key("account", 2)
	fields := []struct {
		name    string
		encoded func(k ledger.TxKind) bool
		mut     func(tx *ledger.Tx)
	}{
		{"chain_id", always, func(tx *ledger.Tx) { tx.ChainID += "x" }},
		{"from", always, func(tx *ledger.Tx) { tx.From = other.PubKey() }},
		{"to", usesTo, func(tx *ledger.Tx) { tx.To[19] ^= 1 }},
		{"cons_key", isCreate, func(tx *ledger.Tx) { tx.ConsKey[0] ^= 1 }},
		{"moniker", isCreate, func(tx *ledger.Tx) { tx.Moniker += "x" }},
		{"amount", func(k ledger.TxKind) bool { return k != ledger.TxUnjail }, func(tx *ledger.Tx) { tx.Amount++ }},
		{"fee", always, func(tx *ledger.Tx) { tx.Fee++ }},
		{"nonce", always, func(tx *ledger.Tx) { tx.Nonce++ }},
	}
	for _, k := range allKinds {
		for _, f := range fields {
			t.Run(k.String()+"/"+f.name, func(t *testing.T) {
				tx := signedOfKind(k)
				f.mut(tx)
				if f.encoded(k) {
					if err := tx.VerifySig(); !errors.Is(err, ledger.ErrBadSignature) {
						t.Fatalf("changed %s of a %s: VerifySig = %v", f.name, k, err)
					}
					return
				}
				if err := tx.ValidateBasic(ledgertest.ChainID); err == nil {
					t.Fatalf("set %s, which a %s does not use: ValidateBasic accepted it", f.name, k)
				}
			})
		}
		// The kind itself: another kind with the same fields set (a
		// delegation replayed as an undelegation) does not verify.
		for _, k2 := range allKinds {
			if k2 == k {
				continue
			}
			tx := signedOfKind(k)
			tx.Kind = k2
			if tx.ValidateBasic(ledgertest.ChainID) == nil && tx.VerifySig() == nil {
				t.Errorf("a %s signed as a %s verifies", k2, k)
			}
			if (k == ledger.TxDelegate && k2 == ledger.TxUndelegate) || (k == ledger.TxUndelegate && k2 == ledger.TxDelegate) {
				if err := tx.ValidateBasic(ledgertest.ChainID); err != nil {
					t.Fatalf("the %s turned %s is not valid apart from its signature: %v", k, k2, err)
				}
				if err := tx.VerifySig(); !errors.Is(err, ledger.ErrBadSignature) {
					t.Errorf("a %s signed as a %s: VerifySig = %v", k2, k, err)
				}
			}
		}
	}
}

func always(ledger.TxKind) bool { return true }
func usesTo(k ledger.TxKind) bool {
	return k == ledger.TxTransfer || k == ledger.TxDelegate || k == ledger.TxUndelegate
}
func isCreate(k ledger.TxKind) bool { return k == ledger.TxCreateValidator }

func TestCostAndCounterparty(t *testing.T) {
	op := ledgertest.Key("account", 1).PubKey().Address()
	for _, tc := range []struct {
		kind ledger.TxKind
		cost uint64
		cp   bool
	}{
		{ledger.TxTransfer, 503, true},
		{ledger.TxCreateValidator, 2003, false},
		{ledger.TxDelegate, 503, true},
		{ledger.TxUndelegate, 3, true},
		{ledger.TxUnjail, 3, false},
	} {
		tx := signedOfKind(tc.kind)
		if got := tx.Cost(); got != tc.cost {
			t.Errorf("%s: Cost = %d, want %d", tc.kind, got, tc.cost)
		}
		a, ok := tx.Counterparty()
		if ok != tc.cp || (ok && a != op) || (!ok && !a.IsZero()) {
			t.Errorf("%s: Counterparty = %s, %v", tc.kind, a, ok)
		}
	}
}

func TestCheckTxPerKind(t *testing.T) {
	k := ledgertest.Key("account", 0)
	op := ledgertest.Key("account", 1).PubKey().Address()
	cons := ledgertest.Key("validator", 9).PubKey()
	acc := ledger.Account{Balance: 100, Nonce: 3}
	cases := []struct {
		name string
		tx   *ledger.Tx
		want error
	}{
		{"create_validator spending the whole balance", ledgertest.CreateValidator(k, cons, "v", 90, 10, 3), nil},
		{"create_validator: self-bond + fee above the balance", ledgertest.CreateValidator(k, cons, "v", 91, 10, 3), ledger.ErrInsufficientFunds},
		{"create_validator: nonce too low", ledgertest.CreateValidator(k, cons, "v", 1, 0, 2), ledger.ErrNonceTooLow},
		{"create_validator: invalid moniker", ledgertest.CreateValidator(k, cons, "v\n", 1, 0, 3), nil},
		{"delegate spending the whole balance", ledgertest.Delegate(k, op, 90, 10, 3), nil},
		{"delegate: amount + fee above the balance", ledgertest.Delegate(k, op, 90, 11, 3), ledger.ErrInsufficientFunds},
		{"delegate: nonce gap", ledgertest.Delegate(k, op, 1, 0, 4), ledger.ErrNonceGap},
		{"undelegate of more than the balance", ledgertest.Undelegate(k, op, 1_000_000, 100, 3), nil},
		{"undelegate: fee above the balance", ledgertest.Undelegate(k, op, 1, 101, 3), ledger.ErrInsufficientFunds},
		{"undelegate: nonce too low", ledgertest.Undelegate(k, op, 1, 0, 0), ledger.ErrNonceTooLow},
		{"unjail paying the whole balance", ledgertest.Unjail(k, 100, 3), nil},
		{"unjail: fee above the balance", ledgertest.Unjail(k, 101, 3), ledger.ErrInsufficientFunds},
		{"unjail: nonce gap", ledgertest.Unjail(k, 0, 9), ledger.ErrNonceGap},
		{"unjail: bad signature", func() *ledger.Tx { tx := ledgertest.Unjail(k, 1, 3); tx.Sig[0] ^= 1; return tx }(), ledger.ErrBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ledger.CheckTx(ledgertest.ChainID, acc, tc.tx)
			if tc.name == "create_validator: invalid moniker" {
				checkErr(t, err, nil, "control character")
				return
			}
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("CheckTx = %v, want %v", err, tc.want)
			}
		})
	}
}

// preKindsTx is Tx as it was before transaction kinds: the JSON of a
// transfer must not change.
type preKindsTx struct {
	ChainID string           `json:"chain_id"`
	From    crypto.PubKey    `json:"from"`
	To      crypto.Address   `json:"to"`
	Amount  uint64           `json:"amount,string"`
	Fee     uint64           `json:"fee,string"`
	Nonce   uint64           `json:"nonce,string"`
	Sig     crypto.Signature `json:"signature"`
}

func TestTxJSON(t *testing.T) {
	tr := ledgertest.GoldenTx(0)
	got, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(preKindsTx{tr.ChainID, tr.From, tr.To, tr.Amount, tr.Fee, tr.Nonce, tr.Sig})
	if !bytes.Equal(got, want) {
		t.Fatalf("a transfer's JSON changed:\n%s\nwas\n%s", got, want)
	}
	for _, k := range allKinds {
		tx := signedOfKind(k)
		b, err := json.Marshal(tx)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		s := string(b)
		if hasKind := strings.Contains(s, `"kind":`); hasKind != (k != ledger.TxTransfer) ||
			(hasKind && !strings.Contains(s, `"kind":"`+k.String()+`"`)) {
			t.Errorf("%s: JSON %s", k, s)
		}
		if has := strings.Contains(s, `"cons_key":`) || strings.Contains(s, `"moniker":`); has != (k == ledger.TxCreateValidator) {
			t.Errorf("%s: cons_key or moniker in JSON %s", k, s)
		}
		var back ledger.Tx
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: unmarshal %s: %v", k, s, err)
		}
		if !reflect.DeepEqual(&back, tx) {
			t.Errorf("%s: JSON round trip gives %+v, want %+v", k, back, *tx)
		}
	}
	// Reading: an absent, empty or null kind is a transfer; an unknown
	// name, or a number, is refused with an error naming the kind.
	base := strings.TrimSuffix(string(want), "}")
	for _, tc := range []struct {
		in   string
		kind ledger.TxKind
		msg  string
	}{
		{string(want), ledger.TxTransfer, ""},
		{base + `,"kind":""}`, ledger.TxTransfer, ""},
		{base + `,"kind":null}`, ledger.TxTransfer, ""},
		{base + `,"kind":"transfer"}`, ledger.TxTransfer, ""},
		{base + `,"kind":"unjail"}`, ledger.TxUnjail, ""},
		{base + `,"kind":"stake"}`, 0, `unknown transaction kind "stake"`},
		{base + `,"kind":"Delegate"}`, 0, `unknown transaction kind "Delegate"`},
		{base + `,"kind":2}`, 0, "kind"},
	} {
		var tx ledger.Tx
		err := json.Unmarshal([]byte(tc.in), &tx)
		if tc.msg == "" {
			if err != nil || tx.Kind != tc.kind {
				t.Errorf("%s: kind %v, err %v; want %v", tc.in, tx.Kind, err, tc.kind)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.in, err, tc.msg)
		}
	}
}
