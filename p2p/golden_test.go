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
	snapReq := func(b []byte) ([]byte, error) {
		q, err := decodeSnapshotRequest(b)
		return q.encode(), err
	}
	snapAns := func(b []byte) ([]byte, error) {
		a, err := decodeSnapshotResponse(b)
		return a.encode(), err
	}
	lightReq := func(b []byte) ([]byte, error) {
		h, err := decodeLightBlockRequest(b)
		return encodeLightBlockRequest(h), err
	}
	lightAns := func(b []byte) ([]byte, error) {
		a, err := decodeLightBlockAnswer(b)
		return a.encode(), err
	}
	offers := []SnapshotOffer{
		{Height: 2000, Format: 1, Chunks: 40, ManifestHash: lt.GoldenHash(0x50)},
		{Height: 1000, Format: 1, Chunks: 38, ManifestHash: lt.GoldenHash(0x60)},
	}
	vals, err := ledger.NewValidatorSet([]ledger.Validator{
		{PubKey: lt.GoldenPub(0x20), Power: 10, Name: "alpha", Operator: lt.GoldenAddr(0x70)},
		{PubKey: lt.GoldenPub(0x90), Power: 7},
	})
	if err != nil {
		t.Fatal(err)
	}
	light := lightBlockAnswer{height: 42, status: snapFound, header: lt.GoldenBlock().Header.Encode(), commit: commit, validators: vals.Encode()}
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
		{Name: "status with base", Got: encodeStatus(1<<40+3, 1<<40-5), Size: 17, SHA256: "9e601a2c508fa87de56b3e4d83bd76bd74b8a2f4f64ca78e4149ce3378bc9daa", Decode: status},
		{Name: "sync end with base", Got: encodeSyncEnd(1<<40+3, 1<<40-5), Size: 18, SHA256: "233c73f25e74a3c38d84f87f044676b71b0b5a4100b5d6649ee5471a329c1fa0", Decode: syncFr},
		{Name: "snapshot offers request", Got: snapshotRequest{kind: snapKindOffers}.encode(), Size: 2, SHA256: "9dcf97a184f32623d11a73124ceb99a5709b083721e878a16d78f596718ba7b2", Decode: snapReq},
		{Name: "snapshot manifest request", Got: snapshotRequest{kind: snapKindManifest, height: 2000}.encode(), Size: 10, SHA256: "81b629010975e1072d103cc99ee60152d3b5a9ab68e757549dea2eac61e62c4e", Decode: snapReq},
		{Name: "snapshot chunk request", Got: snapshotRequest{kind: snapKindChunk, height: 2000, index: 39}.encode(), Size: 14, SHA256: "521298443117002cf948711305ff630502ec5254f60a3fb241b8fde7a7765855", Decode: snapReq},
		{Name: "snapshot offers", Got: (&snapshotResponse{kind: snapKindOffers, status: snapFound, offers: offers}).encode(), Size: 100, SHA256: "a9171a6f798971c4e7d2fa8712635d293f51cfc81d8ff8cc514227ec195e51ca", Decode: snapAns},
		{Name: "snapshot manifest", Got: (&snapshotResponse{kind: snapKindManifest, height: 2000, status: snapFound, body: lt.Pattern(1, 64)}).encode(), Size: 76, SHA256: "2d06a5af1a4a33b7b0ca83227f766fe4f98db74a253db2e0a8c87838419da13b", Decode: snapAns},
		{Name: "snapshot chunk", Got: (&snapshotResponse{kind: snapKindChunk, height: 2000, index: 39, status: snapFound, body: lt.Pattern(7, 300)}).encode(), Size: 317, SHA256: "f8f5160fb6c0cbccbd7e6611850c7cb56de781662d3a6501a16772d49efbba85", Decode: snapAns},
		{Name: "snapshot chunk busy", Got: (&snapshotResponse{kind: snapKindChunk, height: 2000, index: 39, status: snapBusy}).encode(), Size: 15, SHA256: "7ec72d8aa2fa7c1cd70ce7234e031a036911c2dcb9676eeb4a4abe03391809d2", Decode: snapAns},
		{Name: "light block request", Got: encodeLightBlockRequest(42), Size: 9, SHA256: "cdc83b3646f81308d00fc9e4e611b98e726e9fb2ccb2b802c0c9c710fb6b06d3", Decode: lightReq},
		{Name: "light block", Got: light.encode(), Size: 601, SHA256: "0c52c29e61663486e99285f272a8176f236c7a7347047645864ace293221acb1", Decode: lightAns},
		{Name: "light block not found", Got: (&lightBlockAnswer{height: 42, status: snapNotFound}).encode(), Size: 10, SHA256: "0b0b9d3e34d699a4569bae1c500eb439738a4c6d70d9c8029cedeaf15884b2b1", Decode: lightAns},
		{Name: "catch-up request", Got: encodeCatchupRequest(42, 300), Size: 13, SHA256: "8ae18e8c13692be909cf9ce370045b45046efc9a761adeb6dd7c190ce1203793", Decode: catchup},
		{Name: "hello", Got: (&hello{chainID: lt.GoldenChainID, genesis: genesis}).encode(), Size: 47, SHA256: "db690d176dc9a2e4a1c0a81f5112309f6750255019f8a59603a2b536d042187e", Decode: helloRe},
		{Name: "validator hello", Got: (&hello{chainID: lt.GoldenChainID, genesis: genesis, validator: &val, sig: lt.GoldenSig(0x40)}).encode(), Size: 143, SHA256: "ef117ca83f321df1fc9c94bd8eb12499736eceb38fec4b2aa0504043d7b86fe6", Decode: helloRe},
		{Name: "handshake sign bytes", Got: handshakeSignBytes(lt.GoldenChainID, genesis, peer.ID("golden-peer-a"), peer.ID("golden-peer-b")), Size: 102, SHA256: "0548f4dff2888a6810fcafb19a57d3e61070bc79cf949727f6793bf2ab68884a"},
	})
}
