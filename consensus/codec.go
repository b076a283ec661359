package consensus

import (
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/wire"
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
	w := wire.NewWriter(nil)
	w.U8(eventCodecVersion)
	switch e := ev.(type) {
	case EventNewHeight:
		w.U8(kindNewHeight)
		w.U64(e.Height)
	case EventProposal:
		if e.Proposal == nil || e.Block == nil {
			return nil, errors.New("encode proposal event: missing proposal or block")
		}
		w.U8(kindProposal)
		w.Prefixed(e.Proposal.Encode())
		w.Prefixed(e.Block.Encode())
	case EventVote:
		if e.Vote == nil {
			return nil, errors.New("encode vote event: missing vote")
		}
		w.U8(kindVote)
		w.Prefixed(e.Vote.Encode())
	case EventTimeout:
		w.U8(kindTimeout)
		w.U64(e.Height)
		w.U32(e.Round)
		w.U8(byte(e.Kind))
	case EventProposeValue:
		if e.Block == nil {
			return nil, errors.New("encode propose-value event: missing block")
		}
		w.U8(kindProposeValue)
		w.U64(e.Height)
		w.U32(e.Round)
		w.Prefixed(e.Block.Encode())
	default:
		return nil, fmt.Errorf("encode event: unknown type %T", ev)
	}
	return w.Bytes(), nil
}

// DecodeEvent decodes an event written by EncodeEvent. It rejects unknown
// versions and kinds, malformed or non-canonical contents, and trailing
// bytes.
func DecodeEvent(b []byte) (Event, error) {
	r := wire.NewReader(b)
	r.Version("event", eventCodecVersion)
	kind := r.U8()
	var ev Event
	switch {
	case r.Err() != nil:
	case kind == kindNewHeight:
		ev = EventNewHeight{Height: r.U64()}
	case kind == kindProposal:
		pb := r.Prefixed("proposal", maxMessageBytes)
		bb := r.Prefixed("block", ledger.MaxBlockDecodeBytes)
		if r.Err() == nil {
			p, err := ledger.DecodeProposal(pb)
			r.Fail(err)
			blk, err := ledger.DecodeBlock(bb)
			r.Fail(err)
			ev = EventProposal{Proposal: p, Block: blk}
		}
	case kind == kindVote:
		vb := r.Prefixed("vote", maxMessageBytes)
		if r.Err() == nil {
			v, err := ledger.DecodeVote(vb)
			r.Fail(err)
			ev = EventVote{Vote: v}
		}
	case kind == kindTimeout:
		e := EventTimeout{Height: r.U64(), Round: r.U32(), Kind: TimeoutKind(r.U8())}
		if r.Err() == nil && !e.Kind.valid() {
			r.Fail(fmt.Errorf("timeout kind %d", e.Kind))
		}
		ev = e
	case kind == kindProposeValue:
		e := EventProposeValue{Height: r.U64(), Round: r.U32()}
		bb := r.Prefixed("block", ledger.MaxBlockDecodeBytes)
		if r.Err() == nil {
			blk, err := ledger.DecodeBlock(bb)
			r.Fail(err)
			e.Block = blk
		}
		ev = e
	default:
		r.Fail(fmt.Errorf("unknown event kind %d", kind))
	}
	if err := r.Finish("event"); err != nil {
		return nil, err
	}
	return ev, nil
}
