// Package labkit is what every lab's exploit and the lab runner share: the
// state file a running lab stack leaves behind, a small HTTPS client of the
// public API, and the verdict an exploit prints.
package labkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// State describes a running lab stack. The runner writes it (0600) when the
// stack is ready; exploits read it. Every address is on loopback.
type State struct {
	Lab          string            `json:"lab"`
	Root         string            `json:"root"` // the source tree the stack was built from
	PID          int               `json:"pid"`  // the runner process that owns the stack
	Gateway      string            `json:"gateway"`
	Auth         string            `json:"auth"`
	Accounts     string            `json:"accounts"`
	Transactions string            `json:"transactions"`
	Metrics      map[string]string `json:"metrics"` // process → host:port of /metrics
	CAFile       string            `json:"caFile"`
	PKIDir       string            `json:"pkiDir"`
	LogDir       string            `json:"logDir"`
	AdminEmail   string            `json:"adminEmail"`
	AdminPass    string            `json:"adminPassword"`
	DatabaseURL  string            `json:"databaseUrl"` // superuser URL of the lab's database (loopback, trust)
}

// WriteState writes s to path, readable only by its owner.
func WriteState(path string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadState reads the state file at path.
func ReadState(path string) (State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return State{}, fmt.Errorf("%s does not exist: is the lab started? (make lab-start LAB=NN)", path)
	}
	if err != nil {
		return State{}, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("read %s: %w", path, err)
	}
	if s.Gateway == "" || s.CAFile == "" {
		return State{}, fmt.Errorf("%s is incomplete", path)
	}
	return s, nil
}
