package wal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ledgerd/ledgerd/internal/durable"
)

// DefaultSegmentSize is the size at which FileLog starts a new segment.
const DefaultSegmentSize = 64 << 20

// Options tunes a FileLog. The zero value is the default.
type Options struct {
	// SegmentSize is the size in bytes past which the active segment is
	// rotated; 0 means DefaultSegmentSize. A segment exceeds it only when a
	// single frame is larger.
	SegmentSize int64
	// Logger receives repairs and prunes; nil means slog.Default().
	Logger *slog.Logger
}

// segment describes one segment file.
type segment struct {
	index     uint64
	size      int64 // bytes of whole frames
	records   int
	minHeight uint64 // meaningful when records > 0
	maxHeight uint64
}

func (s *segment) add(h uint64) {
	if s.records == 0 || h < s.minHeight {
		s.minHeight = h
	}
	if s.records == 0 || h > s.maxHeight {
		s.maxHeight = h
	}
	s.records++
}

// FileLog is the on-disk Log: a directory of CRC-framed segment files. It
// is safe for concurrent use. Only one FileLog (in one process) may have a
// directory open at a time.
type FileLog struct {
	dir     string
	segSize int64
	logger  *slog.Logger

	// replayMu is held shared by Replay and exclusively by Prune, so a
	// replay never finds a segment deleted under it.
	replayMu sync.RWMutex

	mu       sync.Mutex
	segs     []segment // oldest first; the last is the active one
	f        *os.File  // the active segment, opened for appending
	buf      []byte    // frame encoding scratch
	repaired int64
	err      error // sticky: set by the first I/O failure of an append
	closed   bool
}

// Open opens the log in dir with default options, creating dir if needed.
// See OpenWithOptions.
func Open(dir string) (*FileLog, error) { return OpenWithOptions(dir, Options{}) }

// OpenWithOptions opens (creating if needed) the log in dir. It reads every
// segment; at the first torn or corrupt frame it truncates the log there,
// removes any later segments, fsyncs, logs the repair and counts the bytes
// cut in Repaired. When it returns, everything it read is durable, and
// Append continues at the end. It fails, without modifying anything, on an
// intact frame it cannot read (ErrUnsupported), on a gap in the segment
// numbers, and on I/O errors.
func OpenWithOptions(dir string, o Options) (*FileLog, error) {
	l := &FileLog{dir: dir, segSize: o.SegmentSize, logger: o.Logger}
	if l.segSize <= 0 {
		l.segSize = DefaultSegmentSize
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	l.logger = l.logger.With("wal", dir)
	if err := durable.EnsureDir(dir); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	idx, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(idx) == 0 {
		if err := createSegment(dir, 0); err != nil {
			return nil, err
		}
		idx = []uint64{0}
	}
	for i, n := range idx {
		seg, cut, err := l.recover(n, idx[i+1:])
		if err != nil {
			return nil, err
		}
		l.segs = append(l.segs, seg)
		if cut {
			break // recover removed the later segments
		}
	}
	act := l.segs[len(l.segs)-1]
	f, err := os.OpenFile(l.path(act.index), os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	// What we just read may still be only in the page cache (written by
	// a process that was killed before it synced). Replay will act on it,
	// so make it durable before anyone relies on it.
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: sync %s: %w", f.Name(), err)
	}
	l.f = f
	return l, nil
}

// recover scans segment n. If it ends in a torn or corrupt frame, it cuts
// the segment there and removes the segments in later, fsyncing both, and
// reports that it did.
func (l *FileLog) recover(n uint64, later []uint64) (segment, bool, error) {
	seg := segment{index: n}
	path := l.path(n)
	fileSize, err := readSegment(path, 0, -1, func(r Record, end int64) error {
		seg.add(r.Height)
		seg.size = end
		return nil
	})
	if err == nil {
		return seg, false, nil
	}
	if !errors.Is(err, ErrTorn) && !errors.Is(err, ErrCorrupt) {
		return seg, false, fmt.Errorf("wal: %s: %w", path, err)
	}
	cut := fileSize - seg.size
	if err := truncateSync(path, seg.size); err != nil {
		return seg, false, fmt.Errorf("wal: repair %s: %w", path, err)
	}
	for _, m := range later {
		p := l.path(m)
		if fi, err := os.Stat(p); err == nil {
			cut += fi.Size()
		}
		if err := os.Remove(p); err != nil {
			return seg, false, fmt.Errorf("wal: repair: %w", err)
		}
	}
	if err := durable.SyncDir(l.dir); err != nil {
		return seg, false, fmt.Errorf("wal: repair: %w", err)
	}
	l.repaired = cut
	l.logger.Warn("wal: cut a torn or corrupt tail",
		"segment", filepath.Base(path), "offset", seg.size, "bytes_cut", cut,
		"segments_removed", len(later), "reason", err.Error())
	return seg, true, nil
}

// Repaired returns the number of bytes Open cut from a torn or corrupt
// tail (including removed later segments); 0 if the log was intact.
func (l *FileLog) Repaired() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.repaired
}

// Dir returns the directory the log lives in.
func (l *FileLog) Dir() string { return l.dir }

// Append implements Log.Append. A record that does not fit in the active
// segment goes to a new one; the old segment is fsynced first, so only the
// newest segment can ever have a torn tail.
func (l *FileLog) Append(r Record, sync bool) error {
	if err := checkRecord(r); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.err != nil {
		return l.err
	}
	l.buf, _ = AppendFrame(l.buf[:0], r) // checked above
	act := &l.segs[len(l.segs)-1]
	if act.size > 0 && act.size+int64(len(l.buf)) > l.segSize {
		if err := l.rotate(); err != nil {
			return l.fail(err)
		}
		act = &l.segs[len(l.segs)-1]
	}
	// A failed or short write leaves a partial frame. The log then refuses
	// further appends, so nothing valid follows it and the next Open cuts it.
	if _, err := l.f.Write(l.buf); err != nil {
		return l.fail(err)
	}
	act.size += int64(len(l.buf))
	act.add(r.Height)
	if cap(l.buf) > 1<<20 {
		l.buf = nil // do not pin a large record's buffer
	}
	if sync {
		if err := l.f.Sync(); err != nil {
			// After a failed fsync the page cache cannot be trusted
			// to reach the disk; only a reopen can tell what did.
			return l.fail(err)
		}
	}
	return nil
}

func (l *FileLog) fail(err error) error {
	l.err = fmt.Errorf("wal: append failed, reopen the log: %w", err)
	return l.err
}

// rotate fsyncs and closes the active segment and starts the next one.
func (l *FileLog) rotate() error {
	if err := l.f.Sync(); err != nil {
		return err
	}
	if err := l.f.Close(); err != nil {
		return err
	}
	l.f = nil
	next := l.segs[len(l.segs)-1].index + 1
	if err := createSegment(l.dir, next); err != nil {
		return err
	}
	f, err := os.OpenFile(l.path(next), os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	l.f = f
	l.segs = append(l.segs, segment{index: next})
	return nil
}

// Replay implements Log.Replay. It reads the records present when it
// starts; fn may Append (later records are not replayed) but must not call
// Prune. It searches for the starting marker from the newest segment
// backwards, skipping segments whose heights are all at or above height.
// Damage found while replaying (the files changed after Open) is an error.
func (l *FileLog) Replay(height uint64, fn func(Record) error) error {
	l.replayMu.RLock()
	defer l.replayMu.RUnlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	segs := slices.Clone(l.segs)
	l.mu.Unlock()

	first, from := 0, int64(0)
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		if s.records == 0 || s.minHeight >= height {
			continue // no marker below height in here
		}
		found := int64(-1)
		_, err := readSegment(l.path(s.index), 0, s.size, func(r Record, end int64) error {
			if r.Kind == KindEndHeight && r.Height < height {
				found = end
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("wal: replay %s: %w", l.path(s.index), err)
		}
		if found >= 0 {
			first, from = i, found
			break
		}
	}
	var fnErr error
	for _, s := range segs[first:] {
		_, err := readSegment(l.path(s.index), from, s.size, func(r Record, _ int64) error {
			if r.Height != height {
				return nil
			}
			r.Data = bytes.Clone(r.Data)
			fnErr = fn(r)
			return fnErr
		})
		if fnErr != nil {
			return fnErr
		}
		if err != nil {
			return fmt.Errorf("wal: replay %s: %w", l.path(s.index), err)
		}
		from = 0
	}
	return nil
}

// MaxHeight returns the highest height of any record the log holds
// (records and end-height markers alike), 0 when it holds none. It reads
// no file: Open and Append keep each segment's heights.
func (l *FileLog) MaxHeight() (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	var top uint64
	for _, s := range l.segs {
		if s.records > 0 {
			top = max(top, s.maxHeight)
		}
	}
	return top, nil
}

// Prune deletes, oldest first, the segments all of whose records are for
// heights below belowHeight, never the active segment, and fsyncs the
// directory. Disk use is then bounded by the segments of the heights kept.
// The caller must only prune heights it will never replay; Replay of a
// height whose end-height marker was pruned still finds its records.
func (l *FileLog) Prune(belowHeight uint64) error {
	l.replayMu.Lock()
	defer l.replayMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	n := 0
	for n < len(l.segs)-1 {
		s := l.segs[n]
		if s.records > 0 && s.maxHeight >= belowHeight {
			break
		}
		if err := os.Remove(l.path(s.index)); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.segs = l.segs[n:]
			return fmt.Errorf("wal: prune: %w", err)
		}
		n++
	}
	if n == 0 {
		return nil
	}
	l.segs = append([]segment(nil), l.segs[n:]...)
	if err := durable.SyncDir(l.dir); err != nil {
		return fmt.Errorf("wal: prune: %w", err)
	}
	l.logger.Debug("wal: pruned segments", "below_height", belowHeight, "segments", n)
	return nil
}

// Close fsyncs and closes the active segment. Later calls of any method
// return ErrClosed; a second Close returns nil.
func (l *FileLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.f == nil {
		return l.err
	}
	var errSync error
	if l.err == nil {
		errSync = l.f.Sync()
	}
	return errors.Join(l.err, errSync, l.f.Close())
}

func (l *FileLog) path(index uint64) string { return filepath.Join(l.dir, segmentName(index)) }

// --- segment files ---

const (
	segPrefix = "wal-"
	segSuffix = ".log"
)

func segmentName(index uint64) string { return fmt.Sprintf("%s%08d%s", segPrefix, index, segSuffix) }

// listSegments returns the segment numbers in dir, ascending, and fails
// if they are not contiguous (a segment in the middle is missing).
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var idx []uint64
	for _, e := range ents {
		name := e.Name()
		num, ok := strings.CutPrefix(name, segPrefix)
		if !ok {
			continue
		}
		if num, ok = strings.CutSuffix(num, segSuffix); !ok {
			continue
		}
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil || segmentName(n) != name {
			continue // not ours
		}
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("wal: %s is not a regular file", filepath.Join(dir, name))
		}
		idx = append(idx, n)
	}
	slices.Sort(idx)
	for i := 1; i < len(idx); i++ {
		if idx[i] != idx[i-1]+1 {
			return nil, fmt.Errorf("wal: %s: segment %s is missing", dir, segmentName(idx[i-1]+1))
		}
	}
	return idx, nil
}

// createSegment creates an empty segment file and makes its name durable.
func createSegment(dir string, index uint64) error {
	f, err := os.OpenFile(filepath.Join(dir, segmentName(index)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	return nil
}

// readSegment reads the frames of the file at path from offset from up to
// offset limit (-1: the end of the file), calling fn with each record and
// the offset just past it; the record's Data is only valid during fn. It
// returns the file's size. A frame cut short by limit or by the end of the
// file is an ErrTorn error; fn's error is returned as is.
func readSegment(path string, from, limit int64, fn func(r Record, end int64) error) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if limit < 0 || limit > size {
		limit = size
	}
	if from > 0 {
		if _, err := f.Seek(from, io.SeekStart); err != nil {
			return size, err
		}
	}
	fr := frameReader{r: bufio.NewReaderSize(io.LimitReader(f, limit-from), 64<<10), off: from}
	for {
		r, err := fr.next()
		if err == io.EOF {
			return size, nil
		}
		if err != nil {
			return size, fmt.Errorf("offset %d: %w", fr.off, err)
		}
		if err := fn(r, fr.off); err != nil {
			return size, err
		}
	}
}

// frameReader decodes consecutive frames from r.
type frameReader struct {
	r   *bufio.Reader
	off int64 // offset of the next frame
	hdr [frameHeaderSize]byte
	buf []byte
}

// next returns the next record (its Data valid until the following call),
// io.EOF at a clean end, or an error wrapping ErrTorn, ErrCorrupt or
// ErrUnsupported; f.off then stays at the start of the bad frame.
func (fr *frameReader) next() (Record, error) {
	n, err := io.ReadFull(fr.r, fr.hdr[:])
	if err == io.EOF {
		return Record{}, io.EOF
	}
	if err == io.ErrUnexpectedEOF {
		return Record{}, fmt.Errorf("%w: %d bytes of header", ErrTorn, n)
	}
	if err != nil {
		return Record{}, err
	}
	size, err := frameLength(fr.hdr[:])
	if err != nil {
		return Record{}, err
	}
	if cap(fr.buf) < size {
		fr.buf = make([]byte, size)
	}
	p := fr.buf[:size]
	if n, err := io.ReadFull(fr.r, p); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return Record{}, fmt.Errorf("%w: %d of %d payload bytes", ErrTorn, n, size)
		}
		return Record{}, err
	}
	r, err := decodePayload(fr.hdr[:], p)
	if err != nil {
		return Record{}, err
	}
	fr.off += int64(frameHeaderSize + size)
	return r, nil
}

// --- durability helpers ---

// truncateSync cuts the file at path to size and fsyncs it.
func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
