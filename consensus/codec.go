package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/ledger"
)

// The write-ahead log stores events in a canonical binary encoding:
//
//	version (1 byte, 1) || kind (1 byte) || body
//
// with bodies
//
//	new-height:    height (8 bytes)
//	proposal:      uvarint len || ledger proposal || uvarint len || ledger block
//	vote:          uvarint len || ledger vote
//	timeout:       height (8) || round (4) || timeout kind (1)
//	propose-value: height (8) || round (4) || uvarint len || ledger block
//
// integers big-endian, lengths minimal uvarints bounded before allocation.
// DecodeEvent accepts exactly what EncodeEvent produces and never panics.

const eventCodecVersion = 1

// Event kinds in the encoding.
const (
	kindNewHeight    = 1
	kindProposal     = 2
	kindVote         = 3
	kindTimeout      = 4
	kindProposeValue = 5
)

// maxMessageBytes bounds an encoded ledger proposal or vote.
const maxMessageBytes = 1024

// EncodeEvent returns the canonical encoding of ev. It fails only for an
// event with a missing proposal, vote or block, which Step refuses anyway.
func EncodeEvent(ev Event) ([]byte, error) {
	out := []byte{eventCodecVersion}
	switch e := ev.(type) {
	case EventNewHeight:
		out = append(out, kindNewHeight)
		out = binary.BigEndian.AppendUint64(out, e.Height)
	case EventProposal:
		if e.Proposal == nil || e.Block == nil {
			return nil, errors.New("encode proposal event: missing proposal or block")
		}
		out = append(out, kindProposal)
		out = appendBytes(out, e.Proposal.Encode())
		out = appendBytes(out, e.Block.Encode())
	case EventVote:
		if e.Vote == nil {
			return nil, errors.New("encode vote event: missing vote")
		}
		out = append(out, kindVote)
		out = appendBytes(out, e.Vote.Encode())
	case EventTimeout:
		out = append(out, kindTimeout)
		out = binary.BigEndian.AppendUint64(out, e.Height)
		out = binary.BigEndian.AppendUint32(out, e.Round)
		out = append(out, byte(e.Kind))
	case EventProposeValue:
		if e.Block == nil {
			return nil, errors.New("encode propose-value event: missing block")
		}
		out = append(out, kindProposeValue)
		out = binary.BigEndian.AppendUint64(out, e.Height)
		out = binary.BigEndian.AppendUint32(out, e.Round)
		out = appendBytes(out, e.Block.Encode())
	default:
		return nil, fmt.Errorf("encode event: unknown type %T", ev)
	}
	return out, nil
}

func appendBytes(out, b []byte) []byte {
	out = binary.AppendUvarint(out, uint64(len(b)))
	return append(out, b...)
}

// eventReader reads an encoded event; the first error sticks.
type eventReader struct {
	b   []byte
	err error
}

func (r *eventReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *eventReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.fail(errors.New("input truncated"))
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *eventReader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *eventReader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *eventReader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// bytes reads a minimal-uvarint length (at most max) and that many bytes.
func (r *eventReader) bytes(what string, max int) []byte {
	if r.err != nil {
		return nil
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 || k != len(binary.AppendUvarint(nil, n)) {
		r.fail(fmt.Errorf("%s length: bad or non-minimal varint", what))
		return nil
	}
	if n > uint64(max) {
		r.fail(fmt.Errorf("%s: %d bytes, at most %d", what, n, max))
		return nil
	}
	r.b = r.b[k:]
	return r.take(int(n))
}

// DecodeEvent decodes an event written by EncodeEvent. It rejects unknown
// versions and kinds, malformed or non-canonical contents, and trailing
// bytes.
func DecodeEvent(b []byte) (Event, error) {
	r := &eventReader{b: b}
	if v := r.u8(); r.err == nil && v != eventCodecVersion {
		return nil, fmt.Errorf("decode event: unknown version %d", v)
	}
	kind := r.u8()
	var ev Event
	switch {
	case r.err != nil:
	case kind == kindNewHeight:
		ev = EventNewHeight{Height: r.u64()}
	case kind == kindProposal:
		pb := r.bytes("proposal", maxMessageBytes)
		bb := r.bytes("block", ledger.MaxBlockDecodeBytes)
		if r.err == nil {
			p, err := ledger.DecodeProposal(pb)
			r.fail(err)
			blk, err := ledger.DecodeBlock(bb)
			r.fail(err)
			ev = EventProposal{Proposal: p, Block: blk}
		}
	case kind == kindVote:
		vb := r.bytes("vote", maxMessageBytes)
		if r.err == nil {
			v, err := ledger.DecodeVote(vb)
			r.fail(err)
			ev = EventVote{Vote: v}
		}
	case kind == kindTimeout:
		e := EventTimeout{Height: r.u64(), Round: r.u32(), Kind: TimeoutKind(r.u8())}
		if r.err == nil && !e.Kind.valid() {
			r.fail(fmt.Errorf("timeout kind %d", e.Kind))
		}
		ev = e
	case kind == kindProposeValue:
		e := EventProposeValue{Height: r.u64(), Round: r.u32()}
		bb := r.bytes("block", ledger.MaxBlockDecodeBytes)
		if r.err == nil {
			blk, err := ledger.DecodeBlock(bb)
			r.fail(err)
			e.Block = blk
		}
		ev = e
	default:
		r.fail(fmt.Errorf("unknown event kind %d", kind))
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode event: %w", r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("decode event: %d trailing bytes", len(r.b))
	}
	return ev, nil
}
