package consensus

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestEventEncodingRoundTrips encodes every kind of event, decodes it and
// compares, and checks the encoding is canonical (decode then encode gives
// the same bytes).
func TestEventEncodingRoundTrips(t *testing.T) {
	h := newHarness(t, 3)
	events := []Event{
		EventNewHeight{Height: 7},
		h.proposal(1, 2, "A", 1, -1),
		h.vote(1, 1, 0, "A", 0),
		h.vote(2, 3, 5, "nil", 2),
		EventTimeout{Height: 9, Round: 3, Kind: TimeoutPrecommit},
		EventProposeValue{Height: 4, Round: 1, Block: h.block("B", 4)},
	}
	for _, ev := range events {
		b, err := EncodeEvent(ev)
		if err != nil {
			t.Fatalf("encode %s: %v", ev, err)
		}
		got, err := DecodeEvent(b)
		if err != nil {
			t.Fatalf("decode %s: %v", ev, err)
		}
		if !reflect.DeepEqual(normalize(got), normalize(ev)) {
			t.Fatalf("round trip of %s gave %s", ev, got)
		}
		again, _ := EncodeEvent(got)
		if !bytes.Equal(again, b) {
			t.Fatalf("%s: re-encoding differs", ev)
		}
		if EventHeight(got) != EventHeight(ev) {
			t.Fatalf("%s: height %d after decoding, want %d", ev, EventHeight(got), EventHeight(ev))
		}
	}
}

// normalize re-encodes blocks so that nil and empty slices compare equal.
func normalize(ev Event) any {
	switch e := ev.(type) {
	case EventProposal:
		return [2]string{string(e.Proposal.Encode()), string(e.Block.Encode())}
	case EventProposeValue:
		return [3]any{e.Height, e.Round, string(e.Block.Encode())}
	}
	return ev
}

// TestDecodeEventRejectsDamage flips, truncates and extends valid
// encodings: every result either fails to decode or re-encodes to itself.
func TestDecodeEventRejectsDamage(t *testing.T) {
	h := newHarness(t, 3)
	var valid [][]byte
	for _, ev := range []Event{EventNewHeight{Height: 1}, h.proposal(1, 0, "A", -1, -1), h.vote(1, 1, 0, "A", 1),
		EventTimeout{Height: 1, Kind: TimeoutPropose}, EventProposeValue{Height: 1, Block: h.block("A", 1)}} {
		b, _ := EncodeEvent(ev)
		valid = append(valid, b)
	}
	r := rand.New(rand.NewPCG(3, 3))
	for _, b := range valid {
		if _, err := DecodeEvent(append(bytes.Clone(b), 0)); err == nil {
			t.Fatal("trailing byte accepted")
		}
		for cut := 0; cut < len(b); cut++ {
			if _, err := DecodeEvent(b[:cut]); err == nil {
				t.Fatalf("truncation to %d of %d bytes accepted", cut, len(b))
			}
		}
		for i := 0; i < 200; i++ {
			d := bytes.Clone(b)
			d[r.IntN(len(d))] ^= byte(1 + r.IntN(255))
			if ev, err := DecodeEvent(d); err == nil {
				if again, _ := EncodeEvent(ev); !bytes.Equal(again, d) {
					t.Fatal("a damaged encoding decoded to an event with another encoding")
				}
			}
		}
	}
}

// FuzzDecodeEvent checks that decoding never panics and that whatever
// decodes re-encodes to the same bytes.
func FuzzDecodeEvent(f *testing.F) {
	h := newHarness(f, 3)
	for _, ev := range []Event{EventNewHeight{Height: 1}, h.proposal(1, 0, "A", -1, -1), h.vote(1, 1, 0, "A", 1),
		EventTimeout{Height: 1, Kind: TimeoutPropose}, EventProposeValue{Height: 1, Block: h.block("A", 1)}} {
		b, _ := EncodeEvent(ev)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeEvent(b)
		if err != nil {
			return
		}
		again, err := EncodeEvent(ev)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded %s re-encodes differently (%v)", ev, err)
		}
	})
}
