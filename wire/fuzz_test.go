package wire

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

// FuzzReader feeds arbitrary input through an arbitrary sequence of reads
// (ops picks each read and its limit) and checks that the Reader never
// panics, never reads past a bound it was given, keeps its first error, and
// is canonical: writing every value it returned with the matching Writer
// method gives back exactly the bytes it consumed.
func FuzzReader(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4}, []byte("0123456789abcdefghijklmn"))
	f.Add([]byte{6, 0x16, 0x36, 0xf6}, []byte{0xac, 0x02, 0x80, 0x01, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{7 | 0x40, 8 | 0x30, 9 | 0xf0, 13}, []byte{2, 1, 2, 3, 4, 3, 'a', 'b', 'c', 1, 'x', 9})
	f.Add([]byte{11 | 0x10, 5, 10 | 0x20, 12}, []byte{1, 1, 0xaa, 0xbb, 0xcc})
	f.Add([]byte{6}, []byte{0x80, 0x00})
	f.Add([]byte{8 | 0xf0}, []byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, ops, in []byte) {
		r := NewReader(in)
		var w Writer // every value read, written back
		var first error
		for _, op := range ops[:min(len(ops), 64)] {
			before := r.Len()
			arg := int(op >> 4) // 0 to 15
			switch op % 14 {
			case 0:
				if v := r.U8(); r.Err() == nil {
					w.U8(v)
				}
			case 1:
				if v := r.U16(); r.Err() == nil {
					w.U16(v)
				}
			case 2:
				if v := r.U32(); r.Err() == nil {
					w.U32(v)
				}
			case 3:
				if v := r.U64(); r.Err() == nil {
					w.U64(v)
				}
			case 4:
				if v := r.I64(); r.Err() == nil {
					w.I64(v)
				}
			case 5:
				if v := r.Bool("flag"); r.Err() == nil {
					w.Bool(v)
				}
			case 6:
				limit := uint64(math.MaxUint64) >> (4 * arg)
				if v := r.Uvarint("varint", limit); r.Err() == nil {
					if v > limit {
						t.Fatalf("Uvarint returned %d over its limit %d", v, limit)
					}
					w.Uvarint(v)
				}
			case 7:
				minSize := int(op>>6) + arg%2 // 0 to 4
				if n := r.Count("items", arg, minSize); r.Err() == nil {
					if n < 0 || n > arg || n*minSize > r.Len() {
						t.Fatalf("Count returned %d: limit %d, %d bytes left, at least %d each", n, arg, r.Len(), minSize)
					}
					w.Uvarint(uint64(n))
				}
			case 8:
				limit := 4*arg - 3 // -3 to 57
				if b := r.Prefixed("field", limit); r.Err() == nil {
					if len(b) > max(limit, 0) || cap(b) != len(b) {
						t.Fatalf("Prefixed returned %d bytes (cap %d) under limit %d", len(b), cap(b), limit)
					}
					w.Prefixed(b)
				}
			case 9:
				if s := r.PrefixedString("name", 2*arg); r.Err() == nil {
					if len(s) > 2*arg {
						t.Fatalf("PrefixedString returned %d bytes under limit %d", len(s), 2*arg)
					}
					w.PrefixedString(s)
				}
			case 10:
				dst := make([]byte, arg)
				if r.Fixed(dst); r.Err() == nil {
					w.Fixed(dst)
				}
			case 11:
				if r.Version("value", uint8(arg)); r.Err() == nil {
					w.U8(uint8(arg))
				}
			case 12:
				n := arg - 2 // negative counts must fail, not panic
				if b := r.Take(n); r.Err() == nil {
					if len(b) != n || cap(b) != n {
						t.Fatalf("Take(%d) returned %d bytes (cap %d)", n, len(b), cap(b))
					}
					w.Fixed(b)
				}
			case 13:
				if b := r.Rest(); r.Err() == nil {
					w.Fixed(b)
				}
			}
			switch {
			case first != nil:
				if r.Err() != first || r.Len() != 0 {
					t.Fatalf("after the error %v: err %v, Len %d", first, r.Err(), r.Len())
				}
			case r.Err() != nil:
				first = r.Err()
			case r.Len() > before || r.Len() < 0:
				t.Fatalf("Len went from %d to %d", before, r.Len())
			}
		}
		fin := r.Finish("fuzz")
		if first != nil {
			if !errors.Is(fin, first) {
				t.Fatalf("Finish = %v, want it to wrap %v", fin, first)
			}
			return
		}
		consumed := len(in) - r.Len()
		if !bytes.Equal(w.Bytes(), in[:consumed]) {
			t.Fatalf("read %x, its values write as %x", in[:consumed], w.Bytes())
		}
		if (fin == nil) != (consumed == len(in)) || (fin != nil && !errors.Is(fin, ErrTrailingBytes)) {
			t.Fatalf("Finish = %v with %d of %d bytes read", fin, consumed, len(in))
		}
	})
}
