// Package labs is the catalogue of Bastion's workshop labs. Each lab starts
// from the secure bank, removes exactly one control with a patch applied in
// a worktree of its own (labs/NN-slug/break.patch), and ships an exploit
// that prints EXPLOITED against that build and BLOCKED against main. The
// runner (labs/cmd/lab) starts, exploits, checks and stops labs; see
// labs/README.md and docs/workshop.md.
package labs

import (
	"fmt"
	"strings"
)

// Lab is one exercise.
type Lab struct {
	ID    string // two digits, "01"
	Slug  string // the directory name after the number
	Title string
	OWASP string // the OWASP API Security Top 10 (2023) items it teaches
	// Tests are the packages (relative to the repository root, go test
	// patterns) holding the control's own tests: lab-check runs them in the
	// attendee's worktree and they must pass.
	Tests []string
	// TestRun, if set, narrows Tests to these test functions (a go test -run
	// pattern), for packages whose other tests are slow and unrelated.
	TestRun string
}

// Dir is the lab's directory under labs/.
func (l Lab) Dir() string { return l.ID + "-" + l.Slug }

// All lists every lab in order.
var All = []Lab{
	{ID: "01", Slug: "jwt-alg-none", Title: "A token verifier that accepts alg none", OWASP: "API2",
		Tests: []string{"./platform/token/"}},
	{ID: "02", Slug: "bola-account", Title: "BOLA: an account id is treated as proof of ownership", OWASP: "API1",
		Tests: []string{"./services/accounts/internal/domain/", "./services/accounts/internal/rpc/"}},
	{ID: "03", Slug: "bfla-lost-rule", Title: "An RPC lost its access rule and the chain fails open", OWASP: "API5, API9",
		Tests: []string{"./platform/rbac/", "./services/accounts/internal/rpc/"}},
	{ID: "04", Slug: "mass-assignment-role", Title: "Mass assignment: roles in the registration body", OWASP: "API3",
		Tests: []string{"./platform/rbac/", "./services/auth/internal/domain/", "./services/auth/internal/rpc/"}},
	{ID: "05", Slug: "credential-stuffing", Title: "No login throttle: guessing a password", OWASP: "API4, API2",
		Tests: []string{"./services/auth/internal/domain/"}, TestRun: "Throttle|Login"},
	{ID: "06", Slug: "negative-amount", Title: "Missing validation: a negative amount pulls money", OWASP: "API6, API3",
		Tests: []string{"./platform/rbac/", "./services/transactions/internal/domain/"}},
	{ID: "07", Slug: "idempotency-double-spend", Title: "Idempotency removed: a retry pays twice", OWASP: "API6",
		Tests: []string{"./services/transactions/internal/rpc/"}, TestRun: "Idempotency|Replay"},
	{ID: "08", Slug: "four-eyes-bypass", Title: "Four-eyes bypass: a manager approves their own deposit", OWASP: "API6, API5",
		Tests: []string{"./platform/duties/", "./services/transactions/internal/domain/"}},
	{ID: "09", Slug: "refresh-reuse", Title: "Refresh-token reuse goes undetected", OWASP: "API2",
		Tests: []string{"./services/auth/internal/domain/"}, TestRun: "Refresh|Reuse"},
	{ID: "10", Slug: "mtls-identity", Title: "mTLS without identity: a rogue service reads the ledger", OWASP: "API8, API10",
		Tests: []string{"./platform/rbac/", "./platform/mtls/"}},
	{ID: "11", Slug: "stuffing-alert", Title: "Monitoring: write the alert that sees credential stuffing", OWASP: "API2, API4 (detection)",
		Tests: []string{}},
	{ID: "12", Slug: "jwt-jku-ssrf", Title: "A verifier that fetches the key a token names (jku)", OWASP: "API7, API2",
		Tests: []string{"./platform/token/"}},
	{ID: "13", Slug: "race-overdraft", Title: "A race: the ledger lost its row lock and an account goes below zero", OWASP: "API6",
		Tests: []string{"./services/transactions/internal/postgres/"}, TestRun: "Concurrent|Batch|Books|RuntimeRole|Freeze"},
}

// Find returns the lab whose number (with or without the leading zero) or
// directory name is id.
func Find(id string) (Lab, error) {
	for _, l := range All {
		if id == l.ID || id == strings.TrimPrefix(l.ID, "0") || id == l.Dir() {
			return l, nil
		}
	}
	return Lab{}, fmt.Errorf("no lab %q: labs are 01 to %s (see labs/README.md)", id, All[len(All)-1].ID)
}
