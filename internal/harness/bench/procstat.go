package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProcSample is one reading of a process's CPU time and memory from /proc.
type ProcSample struct {
	// CPU is user plus system time since the process started.
	CPU time.Duration
	// RSS is the resident set size now (VmRSS); PeakRSS is its high-water
	// mark since the process started (VmHWM). Both in bytes.
	RSS     int64
	PeakRSS int64
}

// ReadProc reads pid's CPU time from /proc/PID/stat and its memory from
// /proc/PID/status.
func ReadProc(pid int) (ProcSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
	}
	cpu, err := parseStatCPU(stat, clockTicks())
	if err != nil {
		return ProcSample{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	s := ProcSample{CPU: cpu}
	s.RSS, s.PeakRSS = parseStatusMem(status)
	return s, nil
}

// parseStatCPU returns utime+stime from the contents of /proc/PID/stat.
// The command name (field 2) may hold spaces and parentheses, so fields
// are counted from the last ')'.
func parseStatCPU(stat []byte, ticks int64) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat: no ')'")
	}
	f := strings.Fields(string(stat[i+1:]))
	// After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc stat: %d fields after the name", len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("malformed /proc stat: %w", err)
	}
	return time.Duration(ut+st) * time.Second / time.Duration(ticks), nil
}

// parseStatusMem returns VmRSS and VmHWM, in bytes, from the contents of
// /proc/PID/status (0 for a field that is missing).
func parseStatusMem(status []byte) (rss, hwm int64) {
	for _, line := range strings.Split(string(status), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest) // "12345 kB"
		if len(f) == 0 {
			continue
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm
}

var (
	ticksOnce sync.Once
	ticks     int64
)

// clockTicks is the kernel's USER_HZ (the unit of /proc/PID/stat times),
// read from the auxiliary vector's AT_CLKTCK; 100 if that cannot be read.
func clockTicks() int64 {
	ticksOnce.Do(func() {
		ticks = 100
		b, err := os.ReadFile("/proc/self/auxv")
		if err != nil {
			return
		}
		const atClkTck = 17
		for ; len(b) >= 16; b = b[16:] {
			k, v := binary.NativeEndian.Uint64(b), binary.NativeEndian.Uint64(b[8:])
			if k == atClkTck && v > 0 {
				ticks = int64(v)
				return
			}
		}
	})
	return ticks
}

// LoadAvg returns the 1, 5 and 15 minute load averages from /proc/loadavg.
func LoadAvg() ([3]float64, error) {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l, fmt.Errorf("read load average: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return l, fmt.Errorf("malformed /proc/loadavg %q", b)
	}
	for i := range l {
		if l[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return l, fmt.Errorf("malformed /proc/loadavg: %w", err)
		}
	}
	return l, nil
}

// FindNodePID returns the pid of the running `ledgerd start --home HOME`
// process: the one named in HOME/pid (as scripts/localnet.sh writes it)
// if that process is alive and serves HOME, else the first process whose
// command line says so.
func FindNodePID(home string) (int, error) {
	abs, err := filepath.Abs(home)
	if err != nil {
		return 0, fmt.Errorf("find node pid: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(home, "pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && servesHome(pid, abs) {
			return pid, nil
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("find node pid: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if servesHome(pid, abs) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no running `ledgerd start --home %s` process", home)
}

// servesHome reports whether pid's command line is `... start ... --home
// HOME` (or --home=HOME) with HOME resolving to abs.
func servesHome(pid int, abs string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	return cmdlineServes(args, abs, func(rel string) string {
		if filepath.IsAbs(rel) {
			return filepath.Clean(rel)
		}
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if err != nil {
			return ""
		}
		return filepath.Join(cwd, rel)
	})
}

func cmdlineServes(args []string, abs string, resolve func(string) string) bool {
	if len(args) < 2 || args[1] != "start" {
		return false
	}
	for i, a := range args {
		var h string
		switch {
		case (a == "--home" || a == "-home") && i+1 < len(args):
			h = args[i+1]
		case strings.HasPrefix(a, "--home="):
			h = strings.TrimPrefix(a, "--home=")
		case strings.HasPrefix(a, "-home="):
			h = strings.TrimPrefix(a, "-home=")
		default:
			continue
		}
		if resolve(h) == abs {
			return true
		}
	}
	return false
}
