package wal

import (
	"bytes"
	"sync"
)

// MemLog is an in-memory Log for the deterministic simulator. It tracks
// which records were synced, so Crash can model a node killed at any
// instant: what Append(r, true) returned for is kept, and a prefix of the
// records appended after it may or may not have reached the disk.
type MemLog struct {
	mu     sync.Mutex
	recs   []Record
	synced int // recs[:synced] are durable
	closed bool
}

// NewMem returns an empty MemLog.
func NewMem() *MemLog { return &MemLog{} }

// Append adds a copy of r; with sync true it and every earlier record
// become durable, that is, survive Crash.
func (m *MemLog) Append(r Record, sync bool) error {
	if err := checkRecord(r); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	r.Data = bytes.Clone(r.Data)
	m.recs = append(m.recs, r)
	if sync {
		m.synced = len(m.recs)
	}
	return nil
}

// Replay implements Log.Replay over the records held now.
func (m *MemLog) Replay(height uint64, fn func(Record) error) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	// Copy the selected records so fn may call back into the log.
	var out []Record
	start := 0
	for i := len(m.recs) - 1; i >= 0; i-- {
		if r := m.recs[i]; r.Kind == KindEndHeight && r.Height < height {
			start = i + 1
			break
		}
	}
	for _, r := range m.recs[start:] {
		if r.Height == height {
			r.Data = bytes.Clone(r.Data)
			out = append(out, r)
		}
	}
	m.mu.Unlock()
	for _, r := range out {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// MaxHeight returns the highest height of any record held (records and
// end-height markers alike), 0 when it holds none.
func (m *MemLog) MaxHeight() (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	var top uint64
	for _, r := range m.recs {
		top = max(top, r.Height)
	}
	return top, nil
}

// Close makes every record durable (a clean shutdown flushes) and refuses
// further use until Crash reopens the log.
func (m *MemLog) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.synced = len(m.recs)
	m.closed = true
	return nil
}

// Crash simulates a crash and restart: the synced records are kept, plus
// at most keepUnsynced of the records appended after the last synced one
// (in order: a write can be lost only with everything after it), and the
// rest are dropped. The kept records count as durable afterwards, as
// FileLog makes what it reads durable on Open. The log is open again after
// Crash, even if it was closed.
func (m *MemLog) Crash(keepUnsynced int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := m.synced + max(0, min(keepUnsynced, len(m.recs)-m.synced))
	clear(m.recs[keep:])
	m.recs = m.recs[:keep]
	m.synced = keep
	m.closed = false
}

// Unsynced returns how many records would be at risk in a Crash now.
func (m *MemLog) Unsynced() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs) - m.synced
}

// Records returns copies of the records held, in append order, and how
// many of them, from the start, are durable: what a test prints to show
// the log and its sync point.
func (m *MemLog) Records() (recs []Record, synced int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	recs = make([]Record, len(m.recs))
	for i, r := range m.recs {
		r.Data = bytes.Clone(r.Data)
		recs[i] = r
	}
	return recs, m.synced
}

// Len returns the number of records held.
func (m *MemLog) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs)
}

// Prune drops the longest prefix of records whose heights are all below
// belowHeight, bounding the memory a long simulation uses. Like
// FileLog.Prune, the caller must only prune heights it will never replay.
func (m *MemLog) Prune(belowHeight uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	n := 0
	for n < len(m.recs) && m.recs[n].Height < belowHeight {
		n++
	}
	m.recs = append([]Record(nil), m.recs[n:]...)
	m.synced = max(0, m.synced-n)
	return nil
}

// LoseTail drops the last n records (all of them if there are fewer),
// synced or not, and returns how many it dropped: what a disk that
// acknowledged writes it never made durable loses. It is always a suffix,
// since FileLog.Open cuts the log at its first damaged frame.
func (m *MemLog) LoseTail(n int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n = max(0, min(n, len(m.recs)))
	keep := len(m.recs) - n
	clear(m.recs[keep:])
	m.recs = m.recs[:keep]
	m.synced = min(m.synced, keep)
	return n
}

// MemImage is a copy of what a MemLog held durably at one moment.
type MemImage struct {
	recs []Record
}

// Len is the number of records in the image.
func (img MemImage) Len() int { return len(img.recs) }

// Image returns a copy of the durable records: what a copy of the disk
// taken now would hold.
func (m *MemLog) Image() MemImage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return MemImage{recs: append([]Record(nil), m.recs[:m.synced]...)}
}

// Restore replaces the log's records with img's, all durable, as a disk
// restored from an image; the log is open afterwards.
func (m *MemLog) Restore(img MemImage) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append([]Record(nil), img.recs...)
	m.synced = len(m.recs)
	m.closed = false
}
