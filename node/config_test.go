package node

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfigFileRoundTrip(t *testing.T) {
	home := t.TempDir()
	want := DefaultConfig(home)
	want.Moniker = "alpha"
	want.P2P.PersistentPeers = []string{"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWabc"}
	want.RPC.CORSAllowedOrigins = []string{"https://example.test"}
	want.Mempool.TTL = Duration{3 * time.Minute}
	want.Consensus.CreateEmptyBlocks = false
	if err := want.WriteFile(want.ConfigFile()); err != nil {
		t.Fatal(err)
	}
	got, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestConfigRejectsUnknownAndBadOptions(t *testing.T) {
	cases := []struct{ name, body, wantErr string }{
		{"unknown key", "moniker = \"x\"\nmonikr = \"typo\"\n", "unknown option(s) monikr"},
		{"unknown section key", "[rpc]\nladdr = \"127.0.0.1:1\"\nmax_bodybytes = 5\n", "rpc.max_bodybytes"},
		{"bad duration", "[mempool]\nttl = \"ten minutes\"\n", "ttl"},
		{"bad log level", "log_level = \"loud\"\n", "log_level"},
		{"bad rpc address", "[rpc]\nladdr = \"nohostport\"\n", "rpc.laddr"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			c := DefaultConfig(home)
			if err := os.MkdirAll(c.ConfigDir(), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(c.ConfigFile(), []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(home)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestDefaultConfigBindsRPCToLoopback(t *testing.T) {
	if got := DefaultConfig(t.TempDir()).RPC.ListenAddr; !strings.HasPrefix(got, "127.0.0.1:") {
		t.Fatalf("default RPC address %q is not loopback", got)
	}
}
