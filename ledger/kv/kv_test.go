package kv

import (
	"errors"
	"fmt"
	"testing"
)

// TestContract runs the same behaviour checks on every implementation.
func TestContract(t *testing.T) {
	impls := map[string]func(t *testing.T) DB{
		"mem": func(*testing.T) DB { return NewMem() },
		"level": func(t *testing.T) DB {
			db, err := OpenLevel(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
	}
	for name, open := range impls {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			if _, err := db.Get([]byte("a")); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
			}
			b := db.NewBatch()
			for _, k := range []string{"p/3", "p/1", "q/1", "p/2", "gone"} {
				b.Put([]byte(k), []byte("v"+k))
			}
			b.Delete([]byte("gone"))
			if b.Len() != 6 {
				t.Fatalf("batch Len %d, want 6", b.Len())
			}
			// A batch holds copies: changing the caller's buffer after Put changes nothing.
			key, val := []byte("p/4"), []byte("v4")
			b.Put(key, val)
			key[2], val[1] = '9', '9'
			if err := db.Write(b, true); err != nil {
				t.Fatal(err)
			}
			if ok, _ := db.Has([]byte("gone")); ok {
				t.Fatal("a key put then deleted in one batch is present")
			}
			if v, err := db.Get([]byte("p/4")); err != nil || string(v) != "v4" {
				t.Fatalf("Get(p/4) = %q, %v", v, err)
			}
			var got []string
			if err := db.Iterate([]byte("p/"), func(k, v []byte) bool {
				got = append(got, fmt.Sprintf("%s=%s", k, v))
				return true
			}); err != nil {
				t.Fatal(err)
			}
			if want := "[p/1=vp/1 p/2=vp/2 p/3=vp/3 p/4=v4]"; fmt.Sprint(got) != want {
				t.Fatalf("Iterate(p/) = %v, want %s", got, want)
			}
			for _, c := range []struct{ start, want string }{
				{"", "[p/1 p/2 p/3 p/4]"}, {"a", "[p/1 p/2 p/3 p/4]"}, {"p/2", "[p/2 p/3 p/4]"},
				{"p/25", "[p/3 p/4]"}, {"p/5", "[]"}, {"q", "[]"},
			} {
				var from []string
				if err := db.IterateFrom([]byte("p/"), []byte(c.start), func(k, v []byte) bool {
					from = append(from, string(k))
					return true
				}); err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(from) != c.want {
					t.Fatalf("IterateFrom(p/, %q) = %v, want %s", c.start, from, c.want)
				}
			}
			n := 0
			db.Iterate(nil, func(k, v []byte) bool { n++; return n < 2 })
			if n != 2 {
				t.Fatalf("Iterate did not stop when fn returned false: %d calls", n)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Get([]byte("p/1")); !errors.Is(err, ErrClosed) {
				t.Fatalf("Get after Close: %v, want ErrClosed", err)
			}
		})
	}
}

func TestMemFailNextWriteAppliesNothing(t *testing.T) {
	db := NewMem()
	b := db.NewBatch()
	b.Put([]byte("a"), []byte("1"))
	db.FailNextWrite = true
	if err := db.Write(b, true); !errors.Is(err, ErrInjected) {
		t.Fatalf("Write = %v, want ErrInjected", err)
	}
	if db.Len() != 0 {
		t.Fatal("a failed write applied something")
	}
	if err := db.Write(b, true); err != nil || db.Len() != 1 {
		t.Fatalf("the next write: %v, %d keys", err, db.Len())
	}
}
