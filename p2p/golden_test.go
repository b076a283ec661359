package p2p

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ledgerd/ledgerd/ledger"
	lt "github.com/ledgerd/ledgerd/ledger/ledgertest"
)

// TestGoldenWireEncodings pins every message this package puts on the wire
// byte for byte: nodes of different builds must understand each other.
func TestGoldenWireEncodings(t *testing.T) {
	prop := lt.GoldenProposal()
	chunks := [][]byte{lt.Pattern(0, 100), lt.Pattern(100, 100)}
	part := lt.GoldenPart(chunks, 1)
	vote := lt.GoldenVote(ledger.Prevote, lt.GoldenHash(0x40))
	blk := lt.GoldenBlock().Encode()
	commit := lt.GoldenCommit(2).Encode()
	val := lt.GoldenPub(0x20)
	genesis := lt.GoldenHash(0x30)

	message := func(b []byte) ([]byte, error) {
		m, err := decodeMessage(b)
		if err != nil {
			return nil, err
		}
		return m.encode(), nil
	}
	status := func(b []byte) ([]byte, error) {
		h, base, err := decodeStatus(b)
		return encodeStatus(h, base), err
	}
	syncReq := func(b []byte) ([]byte, error) {
		r, err := decodeSyncRequest(b)
		return r.encode(), err
	}
	syncFr := func(b []byte) ([]byte, error) {
		f, err := decodeSyncFrame(b)
		if f.end {
			return encodeSyncEnd(f.height, f.base), err
		}
		return encodeSyncBlock(f.height, f.block, f.commit), err
	}
	catchup := func(b []byte) ([]byte, error) {
		h, r, err := decodeCatchupRequest(b)
		return encodeCatchupRequest(h, r), err
	}
	helloRe := func(b []byte) ([]byte, error) {
		h, err := decodeHello(b)
		if err != nil {
			return nil, err
		}
		return h.encode(), nil
	}
	lt.CheckGolden(t, []lt.GoldenEncoding{
		{Name: "tx message", Got: encodeTxs([]*ledger.Tx{lt.GoldenTx(0), lt.GoldenTx(1)}), Size: 318, SHA256: "da70236a87703e22c8ddd0dfd57337c6b26a4053538b20096b49150424a75d3f", Decode: message},
		{Name: "proposal message", Got: encodeProposal(prop), Size: 171, SHA256: "12e3a1cf5a6c99ad3becdac877b5b97e0421a5fb376fea6477f51a855a14a1df", Decode: message},
		{Name: "part message", Got: encodePart(prop, part), Size: 316, SHA256: "46e4fe3123620baf431f98fdc142718c518bc83943a96d2531db05a4379a5235", Decode: message},
		{Name: "vote message", Got: encodeVote(vote), Size: 132, SHA256: "98ca7005c36b1963c2c7349e6ac696cc04fbf064364fca676c452dea2926cc3e", Decode: message},
		{Name: "evidence message", Got: encodeEvidence(lt.GoldenEvidence()), Size: 262, SHA256: "90529e53fd37d97f1477f4bbebc9e8d1422a3c6aa822bcc1c59cd4f138195bbc", Decode: message},
		{Name: "status", Got: encodeStatus(1<<40+3, 1), Size: 9, SHA256: "de922ae088455ffd6d78f4304fa9ccf2eca666735c82df1fbbb24b46b94bd58e", Decode: status},
		{Name: "sync request", Got: syncRequest{from: 1 << 33, count: MaxSyncBatch}.encode(), Size: 13, SHA256: "2f041860bf210cac078bc96c7e175146c5d33cbc296853931b16841d8706a854", Decode: syncReq},
		{Name: "sync block", Got: encodeSyncBlock(42, blk, commit), Size: 1224, SHA256: "7c3dfc7864c7caa1754ef4f5a7d33dcfec676c4d82407bdb7e53f578f363ca22", Decode: syncFr},
		{Name: "sync end", Got: encodeSyncEnd(1<<40+3, 1), Size: 10, SHA256: "232204e7cc02c9856317d3794142d61576ea465fbd935f9a3f1f713bbc3936c7", Decode: syncFr},
		{Name: "catch-up request", Got: encodeCatchupRequest(42, 300), Size: 13, SHA256: "8ae18e8c13692be909cf9ce370045b45046efc9a761adeb6dd7c190ce1203793", Decode: catchup},
		{Name: "hello", Got: (&hello{chainID: lt.GoldenChainID, genesis: genesis}).encode(), Size: 47, SHA256: "db690d176dc9a2e4a1c0a81f5112309f6750255019f8a59603a2b536d042187e", Decode: helloRe},
		{Name: "validator hello", Got: (&hello{chainID: lt.GoldenChainID, genesis: genesis, validator: &val, sig: lt.GoldenSig(0x40)}).encode(), Size: 143, SHA256: "ef117ca83f321df1fc9c94bd8eb12499736eceb38fec4b2aa0504043d7b86fe6", Decode: helloRe},
		{Name: "handshake sign bytes", Got: handshakeSignBytes(lt.GoldenChainID, genesis, peer.ID("golden-peer-a"), peer.ID("golden-peer-b")), Size: 102, SHA256: "0548f4dff2888a6810fcafb19a57d3e61070bc79cf949727f6793bf2ab68884a"},
	})
}
