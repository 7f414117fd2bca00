package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ),
// 100 per second on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procTimes is what /proc/<pid>/stat says about one process's CPU time.
type procTimes struct {
	PPID     int
	Own      time.Duration // utime + stime
	Children time.Duration // cutime + cstime: children that have exited and been waited for
}

// parseStat reads the fields of a /proc/<pid>/stat line that procTimes
// holds. The command name, in parentheses, may itself hold spaces and
// parentheses, so the fields are counted from the last ')'.
func parseStat(line []byte) (procTimes, error) {
	end := bytes.LastIndexByte(line, ')')
	if end < 0 {
		return procTimes{}, errors.New("no command name")
	}
	f := strings.Fields(string(line[end+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
	if len(f) < 15 {
		return procTimes{}, fmt.Errorf("%d fields after the command name, want at least 15", len(f))
	}
	n := make([]int64, 5)
	for i, idx := range []int{1, 11, 12, 13, 14} {
		v, err := strconv.ParseInt(f[idx], 10, 64)
		if err != nil {
			return procTimes{}, fmt.Errorf("field %d: %w", idx+3, err)
		}
		n[i] = v
	}
	return procTimes{
		PPID:     int(n[0]),
		Own:      time.Duration(n[1]+n[2]) * clockTick,
		Children: time.Duration(n[3]+n[4]) * clockTick,
	}, nil
}

func readStat(pid int) (procTimes, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procTimes{}, err
	}
	return parseStat(b)
}

// allPIDs lists the processes of the machine.
func allPIDs() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// findByExe returns the pid of the one process whose executable is path.
func findByExe(path string) (int, error) {
	var found []int
	for _, pid := range allPIDs() {
		if exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe")); err == nil && exe == path {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("%d processes run %s, want 1", len(found), path)
	}
	return found[0], nil
}

// treeCPU is the CPU time of pid and every descendant, those that ended
// included (as far as their parents have waited for them, which
// PostgreSQL's postmaster does for each backend as it exits).
func treeCPU(pid int) (time.Duration, error) {
	root, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	children := map[int][]int{}
	stats := map[int]procTimes{}
	for _, p := range allPIDs() {
		if st, err := readStat(p); err == nil {
			children[st.PPID] = append(children[st.PPID], p)
			stats[p] = st
		}
	}
	total := root.Own + root.Children
	queue := append([]int(nil), children[pid]...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		total += stats[p].Own
		queue = append(queue, children[p]...)
	}
	return total, nil
}

// postmasterPID reads the first line of a cluster's postmaster.pid.
func postmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}

// loadAverage is the first three fields of /proc/loadavg, as printed.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
