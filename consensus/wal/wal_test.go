package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// quiet discards the repair warnings tests provoke on purpose.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openT(t testing.TB, dir string, segSize int64) *FileLog {
	t.Helper()
	l, err := OpenWithOptions(dir, Options{SegmentSize: segSize, Logger: quiet})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return l
}

// payload is the deterministic data of record i: 1 to 97 non-zero bytes.
func payload(i int) []byte {
	b := make([]byte, 1+i*7%97)
	for j := range b {
		b[j] = byte(i+j)%251 + 1
	}
	return b
}

func msg(h uint64, i int) Record { return Record{Height: h, Kind: KindMessage, Data: payload(i)} }
func end(h uint64) Record        { return Record{Height: h, Kind: KindEndHeight} }

func appendAll(t testing.TB, l Log, recs []Record, sync bool) {
	t.Helper()
	for _, r := range recs {
		if err := l.Append(r, sync); err != nil {
			t.Fatalf("append %+v: %v", r, err)
		}
	}
}

// allRecords reads every record of the log in dir, in order, without
// modifying it; it fails the test on any damage.
func allRecords(t testing.TB, dir string) []Record {
	t.Helper()
	idx, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []Record
	for _, n := range idx {
		_, err := readSegment(filepath.Join(dir, segmentName(n)), 0, -1, func(r Record, _ int64) error {
			r.Data = bytes.Clone(r.Data)
			out = append(out, r)
			return nil
		})
		if err != nil {
			t.Fatalf("segment %d: %v", n, err)
		}
	}
	return out
}

func replayed(t testing.TB, l Log, h uint64) []Record {
	t.Helper()
	var out []Record
	if err := l.Replay(h, func(r Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatalf("replay %d: %v", h, err)
	}
	return out
}

func sameRecords(a, b []Record) bool {
	return slices.EqualFunc(a, b, func(x, y Record) bool {
		return x.Height == y.Height && x.Kind == y.Kind && bytes.Equal(x.Data, y.Data)
	})
}

func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// copyOnly copies one file of src into a new directory, as segment 0.
func copyOnly(t testing.TB, src, name string) string {
	t.Helper()
	dst := t.TempDir()
	b, err := os.ReadFile(filepath.Join(src, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, segmentName(0)), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDecodeFrame(t *testing.T) {
	good, err := AppendFrame(nil, Record{Height: 7, Kind: KindMessage, Data: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	// frame builds a frame with a valid CRC around an arbitrary payload.
	frame := func(p []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, 0)
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
		binary.BigEndian.PutUint32(b, crc32.Checksum(b[4:], castagnoli))
		return b
	}
	withLength := func(n uint32) []byte {
		b := bytes.Clone(good)
		binary.BigEndian.PutUint32(b[4:], n)
		return b
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"valid", good, nil},
		{"valid with trailing bytes", append(bytes.Clone(good), 1, 2, 3), nil},
		{"empty", nil, ErrTorn},
		{"short header", good[:5], ErrTorn},
		{"short payload", good[:len(good)-1], ErrTorn},
		{"flipped data bit", flipped, ErrCorrupt},
		{"length zero", withLength(0), ErrCorrupt},
		{"length below header", withLength(payloadHeaderSize - 1), ErrCorrupt},
		{"length above max", withLength(maxPayloadSize + 1), ErrCorrupt},
		{"length max, short input", withLength(maxPayloadSize), ErrTorn},
		{"unknown version, valid CRC", frame([]byte{2, KindMessage, 0, 0, 0, 0, 0, 0, 0, 1}), ErrUnsupported},
		{"unknown kind, valid CRC", frame([]byte{1, 9, 0, 0, 0, 0, 0, 0, 0, 1}), ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, n, err := DecodeFrame(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want != nil {
				return
			}
			if n != len(good) || r.Height != 7 || r.Kind != KindMessage || string(r.Data) != "hello" {
				t.Fatalf("got %+v, %d bytes", r, n)
			}
		})
	}
}

func TestAppendRefusesInvalidRecords(t *testing.T) {
	logs := map[string]Log{"file": openT(t, t.TempDir(), 0), "mem": NewMem()}
	for name, l := range logs {
		t.Run(name, func(t *testing.T) {
			defer l.Close()
			if err := l.Append(Record{Height: 1, Kind: KindMessage, Data: make([]byte, MaxRecordSize+1)}, false); !errors.Is(err, ErrTooLarge) {
				t.Errorf("oversized record: err = %v, want ErrTooLarge", err)
			}
			if err := l.Append(Record{Height: 1, Kind: 0}, false); !errors.Is(err, ErrUnsupported) {
				t.Errorf("kind 0: err = %v, want ErrUnsupported", err)
			}
			if err := l.Append(Record{Height: 1, Kind: KindMessage, Data: make([]byte, MaxRecordSize)}, true); err != nil {
				t.Errorf("record of exactly MaxRecordSize: %v", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if err := l.Append(msg(1, 1), false); !errors.Is(err, ErrClosed) {
				t.Errorf("append after close: err = %v, want ErrClosed", err)
			}
			if err := l.Replay(1, func(Record) error { return nil }); !errors.Is(err, ErrClosed) {
				t.Errorf("replay after close: err = %v, want ErrClosed", err)
			}
		})
	}
}

func TestFileLogRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, 0)
	var want []Record
	for i := range 50 {
		r := msg(uint64(1+i/10), i)
		if i%10 == 9 {
			r = end(uint64(1 + i/10))
		}
		want = append(want, r)
	}
	want = append(want, Record{Height: 6, Kind: KindMessage, Data: nil})
	want = append(want, Record{Height: 6, Kind: KindMessage, Data: bytes.Repeat([]byte{0xab}, 1<<20)})
	for i, r := range want {
		if err := l.Append(r, i%3 == 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, 0)
	defer l.Close()
	if n := l.Repaired(); n != 0 {
		t.Fatalf("intact log reported %d bytes repaired", n)
	}
	if got := allRecords(t, dir); !sameRecords(got, want) {
		t.Fatalf("records differ after reopen: got %d, want %d", len(got), len(want))
	}
	if got := replayed(t, l, 6); !sameRecords(got, want[50:]) {
		t.Fatalf("replay(6) = %d records, want 2", len(got))
	}
}

// TestTornTailIsCut cuts the last frame at every byte offset, and also
// overwrites it with zeros from every offset (a file extended but not yet
// written when the machine died): Open cuts exactly the last frame, the
// earlier records survive, and appending continues after them.
func TestTornTailIsCut(t *testing.T) {
	src := t.TempDir()
	l := openT(t, src, 0)
	recs := []Record{msg(1, 1), msg(1, 2), end(1), msg(2, 3), msg(2, 40)}
	appendAll(t, l, recs, true)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(src, segmentName(0))
	pristine, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	last, _ := AppendFrame(nil, recs[len(recs)-1])
	lastStart := len(pristine) - len(last)

	for _, mode := range []string{"truncated", "zero-filled"} {
		for off := lastStart; off < len(pristine); off++ {
			t.Run(fmt.Sprintf("%s at %d", mode, off), func(t *testing.T) {
				dir := copyDir(t, src)
				damaged := bytes.Clone(pristine[:off])
				wantCut := int64(off - lastStart)
				if mode == "zero-filled" {
					damaged = append(damaged, make([]byte, len(pristine)-off)...)
					wantCut = int64(len(last))
				}
				if err := os.WriteFile(filepath.Join(dir, segmentName(0)), damaged, 0o600); err != nil {
					t.Fatal(err)
				}
				l := openT(t, dir, 0)
				if got := l.Repaired(); got != wantCut {
					t.Errorf("Repaired() = %d, want %d", got, wantCut)
				}
				extra := msg(2, 99)
				appendAll(t, l, []Record{extra}, true)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				l = openT(t, dir, 0)
				defer l.Close()
				if l.Repaired() != 0 {
					t.Errorf("second open repaired %d bytes", l.Repaired())
				}
				want := append(slices.Clone(recs[:len(recs)-1]), extra)
				if got := allRecords(t, dir); !sameRecords(got, want) {
					t.Errorf("records after repair = %+v, want %+v", got, want)
				}
			})
		}
	}
}

// TestCorruptFrameInMiddle flips each byte of a frame in the middle of the
// first of several segments: Open detects it, cuts the log there and
// removes the later segments, keeping every record before it.
func TestCorruptFrameInMiddle(t *testing.T) {
	src := t.TempDir()
	l := openT(t, src, 512)
	var recs []Record
	for i := range 40 {
		recs = append(recs, msg(uint64(1+i/4), i))
	}
	appendAll(t, l, recs, false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, src)); n < 3 {
		t.Fatalf("want at least 3 segments, got %d", n)
	}
	seg0, err := os.ReadFile(filepath.Join(src, segmentName(0)))
	if err != nil {
		t.Fatal(err)
	}
	// Locate frame 3 of segment 0.
	const victim = 3
	start := 0
	for i := range victim {
		_, n, err := DecodeFrame(seg0[start:])
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		start += n
	}
	_, size, err := DecodeFrame(seg0[start:])
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range segmentFiles(t, src) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	for off := start; off < start+size; off++ {
		t.Run(fmt.Sprintf("byte %d", off-start), func(t *testing.T) {
			dir := copyDir(t, src)
			damaged := bytes.Clone(seg0)
			damaged[off] ^= 0x5a
			if err := os.WriteFile(filepath.Join(dir, segmentName(0)), damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			l := openT(t, dir, 512)
			defer l.Close()
			if got, want := l.Repaired(), total-int64(start); got != want {
				t.Errorf("Repaired() = %d, want %d", got, want)
			}
			if n := len(segmentFiles(t, dir)); n != 1 {
				t.Errorf("%d segments left, want 1", n)
			}
			if got := allRecords(t, dir); !sameRecords(got, recs[:victim]) {
				t.Errorf("kept %d records, want the %d before the damage", len(got), victim)
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Run("missing middle segment", func(t *testing.T) {
		dir := t.TempDir()
		l := openT(t, dir, 128)
		for i := range 20 {
			appendAll(t, l, []Record{msg(1, i)}, false)
		}
		l.Close()
		if err := os.Remove(filepath.Join(dir, segmentName(1))); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir); err == nil {
			t.Fatal("opened a log with a missing segment")
		}
	})
	t.Run("intact frame of unknown version", func(t *testing.T) {
		dir := t.TempDir()
		good, _ := AppendFrame(nil, msg(1, 1))
		p := []byte{2, KindMessage, 0, 0, 0, 0, 0, 0, 0, 1}
		b := binary.BigEndian.AppendUint32(nil, 0)
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
		binary.BigEndian.PutUint32(b, crc32.Checksum(b[4:], castagnoli))
		content := append(good, b...)
		path := filepath.Join(dir, segmentName(0))
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("err = %v, want ErrUnsupported", err)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(after, content) {
			t.Fatal("Open modified a log it refused")
		}
	})
}

// replayCase is one log history and what Replay must return for heights.
type replayCase struct {
	name string
	recs []Record
	want map[uint64][]int // height -> indexes into recs
}

var replayCases = []replayCase{
	{
		name: "empty log",
		want: map[uint64][]int{0: nil, 1: nil, 5: nil},
	},
	{
		name: "first height unfinished",
		recs: []Record{msg(1, 0), msg(1, 1)},
		want: map[uint64][]int{1: {0, 1}, 2: nil},
	},
	{
		name: "several heights",
		recs: []Record{
			msg(1, 0), msg(1, 1), end(1), // 0-2
			msg(2, 3), end(2), // 3-4
			msg(3, 5), msg(3, 6), msg(3, 7), // 5-7: unfinished
		},
		want: map[uint64][]int{1: {0, 1, 2}, 2: {3, 4}, 3: {5, 6, 7}, 4: nil},
	},
	{
		name: "block stored but end marker lost in the crash",
		recs: []Record{msg(1, 0), end(1), msg(2, 2), msg(2, 3)},
		// The node restarts at height 3: height 2's inputs are not its own.
		want: map[uint64][]int{2: {2, 3}, 3: nil},
	},
	{
		name: "rounds of a long height",
		recs: []Record{end(4), msg(5, 1), msg(5, 2), msg(5, 3), msg(5, 4), msg(5, 5), msg(5, 6)},
		want: map[uint64][]int{5: {1, 2, 3, 4, 5, 6}, 4: {0}, 6: nil},
	},
	{
		name: "height replayed after a later marker",
		// A marker for a lower height written late still bounds the search.
		recs: []Record{msg(7, 0), end(7), msg(8, 2), end(6), msg(8, 4)},
		want: map[uint64][]int{8: {4}, 7: {}},
	},
}

func checkReplay(t *testing.T, l Log, tc replayCase) {
	t.Helper()
	for h, idx := range tc.want {
		var want []Record
		for _, i := range idx {
			want = append(want, tc.recs[i])
		}
		if got := replayed(t, l, h); !sameRecords(got, want) {
			t.Errorf("Replay(%d) = %+v, want %+v", h, got, want)
		}
	}
}

// TestReplay runs the same histories through MemLog, FileLog in one
// segment and FileLog with tiny segments (every record in its own).
func TestReplay(t *testing.T) {
	for _, tc := range replayCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("mem", func(t *testing.T) {
				l := NewMem()
				appendAll(t, l, tc.recs, false)
				checkReplay(t, l, tc)
			})
			for _, segSize := range []int64{0, 1} {
				t.Run(fmt.Sprintf("file segsize %d", segSize), func(t *testing.T) {
					dir := t.TempDir()
					l := openT(t, dir, segSize)
					appendAll(t, l, tc.recs, false)
					checkReplay(t, l, tc)
					l.Close()
					l = openT(t, dir, segSize)
					defer l.Close()
					checkReplay(t, l, tc)
				})
			}
		})
	}
}

func TestReplayStopsAtCallbackError(t *testing.T) {
	stop := errors.New("stop")
	for name, l := range map[string]Log{"file": openT(t, t.TempDir(), 64), "mem": NewMem()} {
		t.Run(name, func(t *testing.T) {
			defer l.Close()
			appendAll(t, l, []Record{msg(1, 0), msg(1, 1), msg(1, 2)}, false)
			calls := 0
			err := l.Replay(1, func(r Record) error {
				calls++
				// The callback may append; the replay does not see it.
				if err := l.Append(msg(1, 9), false); err != nil {
					return err
				}
				if calls == 2 {
					return stop
				}
				return nil
			})
			if err != stop || calls != 2 {
				t.Fatalf("err = %v after %d calls, want stop after 2", err, calls)
			}
		})
	}
}

func TestRotateAndPrune(t *testing.T) {
	const segSize = 300
	dir := t.TempDir()
	l := openT(t, dir, segSize)
	var recs []Record
	for h := uint64(1); h <= 20; h++ {
		for i := range 4 {
			recs = append(recs, msg(h, int(h)*10+i))
		}
		recs = append(recs, end(h))
	}
	recs = append(recs, msg(21, 1), msg(21, 2))
	appendAll(t, l, recs, false)
	files := segmentFiles(t, dir)
	if len(files) < 10 {
		t.Fatalf("%d segments, want rotation into at least 10", len(files))
	}
	for _, p := range files {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > segSize {
			t.Errorf("%s is %d bytes, over the segment size %d", p, fi.Size(), segSize)
		}
	}

	if err := l.Prune(10); err != nil {
		t.Fatal(err)
	}
	kept := allRecords(t, dir)
	if len(segmentFiles(t, dir)) >= len(files) {
		t.Fatal("prune removed nothing")
	}
	// Only a prefix went, and all of it below height 10.
	lost := recs[:len(recs)-len(kept)]
	if !sameRecords(kept, recs[len(lost):]) {
		t.Fatal("prune removed records other than a prefix")
	}
	for _, r := range lost {
		if r.Height >= 10 {
			t.Fatalf("prune removed a record of height %d", r.Height)
		}
	}
	// The first segment left holds a record of height >= 10; otherwise it
	// should have gone too.
	first := allRecords(t, copyOnly(t, dir, filepath.Base(segmentFiles(t, dir)[0])))
	if slices.IndexFunc(first, func(r Record) bool { return r.Height >= 10 }) < 0 {
		t.Error("prune kept a segment whose records are all below height 10")
	}
	check := func(l Log) {
		t.Helper()
		for h := uint64(10); h <= 21; h++ {
			var want []Record
			for _, r := range recs {
				if r.Height == h {
					want = append(want, r)
				}
			}
			if got := replayed(t, l, h); !sameRecords(got, want) {
				t.Errorf("after prune, Replay(%d) = %d records, want %d", h, len(got), len(want))
			}
		}
	}
	check(l)

	// Pruning everything keeps the active segment; the log reopens from
	// its first remaining segment number and keeps appending.
	if err := l.Prune(1 << 60); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments after pruning all, want the active one", n)
	}
	left := allRecords(t, dir)
	l.Close()
	l = openT(t, dir, segSize)
	defer l.Close()
	appendAll(t, l, []Record{msg(21, 3)}, true)
	var want []Record
	for _, r := range left {
		if r.Height == 21 {
			want = append(want, r)
		}
	}
	if want = append(want, msg(21, 3)); !sameRecords(replayed(t, l, 21), want) {
		t.Fatalf("Replay(21) after prune and reopen differs from %+v", want)
	}
	if idx, _ := listSegments(dir); len(idx) != 1 || idx[0] == 0 {
		t.Fatalf("segments after reopen: %v, want one, not numbered 0", idx)
	}
}

func TestMemLogCrash(t *testing.T) {
	// s = synced append, u = unsynced.
	recs := []Record{msg(1, 0), msg(1, 1), msg(1, 2), msg(1, 3), msg(1, 4)}
	syncs := []bool{true, false, true, false, false}
	tests := []struct {
		name        string
		keep        int
		wantLen     int
		wantDropped int
	}{
		{"keep none of the unsynced", 0, 3, 2},
		{"negative means none", -5, 3, 2},
		{"keep the first unsynced", 1, 4, 1},
		{"keep all unsynced", 2, 5, 0},
		{"keep more than there are", 10, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMem()
			for i, r := range recs {
				if err := m.Append(r, syncs[i]); err != nil {
					t.Fatal(err)
				}
			}
			if got := m.Unsynced(); got != 2 {
				t.Fatalf("Unsynced() = %d, want 2", got)
			}
			m.Crash(tt.keep)
			if got := len(recs) - m.Len(); got != tt.wantDropped {
				t.Errorf("Crash dropped %d, want %d", got, tt.wantDropped)
			}
			if m.Unsynced() != 0 {
				t.Errorf("after Crash, %d records still unsynced", m.Unsynced())
			}
			if got := replayed(t, m, 1); !sameRecords(got, recs[:tt.wantLen]) {
				t.Fatalf("after Crash(%d): %d records, want %d", tt.keep, len(got), tt.wantLen)
			}
			// What survived a crash is durable: a second crash keeps it.
			m.Crash(0)
			if got := m.Len(); got != tt.wantLen {
				t.Fatalf("second crash left %d records, want %d", got, tt.wantLen)
			}
		})
	}
	t.Run("close flushes and crash reopens", func(t *testing.T) {
		m := NewMem()
		appendAll(t, m, recs, false)
		m.Close()
		if m.Crash(0); m.Len() != len(recs) {
			t.Fatal("records appended before a clean Close were lost")
		}
		if err := m.Append(msg(1, 9), false); err != nil {
			t.Fatalf("append after Crash: %v", err)
		}
	})
	t.Run("callers cannot alias stored data", func(t *testing.T) {
		m := NewMem()
		d := []byte{1, 2, 3}
		appendAll(t, m, []Record{{Height: 1, Kind: KindMessage, Data: d}}, true)
		d[0] = 9
		got := replayed(t, m, 1)
		got[0].Data[1] = 9
		if again := replayed(t, m, 1); !bytes.Equal(again[0].Data, []byte{1, 2, 3}) {
			t.Fatalf("stored data changed to %v", again[0].Data)
		}
	})
	t.Run("records and sync point", func(t *testing.T) {
		m := NewMem()
		for i, r := range recs {
			if err := m.Append(r, syncs[i]); err != nil {
				t.Fatal(err)
			}
		}
		got, synced := m.Records()
		if !sameRecords(got, recs) || synced != 3 {
			t.Fatalf("Records() = %d records, %d synced; want %d, 3", len(got), synced, len(recs))
		}
		got[0].Data[0] ^= 0xff
		if again, _ := m.Records(); !sameRecords(again, recs) {
			t.Fatal("Records() returned the stored data itself")
		}
		m.Crash(1)
		if got, synced := m.Records(); len(got) != 4 || synced != 4 {
			t.Fatalf("after Crash(1): %d records, %d synced; want 4, 4", len(got), synced)
		}
	})
	t.Run("prune", func(t *testing.T) {
		m := NewMem()
		appendAll(t, m, []Record{msg(1, 0), end(1), msg(2, 1), end(2), msg(3, 2)}, true)
		if err := m.Prune(3); err != nil {
			t.Fatal(err)
		}
		if m.Len() != 1 || len(replayed(t, m, 3)) != 1 {
			t.Fatalf("after Prune(3): %d records", m.Len())
		}
	})
}

// TestMemLogLosesSyncedWrites covers the simulator's disk faults: a disk
// that lied about fsync loses a suffix of the log, synced records
// included, and a disk restored from an image holds what was durable when
// the image was taken, whatever came after.
func TestMemLogLosesSyncedWrites(t *testing.T) {
	recs := []Record{msg(1, 0), msg(1, 1), end(1), msg(2, 2), msg(2, 3)}
	t.Run("lose tail", func(t *testing.T) {
		for _, tt := range []struct{ lose, want, dropped int }{{0, 5, 0}, {2, 3, 2}, {5, 0, 5}, {9, 0, 5}, {-1, 5, 0}} {
			m := NewMem()
			appendAll(t, m, recs, true)
			if got := m.LoseTail(tt.lose); got != tt.dropped {
				t.Errorf("LoseTail(%d) = %d, want %d", tt.lose, got, tt.dropped)
			}
			if m.Len() != tt.want || m.Unsynced() != 0 {
				t.Fatalf("LoseTail(%d): %d records (%d unsynced), want %d", tt.lose, m.Len(), m.Unsynced(), tt.want)
			}
		}
		// Unsynced records go first; the synced mark moves back with the
		// cut, so later appends are not counted as durable.
		m := NewMem()
		appendAll(t, m, recs[:3], true)
		appendAll(t, m, recs[3:], false)
		m.LoseTail(3)
		if m.Len() != 2 || m.Unsynced() != 0 {
			t.Fatalf("after losing 3 of 3 synced + 2 unsynced: %d records, %d unsynced", m.Len(), m.Unsynced())
		}
		if err := m.Append(msg(2, 9), false); err != nil || m.Unsynced() != 1 {
			t.Fatalf("append after LoseTail: err %v, %d unsynced, want 1", err, m.Unsynced())
		}
	})
	t.Run("image and restore", func(t *testing.T) {
		m := NewMem()
		appendAll(t, m, recs[:3], true)
		if err := m.Append(recs[3], false); err != nil {
			t.Fatal(err)
		}
		img := m.Image()
		if img.Len() != 3 {
			t.Fatalf("image of 3 synced + 1 unsynced records holds %d, want the 3 durable ones", img.Len())
		}
		appendAll(t, m, recs[4:], true)
		if err := m.Prune(2); err != nil {
			t.Fatal(err)
		}
		m.Close()
		m.Restore(img)
		if got := replayed(t, m, 1); !sameRecords(got, recs[:3]) {
			t.Fatalf("after Restore, Replay(1) = %d records, want its 3", len(got))
		}
		if m.Unsynced() != 0 || m.Len() != 3 {
			t.Fatalf("after Restore: %d records, %d unsynced", m.Len(), m.Unsynced())
		}
		if err := m.Append(msg(2, 9), true); err != nil {
			t.Fatalf("append after Restore of a closed log: %v", err)
		}
		if img.Len() != 3 {
			t.Fatal("appending to the restored log changed the image")
		}
	})
}

func FuzzDecodeFrame(f *testing.F) {
	good, _ := AppendFrame(nil, Record{Height: 3, Kind: KindMessage, Data: []byte("vote")})
	marker, _ := AppendFrame(nil, end(3))
	f.Add(good)
	f.Add(marker)
	f.Add(good[:len(good)-2])
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := DecodeFrame(b)
		if err != nil {
			if !errors.Is(err, ErrTorn) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if n < frameHeaderSize+payloadHeaderSize || n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		again, err := AppendFrame(nil, r)
		if err != nil || !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding differs: %x vs %x (%v)", again, b[:n], err)
		}
	})
}

func FuzzOpen(f *testing.F) {
	var seed []byte
	for i, r := range []Record{msg(1, 0), msg(1, 1), end(1), msg(2, 3)} {
		seed, _ = AppendFrame(seed, r)
		f.Add(bytes.Clone(seed))
		if i == 3 {
			f.Add(seed[:len(seed)-3])
		}
	}
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, content []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, segmentName(0))
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := OpenWithOptions(dir, Options{Logger: quiet})
		if err != nil {
			return
		}
		heights := map[uint64]bool{0: true, 1: true, 2: true}
		recs := allRecords(t, dir) // must be intact after Open
		for _, r := range recs {
			heights[r.Height] = true
			heights[r.Height+1] = true
		}
		for h := range heights {
			if err := l.Replay(h, func(Record) error { return nil }); err != nil {
				t.Fatalf("replay %d: %v", h, err)
			}
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Size() + l.Repaired(); got != int64(len(content)) {
			t.Fatalf("kept %d + cut %d != %d bytes", fi.Size(), l.Repaired(), len(content))
		}
		l.Close()
		// Opening a repaired log finds nothing left to repair.
		l, err = OpenWithOptions(dir, Options{Logger: quiet})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if l.Repaired() != 0 {
			t.Fatalf("second open cut %d bytes", l.Repaired())
		}
		l.Close()
	})
}

// TestMaxHeight: both logs report the highest height of any record held,
// markers included and not necessarily the last appended, 0 when empty;
// the FileLog across rotation, reopening and pruning; a closed log
// refuses.
func TestMaxHeight(t *testing.T) {
	var recs []Record
	for h := uint64(4); h <= 6; h++ {
		for i := range 5 {
			recs = append(recs, msg(h, int(h)*10+i))
		}
		recs = append(recs, end(h))
	}
	recs = append(recs, msg(3, 1), msg(2, 2)) // lower heights last
	want := func(t *testing.T, max func() (uint64, error), h uint64, when string) {
		t.Helper()
		got, err := max()
		if err != nil || got != h {
			t.Fatalf("%s: MaxHeight() = %d, %v; want %d", when, got, err, h)
		}
	}
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		l := openT(t, dir, 200)
		want(t, l.MaxHeight, 0, "empty")
		appendAll(t, l, recs, true)
		if n := len(segmentFiles(t, dir)); n < 3 {
			t.Fatalf("%d segments, want rotation", n)
		}
		want(t, l.MaxHeight, 6, "appended")
		l.Close()
		l = openT(t, dir, 200)
		want(t, l.MaxHeight, 6, "reopened")
		if err := l.Prune(6); err != nil {
			t.Fatal(err)
		}
		want(t, l.MaxHeight, 6, "pruned below 6")
		l.Close()
		if _, err := l.MaxHeight(); !errors.Is(err, ErrClosed) {
			t.Fatalf("closed: MaxHeight() error %v, want ErrClosed", err)
		}
	})
	t.Run("mem", func(t *testing.T) {
		m := NewMem()
		want(t, m.MaxHeight, 0, "empty")
		appendAll(t, m, recs, true)
		want(t, m.MaxHeight, 6, "appended")
		if err := m.Prune(6); err != nil {
			t.Fatal(err)
		}
		want(t, m.MaxHeight, 6, "pruned below 6")
		m.Close()
		if _, err := m.MaxHeight(); !errors.Is(err, ErrClosed) {
			t.Fatalf("closed: MaxHeight() error %v, want ErrClosed", err)
		}
	})
}
