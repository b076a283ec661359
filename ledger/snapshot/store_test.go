package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const childEnv = "LEDGERD_SNAPSHOT_CHILD"

// TestMain lets the test binary act as the child the crash tests kill.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := runChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "snapshot child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	code := m.Run()
	removeBenchStates()
	os.Exit(code)
}

// runChild runs the child named by spec: its kind, then its arguments,
// separated by spaces.
func runChild(spec string) error {
	f := strings.Fields(spec)
	if len(f) == 0 {
		return fmt.Errorf("empty child spec")
	}
	switch f[0] {
	case "create":
		if len(f) != 2 {
			return fmt.Errorf("spec %q", spec)
		}
		return createChild(f[1])
	case "restore":
		return restoreChild(f[1:])
	}
	return fmt.Errorf("unknown child %q", f[0])
}

// childTree is the state the create child snapshots: fixed, so the parent
// can build the same.
func childTree() *memTree { return newMemTree(randomLeaves(rand.New(rand.NewPCG(7, 7)), 40_000)) }

// createChild takes the snapshot of childTree at height 20 into dir, and
// once a few chunks are on disk prints "writing" and stops for good in
// the middle of it, to be killed.
func createChild(dir string) error {
	s, err := OpenStore(dir, 3)
	if err != nil {
		return err
	}
	tree := childTree()
	stall := &stallingSource{Source: tree, after: 4, stalled: make(chan struct{}), release: make(chan struct{})}
	go func() {
		<-stall.stalled
		fmt.Println("writing")
	}()
	_, err = s.Create(context.Background(), stall, 1, 20, tree.root())
	return err
}

// stallingSource passes through to Source until its after-th Leaves call,
// where it closes stalled and waits for release.
type stallingSource struct {
	Source
	after   int
	calls   int
	stalled chan struct{}
	release chan struct{}
}

func (s *stallingSource) Leaves(version uint64, depth int, prefix [32]byte, fn func(Leaf) error) error {
	if s.calls++; s.calls == s.after {
		close(s.stalled)
		<-s.release
	}
	return s.Source.Leaves(version, depth, prefix, fn)
}

func TestStoreCreateListServe(t *testing.T) {
	tree, want := fixture(t, 30_000)
	s, err := OpenStore(t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []uint64{10, 42, 30} {
		m, err := s.Create(bgCtx, tree, 1, h, tree.root())
		if err != nil {
			t.Fatal(err)
		}
		if m.Height != h {
			t.Fatalf("manifest of height %d", m.Height)
		}
	}
	list := s.List()
	if len(list) != 2 || list[0].Height != 30 || list[1].Height != 42 {
		t.Fatalf("list %+v, want heights 30 and 42 (keep 2)", list)
	}
	if list[1].ID != want.m.ID() || list[1].Chunks != len(want.chunks) || list[1].Bytes != want.m.TotalBytes() {
		t.Fatalf("list entry %+v, want the snapshot Build makes", list[1])
	}
	m, err := s.Manifest(42)
	if err != nil || m.ID() != want.m.ID() {
		t.Fatalf("manifest: %v", err)
	}
	for i, raw := range want.chunks {
		got, err := s.Chunk(42, i)
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	for _, tc := range []struct {
		h uint64
		i int
	}{{10, 0}, {42, -1}, {42, len(want.chunks)}} {
		if _, err := s.Chunk(tc.h, tc.i); !errors.Is(err, ErrNotFound) {
			t.Fatalf("chunk %d of %d: %v", tc.i, tc.h, err)
		}
	}
	if _, err := s.Manifest(10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("manifest of a pruned snapshot: %v", err)
	}
	if m, err := s.Create(bgCtx, tree, 1, 42, tree.root()); err != nil || m.ID() != want.m.ID() {
		t.Fatalf("Create again at a held height: %v", err)
	}
	if err := s.Delete(30); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(30); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "30")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("deleted snapshot's directory: %v", err)
	}
	// A reopened store holds the same snapshots.
	again, err := OpenStore(s.dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if l := again.List(); len(l) != 1 || l[0] != s.List()[0] {
		t.Fatalf("reopened: %+v, before %+v", l, s.List())
	}
}

// A chunk file damaged on disk is never served.
func TestStoreNeverServesACorruptChunk(t *testing.T) {
	tree, _ := fixture(t, 40_000)
	s, err := OpenStore(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Create(bgCtx, tree, 1, 5, tree.root())
	if err != nil {
		t.Fatal(err)
	}
	path := func(i int) string { return filepath.Join(s.dir, "5", chunkFile(i)) }
	damage := []struct {
		name string
		do   func(p string) error
	}{
		{"flipped byte", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 0x10
			return os.WriteFile(p, b, 0o600)
		}},
		{"truncated", func(p string) error { return os.Truncate(p, 100) }},
		{"extended", func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte{0})
			return err
		}},
		{"removed", os.Remove},
	}
	if len(m.Chunks) < len(damage) {
		t.Fatalf("%d chunks", len(m.Chunks))
	}
	for i, d := range damage {
		if err := d.do(path(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Chunk(5, i); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s chunk: %v", d.name, err)
		}
	}
	if _, err := s.Chunk(5, len(damage)); err != nil {
		t.Fatalf("an intact chunk: %v", err)
	}
}

func TestOpenStoreCleansUp(t *testing.T) {
	tree, _ := fixture(t, 5000)
	dir := t.TempDir()
	s, err := OpenStore(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(bgCtx, tree, 1, 8, tree.root()); err != nil {
		t.Fatal(err)
	}
	mustMkdir := func(p string) {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mustMkdir(filepath.Join(dir, "9.tmp"))
	if err := os.WriteFile(filepath.Join(dir, "9.tmp", chunkFile(0)), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustMkdir(filepath.Join(dir, "11"))
	if err := os.WriteFile(filepath.Join(dir, "11", manifestFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustMkdir(filepath.Join(dir, "12")) // no manifest at all
	mustMkdir(filepath.Join(dir, "other"))
	if err := os.Rename(filepath.Join(dir, "8"), filepath.Join(dir, "13")); err != nil {
		t.Fatal(err)
	}
	// 13 holds the manifest of height 8: not what its name says.
	s, err = OpenStore(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if l := s.List(); len(l) != 0 {
		t.Fatalf("listed %+v", l)
	}
	for _, name := range []string{"9.tmp", "11", "12", "13"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left in place: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "other")); err != nil {
		t.Fatalf("a directory not the store's was touched: %v", err)
	}
}

func TestStoreCreateCancelled(t *testing.T) {
	tree, _ := fixture(t, 20_000)
	s, err := OpenStore(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bgCtx)
	cancel()
	if _, err := s.Create(ctx, tree, 1, 3, tree.root()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create with a cancelled context: %v", err)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 || len(s.List()) != 0 {
		t.Fatalf("left %v", entries)
	}
}

func TestStoreCreateOneAtATime(t *testing.T) {
	tree, _ := fixture(t, 20_000)
	s, err := OpenStore(t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	stall := &stallingSource{Source: tree, after: 2, stalled: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := s.Create(bgCtx, stall, 1, 6, tree.root())
		done <- err
	}()
	<-stall.stalled
	if _, err := s.Create(bgCtx, tree, 1, 7, tree.root()); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second Create: %v", err)
	}
	if l := s.List(); len(l) != 0 {
		t.Fatalf("a snapshot being written is listed: %+v", l)
	}
	close(stall.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l := s.List(); len(l) != 1 || l[0].Height != 6 {
		t.Fatalf("list %+v", l)
	}
}

// A producer killed while it writes leaves no half snapshot: the store
// reopens with the snapshots it finished before, and nothing else.
func TestProducerKilledMidWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	tree := childTree()
	s, err := OpenStore(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.Create(bgCtx, tree, 1, 10, tree.root())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=create "+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "writing" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q", sc.Text())
	}
	written, err := filepath.Glob(filepath.Join(dir, "20.tmp", "chunk.*"))
	if err != nil || len(written) == 0 {
		t.Fatalf("the child is not mid-write: %v, %v", written, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	t.Logf("killed with %d chunk files written", len(written))

	s, err = OpenStore(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	l := s.List()
	if len(l) != 1 || l[0].Height != 10 || l[0].ID != before.ID() {
		t.Fatalf("after the crash the store lists %+v", l)
	}
	if _, err := os.Stat(filepath.Join(dir, "20.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the unfinished snapshot was left: %v", err)
	}
	for i := range before.Chunks {
		if _, err := s.Chunk(10, i); err != nil {
			t.Fatal(err)
		}
	}
	// And the snapshot can be taken again.
	m, err := s.Create(bgCtx, tree, 1, 20, tree.root())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Chunks) != len(before.Chunks) || m.TotalBytes() != before.TotalBytes() {
		t.Fatal("the retaken snapshot differs from the one of the same state")
	}
}
