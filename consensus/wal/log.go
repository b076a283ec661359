package wal

// Log is a write-ahead log of consensus inputs. FileLog keeps it on disk;
// MemLog keeps it in memory for the deterministic simulator. Both are safe
// for concurrent use.
type Log interface {
	// Append adds r at the end of the log. With sync true the record, and
	// every record appended before it, is durable (fsynced) when Append
	// returns nil. It refuses records larger than MaxRecordSize or of an
	// unknown kind. After an I/O failure the log refuses every later Append
	// (the node must restart and reopen it), so a record that failed is
	// never followed by records that succeeded.
	Append(r Record, sync bool) error

	// Replay calls fn, in append order, for every record of height that
	// was appended after the last KindEndHeight marker for a height below
	// height (from the start of the log if there is none): the inputs of
	// the unfinished height. Records of other heights in that range (for
	// example the inputs of a height whose block was stored but whose
	// marker was not written before a crash) are skipped. A KindEndHeight
	// record for height itself is delivered, telling the caller the height
	// was already finished. fn gets its own copy of Data. Replay stops at
	// and returns the first error fn returns.
	Replay(height uint64, fn func(Record) error) error

	// Close makes every appended record durable and releases the log.
	Close() error
}

var (
	_ Log = (*FileLog)(nil)
	_ Log = (*MemLog)(nil)
)
