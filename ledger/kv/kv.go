// Package kv is the small key-value interface the ledger's stores are built on,
// with a goleveldb implementation for nodes and an in-memory one for unit tests.
//
// The contract is deliberately narrow: point reads, ordered prefix iteration,
// and atomic batches. A batch written with Sync set is durable when Write
// returns; a crash before that leaves none of it visible.
package kv

import "errors"

// ErrNotFound is returned by Get when the key is absent.
var ErrNotFound = errors.New("kv: not found")

// ErrClosed is returned by every operation on a closed store.
var ErrClosed = errors.New("kv: closed")

// Reader is the read side of a store.
type Reader interface {
	// Get returns a copy of the value stored under key, or ErrNotFound.
	Get(key []byte) ([]byte, error)
	// Has reports whether key is present.
	Has(key []byte) (bool, error)
	// Iterate calls fn for every key with the given prefix in ascending
	// byte order. Keys and values passed to fn are only valid during the
	// call. Iteration stops early, without error, when fn returns false.
	Iterate(prefix []byte, fn func(key, value []byte) bool) error
	// IterateFrom is Iterate starting at the first key with the prefix
	// that is not below start (a seek), so paging through a long range
	// costs the page, not everything before it.
	IterateFrom(prefix, start []byte, fn func(key, value []byte) bool) error
}

// Batch collects writes applied atomically by DB.Write.
type Batch interface {
	Put(key, value []byte)
	Delete(key []byte)
	// Len is the number of operations queued.
	Len() int
	// Reset empties the batch so it can be reused.
	Reset()
}

// DB is a key-value store with atomic batches.
type DB interface {
	Reader
	// NewBatch returns an empty batch for this store.
	NewBatch() Batch
	// Write applies every operation of b atomically. With sync set, the
	// batch is on stable storage when Write returns.
	Write(b Batch, sync bool) error
	// Close releases the store. Further calls return ErrClosed.
	Close() error
}

// op is one queued batch operation, shared by both implementations.
type op struct {
	key, value []byte
	del        bool
}

// opBatch is a Batch that records operations in order.
type opBatch struct{ ops []op }

func (b *opBatch) Put(key, value []byte) {
	b.ops = append(b.ops, op{key: clone(key), value: clone(value)})
}

func (b *opBatch) Delete(key []byte) { b.ops = append(b.ops, op{key: clone(key), del: true}) }
func (b *opBatch) Len() int          { return len(b.ops) }
func (b *opBatch) Reset()            { b.ops = b.ops[:0] }

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	c := make([]byte, len(b))
	copy(c, b)
	return c
}
