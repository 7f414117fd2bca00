package gctune

import (
	"io/fs"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/bastion-bank/bastion/platform/grpctest"
)

// files is a fake file system: a name absent is a missing file; an entry
// "" is unreadable (permission denied).
type files map[string]string

func (f files) read(name string) ([]byte, error) {
	s, ok := f[name]
	if !ok {
		return nil, fs.ErrNotExist
	}
	if s == "" {
		return nil, fs.ErrPermission
	}
	return []byte(s), nil
}

func TestDecide(t *testing.T) {
	t.Parallel()
	const (
		half = 512 << 20 // 536870912
		v2   = "/sys/fs/cgroup/memory.max"
		v1   = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
		self = "/proc/self/cgroup"
	)
	def := func(cgroup int64) Settings {
		s := Settings{Percent: DefaultPercent, CgroupLimit: cgroup}
		if cgroup > 0 {
			s.MemoryLimit = cgroup / 100 * LimitPercent
		}
		return s
	}
	tests := []struct {
		name  string
		env   map[string]string
		files files
		want  Settings
	}{
		{"GOGC set: the environment wins", map[string]string{"GOGC": "200"}, files{v2: "536870912\n"},
			Settings{FromEnvironment: true, GOGC: "200"}},
		{"GOMEMLIMIT set: the environment wins, GOGC stays the runtime's", map[string]string{"GOMEMLIMIT": "256MiB"}, files{v2: "536870912\n"},
			Settings{FromEnvironment: true, GOMEMLIMIT: "256MiB"}},
		{"GOGC=off set", map[string]string{"GOGC": "off", "GOMEMLIMIT": "1GiB"}, nil,
			Settings{FromEnvironment: true, GOGC: "off", GOMEMLIMIT: "1GiB"}},
		{"empty values count as unset", map[string]string{"GOGC": "", "GOMEMLIMIT": ""}, files{v2: "max\n"}, def(0)},
		{"cgroup v2 without a limit", nil, files{self: "0::/\n", v2: "max\n"}, def(0)},
		{"cgroup v2 limit, 80 % of it", nil, files{self: "0::/\n", v2: "536870912\n"}, def(half)},
		{"cgroup v2 limit, no /proc/self/cgroup", nil, files{v2: "536870912"}, def(half)},
		{"cgroup v2 nested: the process's own limit", nil, files{
			self: "0::/system.slice/bank.service\n", v2: "max\n",
			"/sys/fs/cgroup/system.slice/memory.max":              "max\n",
			"/sys/fs/cgroup/system.slice/bank.service/memory.max": "536870912\n",
		}, def(half)},
		{"cgroup v2 nested: an ancestor's smaller limit", nil, files{
			self:                                 "0::/kubepods/pod1/ctr\n",
			"/sys/fs/cgroup/kubepods/memory.max": "268435456\n",
			"/sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "536870912\n",
		}, def(256 << 20)},
		{"memory.max unreadable", nil, files{self: "0::/\n", v2: ""}, def(0)},
		{"memory.max garbage", nil, files{v2: "lots\n"}, def(0)},
		{"memory.max zero", nil, files{v2: "0\n"}, def(0)},
		{"no cgroup files at all", nil, nil, def(0)},
		{"cgroup v1 limit", nil, files{self: "4:memory:/docker/abc\n", v1: "536870912\n"}, def(half)},
		{"cgroup v1 without a limit", nil, files{v1: "9223372036854771712\n"}, def(0)},
		{"cgroup v1 unreadable", nil, files{v1: ""}, def(0)},
		{"v2 limit wins over v1", nil, files{v2: "536870912\n", v1: "1073741824\n"}, def(half)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Decide(func(k string) string { return tt.env[k] }, tt.files.read)
			if got != tt.want {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestApply sets the runtime's GC percent and memory limit and logs what it
// did, or only logs when the environment chose. Not parallel: it changes
// the process's garbage collector, and restores it.
func TestApply(t *testing.T) {
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(oldPercent); debug.SetMemoryLimit(oldLimit) })
	tests := []struct {
		name        string
		s           Settings
		wantPercent int
		wantLimit   int64
		wantLog     []string
	}{
		{"defaults with a limit", Settings{Percent: 400, CgroupLimit: 1000, MemoryLimit: 800}, 400, 800,
			[]string{`"gc_percent":400`, `"memory_limit_bytes":800`, `"cgroup_memory_limit_bytes":1000`}},
		{"defaults without a limit", Settings{Percent: 400}, 400, -1,
			[]string{`"gc_percent":400`, `"memory_limit_bytes":0`}},
		{"environment", Settings{FromEnvironment: true, GOGC: "150"}, 100, -1,
			[]string{`as the environment sets it`, `"GOGC":"150"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(maxLimit)
			logs := &grpctest.SyncBuffer{}
			apply(tt.s, slog.New(slog.NewJSONHandler(logs, nil)))
			if got := debug.SetGCPercent(100); got != tt.wantPercent {
				t.Errorf("GC percent = %d, want %d", got, tt.wantPercent)
			}
			got := debug.SetMemoryLimit(-1)
			if want := tt.wantLimit; (want == -1 && got != maxLimit) || (want != -1 && got != want) {
				t.Errorf("memory limit = %d, want %d (-1: unchanged)", got, want)
			}
			if n := strings.Count(logs.String(), "\n"); n != 1 {
				t.Errorf("logged %d lines, want 1: %s", n, logs)
			}
			for _, w := range tt.wantLog {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("log %s lacks %s", logs, w)
				}
			}
		})
	}
}

// maxLimit is the runtime's "no memory limit".
const maxLimit = 1<<63 - 1
