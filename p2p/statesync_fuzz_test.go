package p2p

import (
	"bytes"
	"testing"
)

// Fuzz targets of the state-sync decoders: none may panic, whatever one
// accepts re-encodes to exactly its input, and accepted values are within
// the protocol's bounds.

func FuzzDecodeSnapshotRequest(f *testing.F) {
	f.Add(snapshotRequest{kind: snapKindOffers}.encode())
	f.Add(snapshotRequest{kind: snapKindManifest, height: 100}.encode())
	f.Add(snapshotRequest{kind: snapKindChunk, height: 100, index: 7}.encode())
	f.Add(snapshotRequest{kind: snapKindChunk, height: 1, index: MaxSnapshotChunks}.encode())
	f.Add(snapshotRequest{kind: snapKindPrio, height: 100}.encode())
	f.Add([]byte{snapshotVersion, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := decodeSnapshotRequest(data)
		if err != nil {
			return
		}
		if !bytes.Equal(q.encode(), data) {
			t.Fatal("snapshot request does not re-encode to its input")
		}
		if (q.kind != snapKindOffers && q.height == 0) || q.index >= MaxSnapshotChunks {
			t.Fatalf("accepted out-of-range request %+v", q)
		}
	})
}

func FuzzDecodeSnapshotResponse(f *testing.F) {
	s := makeSnapshot(100, 1, 3, 64, 0)
	old := makeSnapshot(90, 2, 2, 64, 0)
	for _, a := range []snapshotResponse{
		{kind: snapKindOffers, status: snapFound, offers: []SnapshotOffer{s.offer, old.offer}},
		{kind: snapKindOffers, status: snapFound},
		{kind: snapKindOffers, status: snapBusy},
		{kind: snapKindManifest, height: 100, status: snapFound, body: s.manifest},
		{kind: snapKindManifest, height: 100, status: snapNotFound},
		{kind: snapKindChunk, height: 100, index: 2, status: snapFound, body: s.chunks[2]},
		{kind: snapKindChunk, height: 100, index: 2, status: snapBusy},
		{kind: snapKindPrio, height: 100, status: snapFound, body: bytes.Repeat([]byte{5}, 80)},
		{kind: snapKindPrio, height: 100, status: snapNotFound},
	} {
		f.Add(a.encode())
	}
	f.Add([]byte{snapshotVersion, snapKindOffers, snapFound, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := decodeSnapshotResponse(data)
		if err != nil {
			return
		}
		if !bytes.Equal(a.encode(), data) {
			t.Fatal("snapshot answer does not re-encode to its input")
		}
		if len(a.offers) > MaxSnapshotOffers || len(a.body) > MaxChunkBytes || (a.kind == snapKindManifest && len(a.body) > MaxManifestBytes) ||
			(a.kind == snapKindPrio && len(a.body) > MaxSnapshotPrioritiesBytes) {
			t.Fatalf("accepted an answer over the bounds: %d offers, %d bytes", len(a.offers), len(a.body))
		}
		for i, o := range a.offers {
			if checkOffer(o) != nil || (i > 0 && compareOffers(a.offers[i-1], o) >= 0) {
				t.Fatalf("accepted offer %d %+v out of range or order", i, o)
			}
		}
	})
}

func FuzzDecodeLightBlockRequest(f *testing.F) {
	f.Add(encodeLightBlockRequest(1))
	f.Add(encodeLightBlockRequest(1 << 40))
	f.Add([]byte{lightBlockVersion, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := decodeLightBlockRequest(data)
		if err != nil {
			return
		}
		if h == 0 || !bytes.Equal(encodeLightBlockRequest(h), data) {
			t.Fatalf("light block request %d accepted from %x", h, data)
		}
	})
}

func FuzzDecodeLightBlockAnswer(f *testing.F) {
	tc := getChain(f, 3, 2)
	lb, err := newLightHandler(tc, 3).LightBlock(2)
	if err != nil {
		f.Fatal(err)
	}
	found := lightBlockAnswer{height: 2, status: snapFound, header: lb.Header.Encode(), commit: lb.Commit.Encode(), validators: lb.Validators.Encode()}
	f.Add(found.encode())
	f.Add((&lightBlockAnswer{height: 2, status: snapNotFound}).encode())
	f.Add((&lightBlockAnswer{height: 9, status: snapBusy}).encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := decodeLightBlockAnswer(data)
		if err != nil {
			return
		}
		if !bytes.Equal(a.encode(), data) {
			t.Fatal("light block answer does not re-encode to its input")
		}
		if a.status == snapFound {
			// The client parses the items next; that must not panic either.
			if lb, err := a.parse(testChainID, a.height, "fuzz"); err == nil && lb.Height() != a.height {
				t.Fatalf("light block of height %d accepted as %d", lb.Height(), a.height)
			}
		}
	})
}
