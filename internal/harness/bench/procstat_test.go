package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseStatCPUCountsFromTheLastParenthesis(t *testing.T) {
	// A command name with spaces and a ')' must not shift the fields:
	// utime is 250 ticks and stime 150 ticks.
	stat := []byte("4242 (led gerd) x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 12 0 100 0 0\n")
	got, err := parseStatCPU(stat, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got != 4*time.Second {
		t.Fatalf("cpu = %v, want 4s", got)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2"), 100); err == nil {
		t.Fatal("a truncated stat line was accepted")
	}
}

func TestParseStatusMem(t *testing.T) {
	status := []byte("Name:\tledgerd\nVmPeak:\t  900000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t12\n")
	rss, hwm := parseStatusMem(status)
	if rss != 100<<20 || hwm != 200<<20 {
		t.Fatalf("rss %d, hwm %d; want 100 MiB and 200 MiB", rss, hwm)
	}
}

func TestReadProcOfThisProcess(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.PeakRSS < s.RSS {
		t.Fatalf("implausible memory reading %+v", s)
	}
	if _, err := ReadProc(-1); err == nil {
		t.Fatal("ReadProc(-1) succeeded")
	}
}

func TestParseMachineCPU(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	m, err := parseMachineCPU("cpu  100 0 50 800 50 0 0 0 30 0", 100)
	if err != nil {
		t.Fatal(err)
	}
	if m.Busy != 1500*time.Millisecond || m.Total != 10*time.Second {
		t.Fatalf("busy %v total %v, want 1.5s of 10s (guest time is inside user)", m.Busy, m.Total)
	}
}

func TestCmdlineServesHome(t *testing.T) {
	abs := "/tmp/net/node1"
	resolve := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join("/tmp", p)
	}
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"ledgerd", "start", "--home", "/tmp/net/node1"}, true},
		{[]string{"ledgerd", "start", "--home=/tmp/net/node1/", "--p2p.laddr", "x"}, true},
		{[]string{"./ledgerd", "start", "--home", "net/node1"}, true}, // relative to the cwd
		{[]string{"ledgerd", "start", "--home", "/tmp/net/node10"}, false},
		{[]string{"ledgerd", "bench", "--home", "/tmp/net/node1"}, false},
		{[]string{"ledgerd"}, false},
	} {
		if got := cmdlineServes(tc.args, abs, resolve); got != tc.want {
			t.Errorf("cmdlineServes(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestFindNodePIDPrefersThePidFile(t *testing.T) {
	home := t.TempDir()
	// The pid file names this test process, which does not serve home:
	// FindNodePID must not trust it, and finds nothing else.
	if err := os.WriteFile(filepath.Join(home, "pid"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pid, err := FindNodePID(home); err == nil {
		t.Fatalf("found pid %d for a home no process serves", pid)
	}
}

func TestLoadAvg(t *testing.T) {
	l, err := LoadAvg()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range l {
		if v < 0 {
			t.Fatalf("negative load average %v", l)
		}
	}
}
