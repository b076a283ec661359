package node

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a log sink safe for the node's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRPCBeyondLoopbackLogsAWarning starts a dev node with its RPC on
// every interface: the log must warn, naming the address and the
// options that guard it; on loopback it must not.
func TestRPCBeyondLoopbackLogsAWarning(t *testing.T) {
	for _, c := range []struct {
		laddr string
		warn  bool
	}{{"0.0.0.0:0", true}, {"127.0.0.1:0", false}} {
		t.Run(c.laddr, func(t *testing.T) {
			cfg, _, err := InitDevHome(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			cfg.RPC.ListenAddr = c.laddr
			cfg.P2P.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
			var logs lockedBuffer
			n, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := n.Stop(); err != nil {
				t.Fatal(err)
			}
			got := logs.String()
			warned := strings.Contains(got, "level=WARN") && strings.Contains(got, "not loopback")
			if warned != c.warn {
				t.Fatalf("rpc on %s: warned=%v, want %v; log:\n%s", c.laddr, warned, c.warn, got)
			}
			if c.warn && !strings.Contains(got, "rpc.vhosts") {
				t.Fatalf("the warning does not name the guarding options:\n%s", got)
			}
		})
	}
}
