package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layoutCases are the byte layouts of every primitive, written out by hand
// from the format's rules (big-endian fixed widths, minimal uvarints,
// uvarint length prefixes), not taken from the code under test. Each
// writes a value and reads it back.
var layoutCases = []struct {
	name  string
	write func(w *Writer)
	want  string
	read  func(r *Reader) any
	value any
}{
	{"u8", func(w *Writer) { w.U8(0xab) }, "ab", func(r *Reader) any { return r.U8() }, uint8(0xab)},
	{"u16", func(w *Writer) { w.U16(0x0102) }, "0102", func(r *Reader) any { return r.U16() }, uint16(0x0102)},
	{"u32", func(w *Writer) { w.U32(0x01020304) }, "01020304", func(r *Reader) any { return r.U32() }, uint32(0x01020304)},
	{"u64", func(w *Writer) { w.U64(0x0102030405060708) }, "0102030405060708", func(r *Reader) any { return r.U64() }, uint64(0x0102030405060708)},
	{"u64 max", func(w *Writer) { w.U64(math.MaxUint64) }, "ffffffffffffffff", func(r *Reader) any { return r.U64() }, uint64(math.MaxUint64)},
	{"i64 -2", func(w *Writer) { w.I64(-2) }, "fffffffffffffffe", func(r *Reader) any { return r.I64() }, int64(-2)},
	{"i64 min", func(w *Writer) { w.I64(math.MinInt64) }, "8000000000000000", func(r *Reader) any { return r.I64() }, int64(math.MinInt64)},
	{"bool true", func(w *Writer) { w.Bool(true) }, "01", func(r *Reader) any { return r.Bool("flag") }, true},
	{"bool false", func(w *Writer) { w.Bool(false) }, "00", func(r *Reader) any { return r.Bool("flag") }, false},
	{"uvarint 0", func(w *Writer) { w.Uvarint(0) }, "00", func(r *Reader) any { return r.Uvarint("v", math.MaxUint64) }, uint64(0)},
	{"uvarint 127", func(w *Writer) { w.Uvarint(127) }, "7f", func(r *Reader) any { return r.Uvarint("v", 127) }, uint64(127)},
	{"uvarint 128", func(w *Writer) { w.Uvarint(128) }, "8001", func(r *Reader) any { return r.Uvarint("v", 128) }, uint64(128)},
	{"uvarint 300", func(w *Writer) { w.Uvarint(300) }, "ac02", func(r *Reader) any { return r.Uvarint("v", 1000) }, uint64(300)},
	{"uvarint 2^14", func(w *Writer) { w.Uvarint(1 << 14) }, "808001", func(r *Reader) any { return r.Uvarint("v", 1<<14) }, uint64(1 << 14)},
	{"uvarint max", func(w *Writer) { w.Uvarint(math.MaxUint64) }, "ffffffffffffffffff01", func(r *Reader) any { return r.Uvarint("v", math.MaxUint64) }, uint64(math.MaxUint64)},
	{"count", func(w *Writer) { w.Uvarint(3) }, "03", func(r *Reader) any { return r.Count("items", 3, 0) }, 3},
	{"fixed", func(w *Writer) { w.Fixed([]byte{1, 2, 3}) }, "010203", func(r *Reader) any { b := make([]byte, 3); r.Fixed(b); return string(b) }, "\x01\x02\x03"},
	{"fixed empty", func(w *Writer) { w.Fixed(nil) }, "", func(r *Reader) any { return string(r.Take(0)) }, ""},
	{"prefixed empty", func(w *Writer) { w.Prefixed(nil) }, "00", func(r *Reader) any { return string(r.Prefixed("b", 0)) }, ""},
	{"prefixed", func(w *Writer) { w.Prefixed([]byte("abc")) }, "03616263", func(r *Reader) any { return string(r.Prefixed("b", 3)) }, "abc"},
	{"prefixed 200 bytes", func(w *Writer) { w.Prefixed(bytes.Repeat([]byte{7}, 200)) }, "c801" + strings.Repeat("07", 200),
		func(r *Reader) any { return string(r.Prefixed("b", 200)) }, strings.Repeat("\x07", 200)},
	{"prefixed string", func(w *Writer) { w.PrefixedString("chain") }, "05636861696e", func(r *Reader) any { return r.PrefixedString("s", 5) }, "chain"},
	{"version", func(w *Writer) { w.U8(3) }, "03", func(r *Reader) any { r.Version("thing", 3); return nil }, nil},
}

func TestByteLayout(t *testing.T) {
	for _, tc := range layoutCases {
		t.Run(tc.name, func(t *testing.T) {
			var w Writer
			tc.write(&w)
			want := unhex(t, tc.want)
			if !bytes.Equal(w.Bytes(), want) || w.Len() != len(want) {
				t.Fatalf("wrote %x (Len %d), want %x", w.Bytes(), w.Len(), want)
			}
			r := NewReader(want)
			if got := tc.read(r); got != tc.value {
				t.Fatalf("read %#v, want %#v", got, tc.value)
			}
			if err := r.Finish(tc.name); err != nil {
				t.Fatalf("Finish: %v", err)
			}
		})
	}
}

func TestWriterAppendsToItsBuffer(t *testing.T) {
	prefix := make([]byte, 2, 16)
	prefix[0], prefix[1] = 0xaa, 0xbb
	w := NewWriter(prefix)
	w.U16(0x0102)
	w.Prefixed([]byte{9})
	if got, want := w.Bytes(), unhex(t, "aabb 0102 01 09"); !bytes.Equal(got, want) {
		t.Fatalf("wrote %x, want %x", got, want)
	}
	if &w.Bytes()[0] != &prefix[0] {
		t.Fatal("the writer did not append in place to a buffer with room")
	}
}

// A sequence of fields written with the Writer reads back with the Reader
// in the same order, and Finish accepts exactly the whole encoding.
func TestSequenceRoundTrip(t *testing.T) {
	w := NewWriter(nil)
	w.U8(1)
	w.PrefixedString("ledgerd")
	w.U64(1 << 40)
	w.I64(-7)
	w.Bool(true)
	w.Uvarint(2)
	w.Fixed([]byte{0xde, 0xad})
	w.Fixed([]byte{0xbe, 0xef})
	w.U16(65535)
	w.U32(1 << 31)
	w.Prefixed([]byte{5, 6})
	enc := w.Bytes()

	r := NewReader(enc)
	r.Version("record", 1)
	s := r.PrefixedString("name", 16)
	u := r.U64()
	i := r.I64()
	flag := r.Bool("flag")
	n := r.Count("pairs", 4, 2)
	var pairs [][]byte
	for range n {
		pairs = append(pairs, r.Take(2))
	}
	u16, u32 := r.U16(), r.U32()
	tail := r.Prefixed("tail", 2)
	if err := r.Finish("record"); err != nil {
		t.Fatal(err)
	}
	if s != "ledgerd" || u != 1<<40 || i != -7 || !flag || n != 2 || u16 != 65535 || u32 != 1<<31 ||
		!bytes.Equal(pairs[0], []byte{0xde, 0xad}) || !bytes.Equal(pairs[1], []byte{0xbe, 0xef}) || !bytes.Equal(tail, []byte{5, 6}) {
		t.Fatalf("read %q %d %d %v %d %x %d %d %x", s, u, i, flag, n, pairs, u16, u32, tail)
	}
	// Every proper prefix fails as truncated; one more byte fails as trailing.
	for cut := range len(enc) {
		r := NewReader(enc[:cut])
		r.Version("record", 1)
		r.PrefixedString("name", 16)
		r.U64()
		r.I64()
		r.Bool("flag")
		for range r.Count("pairs", 4, 2) {
			r.Take(2)
		}
		r.U16()
		r.U32()
		r.Prefixed("tail", 2)
		if err := r.Finish("record"); !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d of %d: err = %v, want ErrTruncated", cut, len(enc), err)
		}
	}
}

// errorCases run reads over an input and expect the first failure to be
// reported, naming what failed.
var errorCases = []struct {
	name   string
	in     string
	read   func(r *Reader)
	is     error  // the error must wrap this, if set
	substr string // and say this
}{
	{"u8 of nothing", "", func(r *Reader) { r.U8() }, ErrTruncated, "1 bytes wanted, 0 left"},
	{"u16 of one byte", "01", func(r *Reader) { r.U16() }, ErrTruncated, "2 bytes wanted, 1 left"},
	{"u32 of three bytes", "010203", func(r *Reader) { r.U32() }, ErrTruncated, "4 bytes wanted, 3 left"},
	{"u64 of seven bytes", "01020304050607", func(r *Reader) { r.U64() }, ErrTruncated, "8 bytes wanted, 7 left"},
	{"i64 of nothing", "", func(r *Reader) { r.I64() }, ErrTruncated, ""},
	{"fixed past the end", "0102", func(r *Reader) { r.Fixed(make([]byte, 3)) }, ErrTruncated, "3 bytes wanted, 2 left"},
	{"take a negative count", "0102", func(r *Reader) { r.Take(-1) }, ErrTruncated, "-1 bytes wanted"},
	{"bool of 2", "02", func(r *Reader) { r.Bool("presence") }, nil, "presence: flag 2, want 0 or 1"},
	{"bool of nothing", "", func(r *Reader) { r.Bool("presence") }, ErrTruncated, ""},
	{"wrong version", "02", func(r *Reader) { r.Version("block", 1) }, nil, "block: unknown encoding version 2, want 1"},
	{"version of nothing", "", func(r *Reader) { r.Version("block", 1) }, ErrTruncated, ""},
	{"uvarint of nothing", "", func(r *Reader) { r.Uvarint("height", 10) }, ErrTruncated, "height: varint"},
	{"uvarint cut after a continuation byte", "80", func(r *Reader) { r.Uvarint("height", 10) }, ErrTruncated, "height"},
	{"uvarint with a zero last byte", "8000", func(r *Reader) { r.Uvarint("height", 10) }, nil, "height: non-minimal varint"},
	{"uvarint of 1 in two bytes", "8100", func(r *Reader) { r.Uvarint("height", 10) }, nil, "height: non-minimal varint"},
	{"uvarint of 2^64", "ffffffffffffffffff02", func(r *Reader) { r.Uvarint("height", math.MaxUint64) }, nil, "height: varint overflows 64 bits"},
	{"uvarint of eleven bytes", "ffffffffffffffffffff01", func(r *Reader) { r.Uvarint("height", math.MaxUint64) }, nil, "height: varint overflows 64 bits"},
	{"uvarint over its limit", "0b", func(r *Reader) { r.Uvarint("height", 10) }, nil, "height: 11, at most 10"},
	{"count over its limit", "05", func(r *Reader) { r.Count("txs", 4, 0) }, nil, "txs count: 5, at most 4"},
	{"count under a negative limit", "01", func(r *Reader) { r.Count("txs", -1, 0) }, nil, "txs count: 1, at most 0"},
	{"count the bytes left cannot hold", "03aabbccddee", func(r *Reader) { r.Count("sigs", 100, 2) }, ErrTruncated, "sigs count 3"},
	{"count non-minimal", "8000", func(r *Reader) { r.Count("sigs", 100, 2) }, nil, "sigs count: non-minimal varint"},
	{"prefixed over its limit", "0461626364", func(r *Reader) { r.Prefixed("chain id", 3) }, nil, "chain id length: 4, at most 3"},
	{"prefixed under a negative limit", "01aa", func(r *Reader) { r.Prefixed("chain id", -5) }, nil, "chain id length: 1, at most 0"},
	{"prefixed past the end", "0461", func(r *Reader) { r.Prefixed("part bytes", 10) }, ErrTruncated, "part bytes: input truncated: 4 bytes wanted, 1 left"},
	{"prefixed huge length", "ffffffff07", func(r *Reader) { r.Prefixed("block", math.MaxInt32) }, ErrTruncated, "block"},
	{"prefixed length missing", "", func(r *Reader) { r.Prefixed("block", 10) }, ErrTruncated, "block length"},
	{"prefixed string past the end", "0361", func(r *Reader) { r.PrefixedString("name", 10) }, ErrTruncated, "name"},
	{"a caller's own failure", "01", func(r *Reader) { r.Fail(errors.New("kind 9 unknown")) }, nil, "kind 9 unknown"},
}

func TestErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(unhex(t, tc.in))
			tc.read(r)
			err := r.Err()
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want it to wrap %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("err = %q, want it to say %q", err, tc.substr)
			}
			fin := r.Finish("thing")
			if !errors.Is(fin, err) || !strings.HasPrefix(fin.Error(), "decode thing: ") {
				t.Fatalf("Finish = %v, want %q wrapping %v", fin, "decode thing: ...", err)
			}
		})
	}
}

func TestFinishRejectsTrailingBytes(t *testing.T) {
	r := NewReader([]byte{1, 2, 3, 4})
	r.U8()
	err := r.Finish("status")
	if !errors.Is(err, ErrTrailingBytes) || err.Error() != "decode status: trailing bytes after value (3)" {
		t.Fatalf("Finish = %v", err)
	}
	if err := NewReader(nil).Finish("nothing"); err != nil {
		t.Fatalf("Finish of empty input with nothing to read = %v", err)
	}
}

// After the first error every read returns a zero value and consumes
// nothing, and the first error is the one reported.
func TestFirstErrorSticks(t *testing.T) {
	r := NewReader(unhex(t, "07 0102030405060708 03616263 01"))
	if r.U8() != 7 {
		t.Fatal("first read wrong")
	}
	r.U16()
	r.Fixed(make([]byte, 100)) // fails: 100 bytes wanted
	first := r.Err()
	if !errors.Is(first, ErrTruncated) {
		t.Fatalf("err = %v", first)
	}
	dst := []byte{9, 9}
	r.Fixed(dst)
	if r.U8() != 0 || r.U16() != 0 || r.U32() != 0 || r.U64() != 0 || r.I64() != 0 || r.Bool("f") ||
		r.Uvarint("v", 100) != 0 || r.Count("c", 100, 0) != 0 || r.Prefixed("p", 100) != nil ||
		r.PrefixedString("s", 100) != "" || r.Take(1) != nil || r.Rest() != nil || r.Len() != 0 || dst[0] != 9 {
		t.Fatal("a read after the error returned something")
	}
	r.Version("v", 1)
	r.Fail(errors.New("later"))
	r.Fail(nil)
	if r.Err() != first {
		t.Fatalf("err = %v, want the first one, %v", r.Err(), first)
	}
	var clean Reader
	clean.Fail(nil)
	if clean.Err() != nil {
		t.Fatal("Fail(nil) recorded an error")
	}
}

func TestReadsAliasTheInputWithoutSpareCapacity(t *testing.T) {
	in := unhex(t, "02aabb ccdd eeff")
	r := NewReader(in)
	p := r.Prefixed("p", 2)
	if len(p) != 2 || cap(p) != 2 || &p[0] != &in[1] {
		t.Fatalf("Prefixed = %x (cap %d), want in[1:3] with no spare capacity", p, cap(p))
	}
	_ = append(p, 0x11) // must not overwrite in[3]
	tk := r.Take(2)
	if cap(tk) != 2 || in[3] != 0xcc {
		t.Fatalf("Take cap %d, in[3] = %x", cap(tk), in[3])
	}
	if r.Len() != 2 {
		t.Fatalf("Len = %d, want 2", r.Len())
	}
	if rest := r.Rest(); !bytes.Equal(rest, []byte{0xee, 0xff}) || r.Len() != 0 {
		t.Fatalf("Rest = %x, Len after = %d", rest, r.Len())
	}
	if err := r.Finish("x"); err != nil {
		t.Fatal(err)
	}
}

// A count is accepted exactly when the bytes left can hold that many
// elements of minSize, so a decoder never allocates for elements the input
// cannot contain.
func TestCountBoundByBytesLeft(t *testing.T) {
	for left := 0; left <= 10; left++ {
		for n := 0; n <= 6; n++ {
			in := append([]byte{byte(n)}, make([]byte, left)...)
			r := NewReader(in)
			got := r.Count("items", 100, 2)
			ok := n*2 <= left
			if (r.Err() == nil) != ok || (ok && got != n) {
				t.Fatalf("count %d with %d bytes left: got %d, err %v", n, left, got, r.Err())
			}
		}
	}
}
