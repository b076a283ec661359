package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgerd/ledgerd/crypto"
	"github.com/ledgerd/ledgerd/internal/testkit/netports"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/node"
	"github.com/ledgerd/ledgerd/privval"
	"github.com/ledgerd/ledgerd/rpc/api"
	"github.com/ledgerd/ledgerd/rpc/client"
)

// devChain is a `ledgerd dev` process on a home of its own, restarted on
// the same home and ports.
type devChain struct {
	t        *testing.T
	bin      string
	home     string
	rpcAddr  string
	p2pAddr  string
	client   *client.Client
	cmd      *exec.Cmd
	exited   chan struct{}
	stdout   *bytes.Buffer
	logPath  string
	runs     int
	extraArg []string
}

// newDevChain prepares a dev chain in a temporary home (not started).
func newDevChain(t *testing.T) *devChain {
	t.Helper()
	bin := ledgerdBinary(t)
	base, err := netports.Range(2)
	if err != nil {
		t.Fatal(err)
	}
	d := &devChain{t: t, bin: bin, home: filepath.Join(t.TempDir(), "dev"),
		rpcAddr: fmt.Sprintf("127.0.0.1:%d", base+1), p2pAddr: fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", base)}
	d.logPath = filepath.Join(filepath.Dir(d.home), "dev.log")
	if d.client, err = client.New("http://" + d.rpcAddr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			b, _ := os.ReadFile(d.logPath)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("--- dev chain log tail ---\n%s", b)
		}
	})
	return d
}

// command returns an unstarted `ledgerd dev` on the chain's home and ports.
func (d *devChain) command(args ...string) *exec.Cmd {
	all := append([]string{"dev", "--home", d.home, "--rpc-addr", d.rpcAddr, "--p2p.laddr", d.p2pAddr}, d.extraArg...)
	cmd := exec.Command(d.bin, append(all, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// start runs the dev chain and waits until its RPC answers.
func (d *devChain) start() {
	d.t.Helper()
	d.startNoWait()
	d.waitRPC(60 * time.Second)
}

// startNoWait runs the dev chain, its output appended to the chain's log.
func (d *devChain) startNoWait() {
	d.t.Helper()
	if d.cmd != nil {
		d.t.Fatal("dev chain already running")
	}
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	d.runs++
	fmt.Fprintf(logf, "=== run %d ===\n", d.runs)
	cmd := d.command()
	d.stdout = new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = d.stdout, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		d.t.Fatal(err)
	}
	d.cmd, d.exited = cmd, make(chan struct{})
	exited := d.exited
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
}

// waitRPC waits until the node answers status, failing if it exits.
func (d *devChain) waitRPC(timeout time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := d.client.Status(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-d.exited:
			d.t.Fatalf("dev chain exited while starting: %v\n%s", d.cmd.ProcessState, d.logTail(3000))
		case <-time.After(50 * time.Millisecond): // polling: the process has no readiness event
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("dev chain RPC not up within %s: %v", timeout, err)
		}
	}
}

// kill sends SIGKILL and waits for the process to die.
func (d *devChain) kill() {
	d.t.Helper()
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
	d.cmd = nil
}

// stop sends SIGTERM and waits for a clean exit (killing it after a while).
func (d *devChain) stop() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.exited
	}
	d.cmd = nil
}

// waitExit waits for the process to exit by itself and returns its exit code.
func (d *devChain) waitExit(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.exited:
	case <-time.After(timeout):
		d.t.Fatalf("dev chain still running after %s", timeout)
	}
	code := d.cmd.ProcessState.ExitCode()
	d.cmd = nil
	return code
}

func (d *devChain) logTail(max int) string {
	b, _ := os.ReadFile(d.logPath)
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// devKey is the dev chain's funded account.
func (d *devChain) devKey() crypto.PrivKey {
	d.t.Helper()
	k, err := privval.LoadKeyFile(node.DefaultConfig(d.home).DevAccountKeyFile())
	if err != nil {
		d.t.Fatal(err)
	}
	return k
}

// height is the node's latest committed height.
func (d *devChain) height() uint64 {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := d.client.Status(ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	return uint64(st.LatestHeight)
}

// transfer sends one transfer and waits until it commits; it returns the
// transfer and the height it committed at.
func (d *devChain) transfer(key crypto.PrivKey, to crypto.Address, nonce uint64) (*ledger.Tx, uint64) {
	d.t.Helper()
	tx := &ledger.Tx{ChainID: node.DevChainID, To: to, Amount: 1, Fee: 1, Nonce: nonce}
	tx.Sign(key)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := d.client.SendTxAndWait(ctx, tx, 20*time.Second)
	if err != nil {
		d.t.Fatalf("transfer nonce %d: %v", nonce, err)
	}
	if got.Status != api.TxCommitted {
		d.t.Fatalf("transfer nonce %d: status %v", nonce, got.Status)
	}
	var h uint64
	if got.Height != nil {
		h = uint64(*got.Height)
	}
	return tx, h
}

// TestSecondNodeOnAHomeInUseSaysSo: a second `ledgerd dev` on a home a
// running one holds exits at once, naming the home and the holder's pid,
// and prints nothing (in particular not the dev private key).
func TestSecondNodeOnAHomeInUseSaysSo(t *testing.T) {
	d := newDevChain(t)
	d.start()
	second := d.command()
	var stdout, stderr bytes.Buffer
	second.Stdout, second.Stderr = &stdout, &stderr
	err := second.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("second ledgerd on the same home: %v, want a non-zero exit\nstdout: %s\nstderr: %s", err, &stdout, &stderr)
	}
	if stdout.Len() != 0 {
		t.Errorf("second ledgerd printed before failing:\n%s", &stdout)
	}
	want := fmt.Sprintf("home %s is in use by another ledgerd (pid %d)", d.home, d.cmd.Process.Pid)
	if !strings.Contains(stderr.String(), want) {
		t.Fatalf("second ledgerd said:\n%s\nwant it to contain %q", &stderr, want)
	}
	// The first node is unaffected.
	k := d.devKey()
	d.transfer(k, crypto.Address{1}, 0)

	// `ledgerd start` on the home says the same.
	start := exec.Command(d.bin, "start", "--home", d.home)
	out, err := start.CombinedOutput()
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("ledgerd start on a home in use: %v\n%s\nwant %q", err, out, want)
	}
}
