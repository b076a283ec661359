// Package localnet runs a network of real ledgerd processes on this
// machine: it generates their homes, starts, stops, kills, pauses and
// resumes them, and keeps each one's log in its home. The end-to-end tests
// and the chaos and bench commands are built on it.
package localnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ledgerd/ledgerd/node"
)

// Net is a local network of ledgerd processes.
type Net struct {
	Dir  string
	Bin  string
	Info *node.Testnet

	mu    sync.Mutex
	procs map[int]*proc
}

type proc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	paused bool
}

// Generate writes the homes of a new network into dir (see node.WriteTestnet)
// and returns it, not started. bin is the ledgerd binary to run.
func Generate(dir, bin string, o node.TestnetOptions) (*Net, error) {
	tn, err := node.WriteTestnet(dir, o)
	if err != nil {
		return nil, err
	}
	buf, err := json.MarshalIndent(tn, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "testnet.json"), append(buf, '\n'), 0o644); err != nil {
		return nil, err
	}
	return &Net{Dir: dir, Bin: bin, Info: tn, procs: map[int]*proc{}}, nil
}

// Load opens a network generated earlier (by Generate or `ledgerd testnet`).
func Load(dir, bin string) (*Net, error) {
	buf, err := os.ReadFile(filepath.Join(dir, "testnet.json"))
	if err != nil {
		return nil, fmt.Errorf("load testnet: %w", err)
	}
	var tn node.Testnet
	if err := json.Unmarshal(buf, &tn); err != nil {
		return nil, fmt.Errorf("load testnet: %w", err)
	}
	return &Net{Dir: dir, Bin: bin, Info: &tn, procs: map[int]*proc{}}, nil
}

// Size is the number of nodes.
func (n *Net) Size() int { return len(n.Info.Nodes) }

// LogPath is where node i's output goes.
func (n *Net) LogPath(i int) string { return filepath.Join(n.Info.Nodes[i].Home, "node.log") }

// RPCURL is node i's JSON-RPC endpoint.
func (n *Net) RPCURL(i int) string { return "http://" + n.Info.Nodes[i].RPCAddr }

// Start runs node i (`ledgerd start --home HOME args...`), appending its
// output to its log. It returns once the process has started.
func (n *Net) Start(i int, args ...string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.procs[i]; p != nil && !p.exited() {
		return fmt.Errorf("node%d is already running", i)
	}
	logf, err := os.OpenFile(n.LogPath(i), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(n.Bin, append([]string{"start", "--home", n.Info.Nodes[i].Home}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start node%d: %w", i, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	n.procs[i] = p
	return nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Running reports whether node i's process is alive (paused counts).
func (n *Net) Running(i int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.procs[i]
	return p != nil && !p.exited()
}

// Exited returns a channel closed when node i's process ends, or nil if it
// was never started.
func (n *Net) Exited(i int) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.procs[i]; p != nil {
		return p.done
	}
	return nil
}

func (n *Net) signal(i int, sig syscall.Signal) (*proc, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.procs[i]
	if p == nil || p.exited() {
		return nil, fmt.Errorf("node%d is not running", i)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return nil, fmt.Errorf("signal node%d: %w", i, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.paused = true
	case syscall.SIGCONT:
		p.paused = false
	}
	return p, nil
}

// Kill sends SIGKILL to node i and waits for it to die.
func (n *Net) Kill(i int) error {
	p, err := n.signal(i, syscall.SIGKILL)
	if err != nil {
		return err
	}
	<-p.done
	return nil
}

// Stop sends SIGTERM to node i and waits up to timeout for a clean exit,
// then kills it. It reports an unclean exit as an error.
func (n *Net) Stop(i int, timeout time.Duration) error {
	n.mu.Lock()
	if p := n.procs[i]; p != nil && p.paused {
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.paused = false
	}
	n.mu.Unlock()
	p, err := n.signal(i, syscall.SIGTERM)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
		var ee *exec.ExitError
		if p.err != nil && !(errors.As(p.err, &ee) && ee.ExitCode() == 0) {
			return fmt.Errorf("node%d exited uncleanly: %w", i, p.err)
		}
		return nil
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("node%d did not stop within %s; killed", i, timeout)
	}
}

// Pause stops node i with SIGSTOP; Resume continues it.
func (n *Net) Pause(i int) error { _, err := n.signal(i, syscall.SIGSTOP); return err }

// Resume continues a paused node.
func (n *Net) Resume(i int) error { _, err := n.signal(i, syscall.SIGCONT); return err }

// StopAll stops every running node (resuming paused ones first).
func (n *Net) StopAll() {
	for i := range n.Info.Nodes {
		if n.Running(i) {
			n.Stop(i, 10*time.Second)
		}
	}
}

// Logs returns node i's log (for test failure messages), at most the last max bytes.
func (n *Net) Logs(i int, max int) string {
	b, err := os.ReadFile(n.LogPath(i))
	if err != nil {
		return err.Error()
	}
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return strings.TrimSpace(string(b))
}

// BuildBinary builds cmd/ledgerd (static, CGO off) into dir and returns
// its path. moduleRoot is the repository root.
func BuildBinary(moduleRoot, dir string) (string, error) {
	out := filepath.Join(dir, "ledgerd")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/ledgerd")
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build ledgerd: %v\n%s", err, b)
	}
	return out, nil
}
