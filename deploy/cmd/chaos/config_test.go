package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" for none
		check   func(settings) bool
	}{
		{"the full campaign by default", nil, "", func(s settings) bool {
			return s.Schedule.Name == "full" && s.Budget == 5*time.Second && len(s.Schedule.Faults) == 13
		}},
		{"the short one for CI", []string{"-schedule", "short"}, "", func(s settings) bool {
			return s.Schedule.Name == "short" && s.Schedule.Users == 8
		}},
		{"some faults only, more users", []string{"-faults", "^postgres", "-users", "30", "-rate", "60"}, "", func(s settings) bool {
			return len(s.Schedule.Faults) == 3 && s.Schedule.Users == 30 && s.Schedule.Rate == 60
		}},
		{"an unknown schedule", []string{"-schedule", "weekend"}, `no schedule "weekend"`, nil},
		{"a pattern that keeps no fault", []string{"-faults", "^meteor"}, "no fault", nil},
		{"a bad pattern", []string{"-faults", "("}, "-faults", nil},
		{"a load test in disguise", []string{"-rate", "5000"}, "at most", nil},
		{"one user cannot pay another", []string{"-users", "1"}, "at least 2 users", nil},
		{"no recovery budget", []string{"-budget", "0s"}, "-budget", nil},
		{"stray arguments", []string{"now"}, "unexpected arguments", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := parseSettings(append([]string{"chaos"}, tt.args...), io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("parseSettings(%q) = %v", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("parseSettings(%q) = %v, want an error mentioning %q", tt.args, err, tt.wantErr)
			case tt.check != nil && !tt.check(s):
				t.Errorf("parseSettings(%q) = %+v", tt.args, s)
			}
		})
	}
}
