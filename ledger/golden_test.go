package ledger_test

import (
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
	lt "github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// TestGoldenEncodings pins the canonical encoding of every ledger type and
// of the bytes signed and hashed over them. Block hashes, signatures, the
// WAL and stored databases all depend on these bytes, so a change to any of
// them is a change of the chain's format, never a refactoring.
func TestGoldenEncodings(t *testing.T) {
	h := lt.GoldenHeader()
	ev := lt.GoldenEvidence()
	evKey := ev.Key()
	evRoot := ledger.EvidenceRootOf([]*ledger.Evidence{ev})
	p := lt.GoldenProposal()
	vote := lt.GoldenVote(ledger.Prevote, lt.GoldenHash(0x40))
	chunks := [][]byte{lt.Pattern(0, 100), lt.Pattern(100, 100), lt.Pattern(200, 17)}
	vals, err := ledger.NewValidatorSet([]ledger.Validator{{PubKey: lt.GoldenPub(0x20), Power: 10, Name: "golden-a", Operator: lt.GoldenAddr(0x30)}, {PubKey: lt.GoldenPub(0x21), Power: 1 << 40}})
	if err != nil {
		t.Fatal(err)
	}
	valsHash := vals.Hash()
	lt.CheckGolden(t, []lt.GoldenEncoding{
		{Name: "tx", Got: lt.GoldenTx(0).Encode(), Size: 154, SHA256: "fbbb3d3d0a379d6e2b8412bba34b78007a572a2d91ba554d11ed0b55b2c9f8f4", Decode: reencode(decodeTx)},
		{Name: "tx sign bytes", Got: lt.GoldenTx(0).SignBytes(), Size: 121, SHA256: "ac20e65fd063e4c80e75e6fbc6cb7cf3839cab646249c5bf36a8db9fddd93675"},
		{Name: "tx with empty chain ID", Got: (&ledger.Tx{}).Encode(), Size: 142, SHA256: "6e421a50cc3e6e5718ae467a0a1bd614b3096fc1562a64ae65bbd9248df1d13b", Decode: reencode(decodeTx)},
		{Name: "create_validator tx", Got: lt.GoldenStakingTx(ledger.TxCreateValidator).Encode(), Size: 187, SHA256: "8ca3bf15010b5527e24b78f9923c305f0f892d81e30242fa87fa59e9e157f3d9", Decode: reencode(decodeTx)},
		{Name: "create_validator tx sign bytes", Got: lt.GoldenStakingTx(ledger.TxCreateValidator).SignBytes(), Size: 154, SHA256: "a5ab89bd5882084079fd22a2ec90d44fb9c37cda013a46a773873cbb41bfda3e"},
		{Name: "delegate tx", Got: lt.GoldenStakingTx(ledger.TxDelegate).Encode(), Size: 155, SHA256: "8edc370dbe21e88c2f9848d960663d58144cc9d8fe0d49f32eabc0fb79895312", Decode: reencode(decodeTx)},
		{Name: "delegate tx sign bytes", Got: lt.GoldenStakingTx(ledger.TxDelegate).SignBytes(), Size: 122, SHA256: "e1ab59ec48db8ed1e7bbe8836dbb7378abaf84ee90b8c1cf3dd63addaf36f53c"},
		{Name: "undelegate tx", Got: lt.GoldenStakingTx(ledger.TxUndelegate).Encode(), Size: 155, SHA256: "a9dc0e64f52b33a09b50e218ab36ba91d193348e9028d88d46e4a97ba21283e6", Decode: reencode(decodeTx)},
		{Name: "undelegate tx sign bytes", Got: lt.GoldenStakingTx(ledger.TxUndelegate).SignBytes(), Size: 122, SHA256: "8a547143a65720c77d70ed5ebbca7aa0055e89bd2c95722aceb2b01d9481f9a4"},
		{Name: "unjail tx", Got: lt.GoldenStakingTx(ledger.TxUnjail).Encode(), Size: 127, SHA256: "2f955e218ce508c47035d927a5f8eb1f441ce7cbf09ee3c144c1af0ba2e95f9a", Decode: reencode(decodeTx)},
		{Name: "unjail tx sign bytes", Got: lt.GoldenStakingTx(ledger.TxUnjail).SignBytes(), Size: 94, SHA256: "b29cf11e3fd2bd06d2eecf1fe7f870b73bd8e3af8229d08887330f1374e2494e"},
		{Name: "header", Got: h.Encode(), Size: 274, SHA256: "7e0970ae3a94014146f93982a84a5b8c6099375a222ac16f41a5456bd3703862", Decode: reencode(decodeHeader)},
		{Name: "block", Got: lt.GoldenBlock().Encode(), Size: 1028, SHA256: "e81c36122c36c356f48ff02b00cf293d66be37e5712c72e2ad1d1700d9cf34ed", Decode: reencode(decodeBlock)},
		{Name: "block without txs, evidence or last commit", Got: (&ledger.Block{Header: h}).Encode(), Size: 278, SHA256: "390d61e560b839fe6e8d62440999adc17b7cc9fb7b1c13ebcc2d1641c6d21aa3", Decode: reencode(decodeBlock)},
		{Name: "vote", Got: vote.Encode(), Size: 130, SHA256: "1d5cd26d4ee73b73f35861bcaae2b82317131aae6cab310608dff83152e3b762", Decode: reencode(decodeVote)},
		{Name: "vote sign bytes", Got: vote.SignBytes(lt.GoldenChainID), Size: 79, SHA256: "4cf6e804813b019756cf4bb6c2e5b5a0dbc34747d38bf23b23ffdf6461c9f935"},
		{Name: "proposal", Got: p.Encode(), Size: 169, SHA256: "bb8718ae7220622e03ce05288765286d3e1e87fe09e6261dafcb35a223c13f8d", Decode: reencode(decodeProposal)},
		{Name: "proposal sign bytes", Got: p.SignBytes(lt.GoldenChainID), Size: 122, SHA256: "30150f9f5e40ed4ffadb42fb9a9eb76a53d4961a1d858f237fa6cd4f0d962e4d"},
		{Name: "commit", Got: lt.GoldenCommit(2).Encode(), Size: 182, SHA256: "ccf008b64e9b6aa57d1798abcad9d0d01022185026787dbc0a5d1ea7f97e7413", Decode: reencode(decodeCommit)},
		{Name: "commit of no signatures", Got: lt.GoldenCommit(0).Encode(), Size: 46, SHA256: "c1dd12bf13a48ec04528cf852a197130cfb796bfef71428a0b2f22ba016c4350", Decode: reencode(decodeCommit)},
		{Name: "evidence", Got: ev.Encode(), Size: 260, SHA256: "c084ffff20394b0a3f21154e421579d9174800f7fa9c08259bf8376c20341149", Decode: reencode(decodeEvidence)},
		{Name: "evidence key", Got: evKey[:], Size: 32, SHA256: "92fe48b49d0beed7d1f5d5b1a8067c1ce9315c58efc35ebced21a9f0a20c9277"},
		{Name: "evidence root", Got: evRoot[:], Size: 32, SHA256: "b2742136a79b5fbb1d9b3463b69c5c9bdd66e45f8bfdd5cda8f69407b2ca07a3"},
		{Name: "evidence record", Got: ledger.EvidenceRecord(1 << 40), Size: 9, SHA256: "f90e5009752c32dd926dc9c53c95b7ad0f67fdba84b422d9f37e5d9790a00315"},
		{Name: "validator set hash", Got: valsHash[:], Size: 32, SHA256: "8b2b77a24a06112529c53eb599d13856caef2d9e9820cdb939f97e6117a4bf2e"},
		{Name: "validator set", Got: vals.Encode(), Size: 132, SHA256: "0cc8e0af290b2012cc4fdba0f36a4ffe2102d21a2c3565ea2ea423ad2d6b8954", Decode: reencode(decodeValidatorSet)},
		{Name: "account", Got: ledger.Account{Balance: 1_000_000_007, Nonce: 300}.Encode(), Size: 17, SHA256: "11963187ad6f1b09a600fc01675584f094a145ebe1b4b3cdfb8e594ac87c5119", Decode: reencode(decodeAccount)},
		{Name: "middle part", Got: lt.GoldenPart(chunks, 1).Encode(), Size: 175, SHA256: "09210445718e06c2e43c5f616e66b24e9d129257326b26ae4e3dbfa2545fcd8c", Decode: reencode(decodePart)},
		{Name: "only part", Got: lt.GoldenPart(chunks[:1], 0).Encode(), Size: 111, SHA256: "42a8916ca35a5dc61ef3c4b37d418126f1d264f52e290a448c53ee85375f2a2f", Decode: reencode(decodePart)},
	})
}

// reencode turns a decoder into a GoldenEncoding.Decode: decode, then
// encode what came out.
func reencode(decode decodeFunc) func([]byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) {
		v, err := decode(b)
		if err != nil {
			return nil, err
		}
		return encodeAny(v), nil
	}
}
