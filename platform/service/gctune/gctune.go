// Package gctune gives every Bastion process the garbage collector settings
// measured for it, unless its environment chose its own.
//
// Garbage collection is a fifth to a quarter of each process's CPU at the
// default GOGC=100 (docs/performance.md). A process whose environment sets
// neither GOGC nor GOMEMLIMIT runs instead with a GC percent of
// [DefaultPercent], which trades heap size for CPU, and, when it runs in a
// cgroup with a memory limit (a container), a soft memory limit of
// [LimitPercent] % of that limit, so that the larger heap collects harder as
// it nears the limit instead of outgrowing it. Either variable in the
// environment means the operator chose: the runtime has read it itself, and
// nothing here changes it.
//
// platform/service calls [Apply] when a service starts, and the gateway
// calls it from its own start-up; it lives in a package of its own so that
// the gateway does not link the services' database code.
package gctune

import (
	"log/slog"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultPercent is the GC percent applied when the environment sets
// neither GOGC nor GOMEMLIMIT: 400 measured 16–18 % less CPU per request
// than 100 in gateway + transactions and gateway + accounts.
const DefaultPercent = 400

// LimitPercent is the share of the cgroup's memory limit given to the Go
// runtime as its soft memory limit; the rest is for what the runtime does
// not count (stacks of threads in C, the page cache of the process's files)
// and for the time the collector takes to react.
const LimitPercent = 80

// The files a limit is read from. cgroup v2 first: the process's own
// cgroup (from /proc/self/cgroup) and every ancestor up to the mount point,
// the smallest limit winning; then cgroup v1's memory controller.
const (
	procCgroup  = "/proc/self/cgroup"
	cgroupRoot  = "/sys/fs/cgroup"
	v2LimitFile = "memory.max"
	v1LimitFile = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
)

// v1Unlimited: cgroup v1 reports "no limit" as a number near 2^63 rounded
// down to a page; anything this large is no limit.
const v1Unlimited = 1 << 62

// Settings is what Decide chose.
type Settings struct {
	// FromEnvironment is true when GOGC or GOMEMLIMIT is set: the
	// runtime's own reading of them stands and nothing is applied.
	FromEnvironment  bool
	GOGC, GOMEMLIMIT string // their values, when FromEnvironment

	Percent     int   // the GC percent to apply; 0 when FromEnvironment
	CgroupLimit int64 // the memory limit of the process's cgroup, bytes; 0 for none found
	MemoryLimit int64 // the soft memory limit to apply, bytes; 0 for none
}

// Decide chooses the settings from the environment (getenv) and the cgroup
// files (readFile). An unreadable or unparsable cgroup file counts as no
// limit: the GC percent is applied all the same.
func Decide(getenv func(string) string, readFile func(string) ([]byte, error)) Settings {
	if gogc, limit := getenv("GOGC"), getenv("GOMEMLIMIT"); gogc != "" || limit != "" {
		return Settings{FromEnvironment: true, GOGC: gogc, GOMEMLIMIT: limit}
	}
	s := Settings{Percent: DefaultPercent, CgroupLimit: cgroupLimit(readFile)}
	if s.CgroupLimit > 0 {
		s.MemoryLimit = s.CgroupLimit / 100 * LimitPercent
	}
	return s
}

// cgroupLimit returns the memory limit of the process's cgroup, 0 for none.
func cgroupLimit(readFile func(string) ([]byte, error)) int64 {
	if l := v2Limit(readFile); l > 0 {
		return l
	}
	if l, ok := readLimit(readFile, v1LimitFile); ok && l < v1Unlimited {
		return l
	}
	return 0
}

// v2Limit returns the smallest memory.max of the process's cgroup and its
// ancestors below the mount point, 0 for none. Inside a container with its
// own cgroup namespace the process's cgroup is "/", the mount point itself.
func v2Limit(readFile func(string) ([]byte, error)) int64 {
	dir := "/"
	if b, err := readFile(procCgroup); err == nil {
		for line := range strings.Lines(string(b)) {
			if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok && strings.HasPrefix(p, "/") {
				dir = path.Clean(p)
			}
		}
	}
	var least int64
	for {
		if l, ok := readLimit(readFile, path.Join(cgroupRoot, dir, v2LimitFile)); ok && (least == 0 || l < least) {
			least = l
		}
		if dir == "/" {
			return least
		}
		dir = path.Dir(dir)
	}
}

// readLimit reads a positive byte count from name; "max", a missing file
// or anything else is no limit.
func readLimit(readFile func(string) ([]byte, error), name string) (int64, bool) {
	b, err := readFile(name)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// Apply decides from the process's environment and cgroup, applies the
// settings and logs them once. Call it once, at start-up.
func Apply(logger *slog.Logger) Settings {
	s := Decide(os.Getenv, os.ReadFile)
	apply(s, logger)
	return s
}

// apply sets s in the runtime, unless the environment chose, and logs it.
func apply(s Settings, logger *slog.Logger) {
	if s.FromEnvironment {
		logger.Info("garbage collector: as the environment sets it", "GOGC", s.GOGC, "GOMEMLIMIT", s.GOMEMLIMIT)
		return
	}
	debug.SetGCPercent(s.Percent)
	if s.MemoryLimit > 0 {
		debug.SetMemoryLimit(s.MemoryLimit)
	}
	logger.Info("garbage collector: defaults applied (GOGC and GOMEMLIMIT unset)", "gc_percent", s.Percent,
		"memory_limit_bytes", s.MemoryLimit, "cgroup_memory_limit_bytes", s.CgroupLimit)
}
