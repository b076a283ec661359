//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// A netLab is a private network for the nodes of one run: a network
// namespace per node slot, each joined by a veth pair to a hub namespace
// that routes between them. Nothing is added to the namespace this process
// runs in. Node slot i has the address 10.99.i.2 on its eth0; the hub holds
// 10.99.i.1 on the other end and forwards between the /24s. A partition is
// a set of blackhole routing rules in the hub, so both sides stay reachable
// from here (through their own namespaces) while they cannot reach each
// other.
type netLab struct {
	prefix string // namespace names: PREFIX-hub, PREFIX-n0, PREFIX-n1, ...
	slots  int

	mu    sync.Mutex
	rules [][2]int // blackholed (from, to) slot pairs
}

// NetnsAvailable says why processes cannot be run in network namespaces
// here (and so cannot be partitioned), or nil.
func NetnsAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("network namespaces need iproute2: %w", err)
	}
	return nil
}

// newNetLab creates the hub and slots node namespaces.
func newNetLab(slots int) (*netLab, error) {
	if err := NetnsAvailable(); err != nil {
		return nil, err
	}
	if slots > 250 {
		return nil, fmt.Errorf("netlab: %d slots, at most 250", slots)
	}
	removeStaleLabs()
	l := &netLab{prefix: fmt.Sprintf("%s%d-%d", labPrefix, os.Getpid(), labSeq.Add(1)), slots: slots}
	hub := l.hub()
	cmds := [][]string{{"netns", "add", hub}, {"-n", hub, "link", "set", "lo", "up"}}
	for i := 0; i < slots; i++ {
		ns, hubIf := l.ns(i), "n"+strconv.Itoa(i)
		cmds = append(cmds,
			[]string{"netns", "add", ns},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", hub, "link", "add", hubIf, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"-n", hub, "addr", "add", fmt.Sprintf("10.99.%d.1/24", i), "dev", hubIf},
			[]string{"-n", hub, "link", "set", hubIf, "up"},
			[]string{"-n", ns, "addr", "add", l.IP(i) + "/24", "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
			[]string{"-n", ns, "route", "add", "default", "via", fmt.Sprintf("10.99.%d.1", i)},
		)
	}
	for _, c := range cmds {
		if err := ipCmd(c...); err != nil {
			l.Close()
			return nil, fmt.Errorf("netlab: %w", err)
		}
	}
	// Forwarding is a per-namespace setting: this turns it on in the hub only.
	if err := exec.Command("ip", "netns", "exec", hub, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward").Run(); err != nil {
		l.Close()
		return nil, fmt.Errorf("netlab: enable forwarding in the hub: %w", err)
	}
	return l, nil
}

func (l *netLab) hub() string { return l.prefix + "-hub" }

// ns is the name of slot i's namespace.
func (l *netLab) ns(i int) string { return fmt.Sprintf("%s-n%d", l.prefix, i) }

// NSPath is the file naming slot i's namespace, for setns.
func (l *netLab) NSPath(i int) string { return "/run/netns/" + l.ns(i) }

// IP is slot i's address, reachable from every other slot.
func (l *netLab) IP(i int) string { return fmt.Sprintf("10.99.%d.2", i) }

// Partition cuts every route between a slot of side and a slot of other,
// both ways, adding to any cut already made.
func (l *netLab) Partition(side, other []int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range side {
		for _, b := range other {
			for _, p := range [][2]int{{a, b}, {b, a}} {
				if err := ipCmd(l.ruleArgs("add", p)...); err != nil {
					return fmt.Errorf("partition: %w", err)
				}
				l.rules = append(l.rules, p)
			}
		}
	}
	return nil
}

// Heal removes every cut.
func (l *netLab) Heal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, p := range l.rules {
		if err := ipCmd(l.ruleArgs("del", p)...); err != nil {
			errs = append(errs, err)
		}
	}
	l.rules = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	return nil
}

func (l *netLab) ruleArgs(op string, p [2]int) []string {
	return []string{"-n", l.hub(), "rule", op, "from", fmt.Sprintf("10.99.%d.0/24", p[0]),
		"to", fmt.Sprintf("10.99.%d.0/24", p[1]), "blackhole"}
}

// Close deletes the namespaces (their veths go with them). Processes
// still running in a namespace keep it alive until they exit.
func (l *netLab) Close() {
	for i := 0; i < l.slots; i++ {
		exec.Command("ip", "netns", "del", l.ns(i)).Run()
	}
	exec.Command("ip", "netns", "del", l.hub()).Run()
}

// removeStaleLabs deletes the namespaces of labs whose process is gone (a
// run killed before it could clean up).
func removeStaleLabs() {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range ents {
		name, ok := strings.CutPrefix(e.Name(), labPrefix)
		if !ok {
			continue
		}
		pid, _, ok := strings.Cut(name, "-")
		if !ok {
			continue
		}
		if _, err := strconv.Atoi(pid); err != nil {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue // its owner is alive
		}
		exec.Command("ip", "netns", "del", e.Name()).Run()
	}
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// dialInNetns dials addr from inside the network namespace named by the
// file nsPath returns (a /run/netns entry or /proc/PID/ns/net): the socket
// is created by a thread that joined that namespace, and belongs to it for
// its whole life, while this process stays where it is.
func dialInNetns(nsPath func() (string, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		path, err := nsPath()
		if err != nil {
			return nil, err
		}
		target, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("open namespace: %w", err)
		}
		defer target.Close()
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			// A thread that cannot be moved back stays locked, so the
			// runtime ends it with this goroutine instead of reusing it.
			runtime.LockOSThread()
			orig, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, fmt.Errorf("open own namespace: %w", err)}
				return
			}
			defer orig.Close()
			if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, fmt.Errorf("enter namespace %s: %w", path, err)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}
