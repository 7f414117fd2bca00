package chaos

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFullScheduleIsTheWholeCampaign: every fault the campaign promises is
// in the full schedule.
func TestFullScheduleIsTheWholeCampaign(t *testing.T) {
	t.Parallel()
	s := Full()
	if err := s.Validate(); err != nil {
		t.Fatalf("Full().Validate() = %v", err)
	}
	has := func(want func(Fault) bool) bool { return slices.ContainsFunc(s.Faults, want) }
	for _, p := range processes {
		if !has(func(f Fault) bool { return f.Action == Kill && f.Target == p }) {
			t.Errorf("no kill -9 of %s", p)
		}
	}
	checks := []struct {
		what string
		want func(Fault) bool
	}{
		{"a process outage over 45 s", func(f Fault) bool { return f.Action == Kill && f.Down > 45*time.Second }},
		{"a short kill", func(f Fault) bool { return f.Action == Kill && f.Down > 0 && f.Down < 10*time.Second }},
		{"SIGTERM under load", func(f Fault) bool { return f.Action == Term && f.Down == 0 }},
		{"a fast PostgreSQL restart", func(f Fault) bool { return f.Target == Postgres && f.Action == StopFast && f.Down == 0 }},
		{"an immediate PostgreSQL restart", func(f Fault) bool { return f.Target == Postgres && f.Action == StopImmediate && f.Down == 0 }},
		{"PostgreSQL stopped for 10 s", func(f Fault) bool { return f.Target == Postgres && f.Down >= 10*time.Second }},
		{"the gateway's Redis gone", func(f Fault) bool { return f.Target == Redis && f.Down > 0 }},
	}
	for _, c := range checks {
		if !has(c.want) {
			t.Errorf("the full schedule has no %s", c.what)
		}
	}
	if d := s.Planned(); d > 6*time.Minute {
		t.Errorf("Full().Planned() = %v, want a few minutes", d)
	}
}

// TestShortScheduleFitsCI: the short schedule has each kind of fault and
// leaves room in CI's three minutes for building and starting the stack.
func TestShortScheduleFitsCI(t *testing.T) {
	t.Parallel()
	s := Short()
	if err := s.Validate(); err != nil {
		t.Fatalf("Short().Validate() = %v", err)
	}
	for _, a := range []Action{Kill, Term, StopFast, StopImmediate} {
		if !slices.ContainsFunc(s.Faults, func(f Fault) bool { return f.Action == a }) {
			t.Errorf("the short schedule has no %q", a)
		}
	}
	if d := s.Planned(); d > 60*time.Second {
		t.Errorf("Short().Planned() = %v, want at most a minute of faults", d)
	}
}

func TestScheduleValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault Fault
		ok    bool
	}{
		{"kill a service", Fault{Kill, "accounts", time.Second}, true},
		{"SIGTERM the gateway", Fault{Term, "gateway", 0}, true},
		{"kill Redis", Fault{Kill, Redis, time.Second}, true},
		{"stop PostgreSQL", Fault{StopImmediate, Postgres, 0}, true},
		{"kill PostgreSQL: not a process of the stack", Fault{Kill, Postgres, 0}, false},
		{"stop a service in a pg_ctl mode", Fault{StopFast, "auth", 0}, false},
		{"an unknown process", Fault{Kill, "vault", time.Second}, false},
		{"a negative outage", Fault{Kill, "auth", -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := Schedule{Users: 2, Rate: 1, Faults: []Fault{tt.fault}}
			if err := s.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate(%+v) = %v, want ok %v", tt.fault, err, tt.ok)
			}
		})
	}
}

func TestOnlyAndPrint(t *testing.T) {
	t.Parallel()
	s := Full().Only(regexp.MustCompile(`^postgres`))
	if len(s.Faults) != 3 {
		t.Fatalf("Only(^postgres) kept %d faults, want 3", len(s.Faults))
	}
	if err := Full().Only(regexp.MustCompile(`nothing matches this`)).Validate(); err == nil {
		t.Error("a schedule with no fault validated")
	}
	var b bytes.Buffer
	s.Print(&b)
	for _, want := range []string{"postgres fast restart", "postgres immediate restart", "postgres stopped (stop -m fast) 10s", "~+10s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("Print() lacks %q:\n%s", want, &b)
		}
	}
}
