package chaos

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// phase builds a finished phase of a fault with the given answers.
func phase(f *Fault, recovery time.Duration, recovered, chainOK bool, statuses ...int) *Phase {
	p := &Phase{Name: "p", Fault: f, Start: time.Now(), statuses: map[int]int{}, Recovery: recovery, Recovered: recovered, ChainOK: chainOK, Chain: "ok"}
	if f == nil {
		p.Name = "baseline"
	} else {
		p.Name = f.Name()
		p.Listening = p.Start.Add(f.Down)
	}
	for _, s := range statuses {
		p.record(s)
	}
	return p
}

func TestFailures(t *testing.T) {
	t.Parallel()
	kill := &Fault{Kill, "transactions", 50 * time.Second}
	const budget = 5 * time.Second
	tests := []struct {
		name  string
		phase *Phase
		want  string // "" for none
	}{
		{"503s while down are the contract", phase(kill, time.Second, true, true, 200, 503, 503, 0), ""},
		{"a 500", phase(kill, time.Second, true, true, 200, 500), ServerError},
		{"a 504 from the baseline", phase(nil, 0, false, false, 504), ServerError},
		{"a slow recovery", phase(kill, 27*time.Second, true, true, 200), SlowRecovery + ": kill -9 transactions, down 50s: recovered 27s"},
		{"no recovery at all", phase(kill, 90*time.Second, false, true, 503), SlowRecovery + ": kill -9 transactions, down 50s: not recovered"},
		{"a broken audit chain", phase(kill, time.Second, true, false, 200), ChainBroken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Failures([]*Phase{tt.phase}, budget)
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("Failures = %v, want none", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0].String(), tt.want)):
				t.Errorf("Failures = %v, want one mentioning %q", got, tt.want)
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	t.Parallel()
	kill := &Fault{Kill, "auth", 3 * time.Second}
	var b bytes.Buffer
	if err := WriteTable(&b, []*Phase{phase(nil, 0, false, false, 200, 200), phase(kill, 7*time.Second, true, true, 200, 503, 0)}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"baseline", "kill -9 auth, down 3s", "200:1 503:1 err:1", "7s SLOW", "3s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("WriteTable lacks %q:\n%s", want, &b)
		}
	}
}

func TestStatuses(t *testing.T) {
	t.Parallel()
	if got, want := Statuses(map[int]int{503: 40, 0: 12, 200: 1200, 409: 3}), "200:1200 409:3 503:40 err:12"; got != want {
		t.Errorf("Statuses = %q, want %q", got, want)
	}
	if got := Statuses(nil); got != "-" {
		t.Errorf("Statuses(nil) = %q, want -", got)
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	findings := []Finding{
		{Duplicated, "api: k1"}, {Lost, "api: k2"}, {Duplicated, "api: k3"}, {Duplicated, "database: k1"},
	}
	got := strings.Join(Summarize(findings, 2), "\n")
	want := "duplicated money: 3\n    api: k1\n    api: k3\n    … and 1 more\nlost money: 1\n    api: k2"
	if got != want {
		t.Errorf("Summarize =\n%s\nwant\n%s", got, want)
	}
}
