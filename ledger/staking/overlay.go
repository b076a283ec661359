package staking

import (
	"bytes"
	"errors"
	"slices"
	"strings"
)

// Reader is the committed staking state a block executes on.
type Reader interface {
	// Get returns the value under key, or (nil, nil) when it is absent.
	Get(key []byte) ([]byte, error)
	// Iterate calls fn for every key with the prefix in ascending byte
	// order; the slices it passes are valid only during the call. It stops
	// at, and returns, the first error fn returns.
	Iterate(prefix []byte, fn func(key, value []byte) error) error
}

// Change is one staged write: Value nil deletes Key.
type Change struct {
	Key, Value []byte
}

// errStop ends an iteration early; iterate swallows it.
var errStop = errors.New("staking: stop iteration")

// staged is one pending write; del marks a deletion.
type staged struct {
	value []byte
	del   bool
}

// overlay is a set of pending writes over a Reader. Reads see the staged
// writes; iteration merges them with the base in key order, and staged
// deletions hide the base's keys.
type overlay struct {
	base   Reader
	writes map[string]staged
}

func newOverlay(base Reader) overlay {
	return overlay{base: base, writes: make(map[string]staged)}
}

func (o *overlay) get(k []byte) ([]byte, error) {
	if w, ok := o.writes[string(k)]; ok {
		if w.del {
			return nil, nil
		}
		return w.value, nil
	}
	return o.base.Get(k)
}

func (o *overlay) set(k, v []byte) { o.writes[string(k)] = staged{value: v} }

func (o *overlay) del(k []byte) { o.writes[string(k)] = staged{del: true} }

// iterate calls fn for every key with the prefix, staged writes merged
// over the base, in ascending order. fn must not write to the overlay; it
// may return errStop to end the iteration without error.
func (o *overlay) iterate(prefix []byte, fn func(k, v []byte) error) error {
	var keys []string
	for k := range o.writes {
		if strings.HasPrefix(k, string(prefix)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	i := 0
	// emitStaged emits the staged keys below limit (all of them when limit
	// is nil) and reports whether the next one equals limit.
	emitStaged := func(limit []byte) (bool, error) {
		for i < len(keys) {
			c := 1
			if limit != nil {
				c = bytes.Compare([]byte(keys[i]), limit)
			}
			if limit != nil && c >= 0 {
				return c == 0, nil
			}
			if w := o.writes[keys[i]]; !w.del {
				if err := fn([]byte(keys[i]), w.value); err != nil {
					return false, err
				}
			}
			i++
		}
		return false, nil
	}
	err := o.base.Iterate(prefix, func(k, v []byte) error {
		same, err := emitStaged(k)
		if err != nil {
			return err
		}
		if same {
			w := o.writes[keys[i]]
			i++
			if w.del {
				return nil
			}
			return fn(k, w.value)
		}
		return fn(k, v)
	})
	if err == nil {
		_, err = emitStaged(nil)
	}
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// changes returns every staged write sorted by key.
func (o *overlay) changes() []Change {
	out := make([]Change, 0, len(o.writes))
	for k, w := range o.writes {
		c := Change{Key: []byte(k)}
		if !w.del {
			c.Value = bytes.Clone(w.value)
			if c.Value == nil {
				c.Value = []byte{}
			}
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Change) int { return bytes.Compare(a.Key, b.Key) })
	return out
}
