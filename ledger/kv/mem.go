package kv

import (
	"bytes"
	"errors"
	"slices"
	"sort"
	"sync"
)

// Mem is an in-memory DB for unit tests. It is safe for concurrent use.
// FailNextWrite, when set, makes the next Write fail without applying
// anything, which lets tests simulate a commit cut off mid-write.
type Mem struct {
	mu     sync.RWMutex
	data   map[string][]byte
	closed bool
	// FailNextWrite makes the next Write return an error and apply nothing.
	FailNextWrite bool
}

// NewMem returns an empty in-memory store.
func NewMem() *Mem { return &Mem{data: make(map[string][]byte)} }

// ErrInjected is the error returned by a Write that FailNextWrite failed.
var ErrInjected = errors.New("kv: injected write failure")

func (m *Mem) Get(key []byte) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	v, ok := m.data[string(key)]
	if !ok {
		return nil, ErrNotFound
	}
	return clone(v), nil
}

func (m *Mem) Has(key []byte) (bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return false, ErrClosed
	}
	_, ok := m.data[string(key)]
	return ok, nil
}

func (m *Mem) Iterate(prefix []byte, fn func(key, value []byte) bool) error {
	return m.IterateFrom(prefix, nil, fn)
}

func (m *Mem) IterateFrom(prefix, start []byte, fn func(key, value []byte) bool) error {
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return ErrClosed
	}
	keys := make([]string, 0)
	for k := range m.data {
		if bytes.HasPrefix([]byte(k), prefix) && k >= string(start) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = clone(m.data[k])
	}
	m.mu.RUnlock()
	for i, k := range keys {
		if !fn([]byte(k), vals[i]) {
			return nil
		}
	}
	return nil
}

func (m *Mem) NewBatch() Batch { return &opBatch{} }

func (m *Mem) Write(b Batch, _ bool) error {
	ob, ok := b.(*opBatch)
	if !ok {
		return errors.New("kv: batch from another store")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.FailNextWrite {
		m.FailNextWrite = false
		return ErrInjected
	}
	for _, o := range ob.ops {
		if o.del {
			delete(m.data, string(o.key))
		} else {
			m.data[string(o.key)] = slices.Clone(o.value)
		}
	}
	return nil
}

func (m *Mem) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// Len reports the number of keys stored, for tests.
func (m *Mem) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.data)
}
