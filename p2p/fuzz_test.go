package p2p

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/ledgerd/ledgerd/ledger"
)

// Every decoder of this package is fuzzed: none may panic, and whatever one
// accepts must re-encode to exactly its input (one value, one encoding).

func FuzzDecodeMessage(f *testing.F) {
	vals, keys := testVals(f)
	tc := getChain(f, 1, 3)
	blk, _ := ledger.DecodeBlock(tc.blocks[0])
	prop, parts := signedProposal(keys, 0, 4, 1, blk)
	acct := tc.c.Accounts
	tx := &ledger.Tx{ChainID: testChainID, To: acct[1].PubKey().Address(), Amount: 1}
	tx.Sign(acct[0])
	vote := signedVote(keys, 0, ledger.Precommit, 4, 1, prop.BlockID)
	ev := ledger.NewEvidence(vote, signedVote(keys, 0, ledger.Precommit, 4, 1, hashOf("other")))
	for _, seed := range [][]byte{encodeTx(tx), encodeProposal(prop), encodePart(prop, parts[0]), encodeVote(vote), encodeEvidence(ev), {}, {envelopeVersion}, {envelopeVersion, byte(kindPart), 0xff, 0xff, 0xff, 0xff, 0x0f}} {
		f.Add(seed)
	}
	c := newChecker(testChainID, staticSets{vals}, func() (uint64, uint32) { return 4, 1 })
	all := kinds(kindTx, kindProposal, kindPart, kindVote, kindEvidence)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMessage(data)
		if err == nil && !bytes.Equal(m.encode(), data) {
			t.Fatalf("decoded %s does not re-encode to its input", m.kind)
		}
		v, cm, _ := c.check(all, data, false)
		if (v == accept) != (cm != nil) || (v == accept && err != nil) {
			t.Fatalf("verdict %s with message %v and decode error %v", v, cm, err)
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	f.Add(encodeStatus(0, 1))
	f.Add(encodeStatus(1<<40, 1))
	f.Add(encodeStatus(1<<40, 77))
	f.Add(encodeStatus(50, 51))
	f.Add([]byte{2, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, base, err := decodeStatus(data)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeStatus(h, base), data) {
			t.Fatal("status does not re-encode to its input")
		}
		if base < 1 || base-1 > h {
			t.Fatalf("accepted base %d with latest height %d", base, h)
		}
	})
}

func FuzzDecodeSyncRequest(f *testing.F) {
	f.Add(syncRequest{from: 1, count: 1}.encode())
	f.Add(syncRequest{from: 1 << 50, count: MaxSyncBatch}.encode())
	f.Add(syncRequest{from: ^uint64(0), count: 2}.encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeSyncRequest(data)
		if err != nil {
			return
		}
		if !bytes.Equal(r.encode(), data) {
			t.Fatal("sync request does not re-encode to its input")
		}
		if r.count == 0 || r.count > MaxSyncBatch || r.from == 0 || r.from+uint64(r.count) < r.from {
			t.Fatalf("accepted out-of-range request %+v", r)
		}
	})
}

func FuzzDecodeSyncFrame(f *testing.F) {
	tc := getChain(f, 2, 2)
	f.Add(encodeSyncBlock(2, tc.blocks[1], tc.commits[1].Encode()))
	f.Add(encodeSyncEnd(77, 1))
	f.Add(encodeSyncEnd(77, 50))
	f.Add([]byte{syncVersion, syncKindBlock, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeSyncFrame(data)
		if err != nil {
			return
		}
		var re []byte
		if fr.end {
			re = encodeSyncEnd(fr.height, fr.base)
			if fr.base < 1 || fr.base-1 > fr.height {
				t.Fatalf("accepted base %d with latest height %d", fr.base, fr.height)
			}
		} else {
			re = encodeSyncBlock(fr.height, fr.block, fr.commit)
			// The syncer decodes the parts next; they must not panic either.
			_, _ = ledger.DecodeBlock(fr.block)
			_, _ = ledger.DecodeCommit(fr.commit)
		}
		if !bytes.Equal(re, data) {
			t.Fatal("sync frame does not re-encode to its input")
		}
	})
}

func FuzzDecodeCatchupRequest(f *testing.F) {
	f.Add(encodeCatchupRequest(1, 0))
	f.Add(encodeCatchupRequest(1<<40, ledger.MaxRound))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, r, err := decodeCatchupRequest(data)
		if err == nil && !bytes.Equal(encodeCatchupRequest(h, r), data) {
			t.Fatal("catch-up request does not re-encode to its input")
		}
	})
}

// FuzzReadFrame feeds arbitrary streams to the frame reader: it returns
// frames no larger than its bound, each exactly as long as announced, and
// errors (never panics) on anything else.
func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	_ = writeFrame(&buf, []byte("hello"))
	_ = writeFrame(&buf, nil)
	f.Add(buf.Bytes())
	f.Add([]byte{0x80})
	f.Add([]byte{0x80, 0x00})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	const max = 1 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		var out bytes.Buffer
		for {
			frame, err := readFrame(br, max)
			if err != nil {
				if errors.Is(err, io.EOF) && !bytes.Equal(out.Bytes(), data) {
					t.Fatal("clean EOF but frames do not re-encode to the input")
				}
				return
			}
			if len(frame) > max {
				t.Fatalf("frame of %d bytes, bound %d", len(frame), max)
			}
			_ = writeFrame(&out, frame)
		}
	})
}

func FuzzDecodeHello(f *testing.F) {
	_, keys := testVals(f)
	self, to := genPeerID(f), genPeerID(f)
	f.Add(newHello(testChainID, testGenesis, nil, self, to).encode())
	f.Add(newHello(testChainID, testGenesis, &keys[0], self, to).encode())
	f.Add([]byte{handshakeVersion, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := decodeHello(data)
		if err == nil && !bytes.Equal(h.encode(), data) {
			t.Fatalf("decoded hello does not re-encode to its input")
		}
	})
}
