package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Level is a DB backed by goleveldb files in one directory.
type Level struct {
	db *leveldb.DB
}

// OpenLevel opens (creating if needed) the LevelDB database in dir.
// A database left by a crash is recovered by goleveldb's journal replay;
// a batch that had not been fully written is not visible after reopening.
func OpenLevel(dir string) (*Level, error) {
	db, err := leveldb.OpenFile(dir, &opt.Options{
		BlockCacheCapacity: 32 * opt.MiB,
		WriteBuffer:        16 * opt.MiB,
		// Point reads (accounts and transactions by hash, tree nodes by
		// version and path) miss most tables; a bloom filter skips those
		// tables without a read.
		Filter: filter.NewBloomFilter(10),
	})
	if err != nil {
		return nil, fmt.Errorf("open leveldb %s: %w", dir, err)
	}
	return &Level{db: db}, nil
}

func mapErr(err error) error {
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, leveldb.ErrClosed):
		return ErrClosed
	}
	return err
}

func (l *Level) Get(key []byte) ([]byte, error) {
	v, err := l.db.Get(key, nil)
	if err != nil {
		return nil, mapErr(err)
	}
	return v, nil
}

func (l *Level) Has(key []byte) (bool, error) {
	ok, err := l.db.Has(key, nil)
	return ok, mapErr(err)
}

func (l *Level) Iterate(prefix []byte, fn func(key, value []byte) bool) error {
	it := l.db.NewIterator(util.BytesPrefix(prefix), nil)
	defer it.Release()
	for it.Next() {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	return mapErr(it.Error())
}

func (l *Level) IterateFrom(prefix, start []byte, fn func(key, value []byte) bool) error {
	r := util.BytesPrefix(prefix)
	if bytes.Compare(start, r.Start) > 0 {
		r.Start = start
	}
	it := l.db.NewIterator(r, nil)
	defer it.Release()
	for it.Next() {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	return mapErr(it.Error())
}

func (l *Level) NewBatch() Batch { return &opBatch{} }

func (l *Level) Write(b Batch, sync bool) error {
	ob, ok := b.(*opBatch)
	if !ok {
		return errors.New("kv: batch from another store")
	}
	// Size the batch once: goleveldb grows a batch by a fraction of its
	// size once it holds more than a few thousand records, which copies a
	// large batch over and over.
	n := 0
	for _, o := range ob.ops {
		n += 1 + 2*binary.MaxVarintLen32 + len(o.key) + len(o.value)
	}
	lb := leveldb.MakeBatch(n)
	for _, o := range ob.ops {
		if o.del {
			lb.Delete(o.key)
		} else {
			lb.Put(o.key, o.value)
		}
	}
	return mapErr(l.db.Write(lb, &opt.WriteOptions{Sync: sync}))
}

func (l *Level) Close() error { return mapErr(l.db.Close()) }
