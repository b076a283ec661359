// Package wal is the consensus write-ahead log: every input the consensus
// machine consumed that a replay cannot re-derive (messages received,
// timeouts fired, values proposed) is appended here before the effects it
// caused leave the node, so replaying the log after a crash brings the
// machine back to the state it had.
//
// # Format
//
// A log is a directory of segment files named wal-00000000.log,
// wal-00000001.log, ...; only the newest (highest numbered) is appended to,
// and it is rotated once it reaches the segment size. A segment is a
// sequence of frames:
//
//	crc32c  uint32  CRC-32C (Castagnoli) of length || payload
//	length  uint32  number of payload bytes, 10 to 10+MaxRecordSize
//	payload         version (1 byte) || kind (1 byte) || height (8 bytes) || data
//
// Integers are big-endian. The CRC covers the length, so a damaged length
// is detected like damaged data.
//
// # Recovery
//
// Open scans every segment. At the first frame that is cut short, fails its
// CRC or carries an impossible length, the log is truncated (later segments
// are removed), the change is fsynced and logged, and the number of bytes cut
// is reported by [FileLog.Repaired]. A torn or corrupt tail is therefore
// never fatal. A frame whose CRC is valid but whose payload this version
// cannot read (an unknown version or kind) is not damage but an
// incompatibility, and Open refuses it with an error rather than cutting
// data it does not understand.
//
// # Heights
//
// The driver appends [KindEndHeight] for height h once h is committed.
// [Log.Replay] for height h starts after the last end-height marker below h
// and yields the records of height h, which are exactly the inputs of the
// unfinished height.
package wal
