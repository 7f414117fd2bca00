// Package config reads a process's environment once, in its run function,
// into typed values.
//
// A binary creates one Env from the getenv it was given, reads every variable
// it needs, then checks Err once: the error names every missing or malformed
// variable together, so an operator fixes them in one go rather than one per
// restart. Nothing below run reads the environment.
//
//	env := config.New(getenv)
//	addr := env.Addr("BANK_AUTH_ADDR", "127.0.0.1:9101")
//	maxFailures := env.PositiveInt("BANK_LOGIN_MAX_FAILURES", 5)
//	adminPassword := env.Secret("BANK_ADMIN_PASSWORD")
//	if err := env.Err(); err != nil {
//		return err
//	}
//	logger.LogAttrs(ctx, slog.LevelInfo, "configuration", env.Summary()...)
//
// Values are never echoed in errors, and secrets never appear in Summary, so
// both can be logged as they are.
package config

import (
	"log/slog"
	"strings"

	"github.com/bastion-bank/bastion/platform/errs"
)

// Shown in Summary in place of a secret's value.
const (
	SecretSet   = "[set]"
	SecretUnset = "[unset]"
)

// Env reads variables through a getenv function and records what it read and
// what was wrong. An empty value counts as unset, because getenv cannot tell
// the two apart. Env is meant for one goroutine, at start-up.
type Env struct {
	getenv   func(string) string
	vars     []variable     // in the order first read
	index    map[string]int // key → position in vars
	problems []errs.Violation
}

// variable is one key as Summary shows it.
type variable struct {
	key    string
	shown  string // effective value, already made safe to log
	secret bool
	set    bool
}

// New returns an Env reading through getenv, normally os.Getenv passed down
// from main. A nil getenv reads every variable as unset.
func New(getenv func(string) string) *Env {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	return &Env{getenv: getenv, index: make(map[string]int)}
}

// lookup returns key's value with surrounding blanks removed, and whether it
// is set. Secrets go through lookupRaw instead.
func (e *Env) lookup(key string) (string, bool) {
	v := strings.TrimSpace(e.getenv(key))
	return v, v != ""
}

// record notes that key was read and what its effective value is.
func (e *Env) record(key, shown string, secret, set bool) {
	if i, ok := e.index[key]; ok {
		v := &e.vars[i]
		v.secret = v.secret || secret // once secret, always hidden
		v.shown, v.set = shown, set
		return
	}
	e.index[key] = len(e.vars)
	e.vars = append(e.vars, variable{key: key, shown: shown, secret: secret, set: set})
}

// Invalid records a problem with key found by the caller, for rules this
// package cannot know (one variable requiring another, a file that must
// exist). problem must not contain the value.
func (e *Env) Invalid(key, problem string) {
	for _, p := range e.problems {
		if p.Field == key {
			return // the first problem with a key is the one to fix
		}
	}
	e.problems = append(e.problems, errs.Violation{Field: key, Message: problem})
}

// Err reports every problem found so far as one Invalid error whose message
// names each variable and what is wrong with it, and whose Violations list
// them one by one. It never contains a value. It returns nil if all is well.
func (e *Env) Err() error {
	if len(e.problems) == 0 {
		return nil
	}
	parts := make([]string, len(e.problems))
	for i, p := range e.problems {
		parts[i] = p.Field + " " + p.Message
	}
	return &errs.Error{
		Kind:       errs.Invalid,
		Msg:        "invalid configuration: " + strings.Join(parts, "; "),
		Reason:     "invalid_configuration",
		Violations: append([]errs.Violation(nil), e.problems...),
	}
}

// Shown is a value as Summary shows it: already judged by the one list that
// knows which variables are secrets (those read with Secret).
// platform/telemetry's log redactor therefore does not mask it by its key's
// name (BANK_TOKEN_ISSUER and the token lifetimes are not
// secrets, and must be compared across processes), though it still masks
// anything in the text that looks like a credential.
type Shown string

// VettedText returns the value to log; see Shown.
func (s Shown) VettedText() string { return string(s) }

// Summary lists every variable read, in the order first read, with its
// effective value (the default when unset or invalid), so a binary can log
// its configuration at start-up. Secrets show as [SecretSet] or
// [SecretUnset]; URLs lose their passwords; everything else is in clear.
func (e *Env) Summary() []slog.Attr {
	out := make([]slog.Attr, len(e.vars))
	for i, v := range e.vars {
		shown := v.shown
		if v.secret {
			shown = SecretUnset
			if v.set {
				shown = SecretSet
			}
		}
		out[i] = slog.Any(v.key, Shown(shown))
	}
	return out
}

// Keys returns the names of every variable read, in the order first read;
// docs/configuration.md can be checked against it.
func (e *Env) Keys() []string {
	out := make([]string, len(e.vars))
	for i, v := range e.vars {
		out[i] = v.key
	}
	return out
}
