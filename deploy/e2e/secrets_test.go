package e2e

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// secretsSent is every credential the tests sent or were given: passwords,
// access and refresh tokens, Idempotency-Keys. Once every test has run,
// telemetryHoldsNoSecret searches the run's spans and logs for each.
var secretsSent = struct {
	sync.Mutex
	set map[string]bool
}{set: map[string]bool{}}

// minSecretLen keeps short test values ("x", "r") out of the search, where
// they would match innocent text.
const minSecretLen = 8

// noteSecret records v as a secret of the run.
func noteSecret(v string) {
	if len(v) < minSecretLen {
		return
	}
	secretsSent.Lock()
	defer secretsSent.Unlock()
	secretsSent.set[v] = true
}

// secretFields are the JSON fields of a request or response that hold a
// credential.
var secretFields = []string{"password", "accessToken", "refreshToken"}

// noteSecrets records the credentials in a request (its body, its bearer
// token, its Idempotency-Key) or in a decoded response body.
func noteSecrets(body any, headers ...string) {
	if m, ok := body.(map[string]any); ok {
		for _, f := range secretFields {
			if s, ok := m[f].(string); ok {
				noteSecret(s)
			}
		}
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Idempotency-Key") || strings.EqualFold(headers[i], "Authorization") {
			noteSecret(strings.TrimPrefix(headers[i+1], "Bearer "))
		}
	}
}

// secretShapes find credentials nobody noted: a JWT, or any part of one
// long enough to hold its header; a bearer value; a private key.
var secretShapes = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{16,}|(?i:bearer [A-Za-z0-9._~+/=-]{8,})|PRIVATE KEY`)

// telemetryHoldsNoSecret runs after every test, while the stack still
// runs: no exported span (its name, attributes, events, links, status) and
// no log line of any process may hold a credential of the run: the ones
// the tests noted, the dev stack's keys and database passwords, or any text
// shaped like one.
func telemetryHoldsNoSecret(s *stack) error {
	time.Sleep(time.Second) // the last spans' export, the last log lines
	secrets, err := devSecrets(s.dir)
	if err != nil {
		return err
	}
	secretsSent.Lock()
	for v := range secretsSent.set {
		secrets = append(secrets, v)
	}
	secretsSent.Unlock()

	var found []error
	check := func(where, text string) {
		if m := secretShapes.FindString(text); m != "" {
			found = append(found, fmt.Errorf("%s holds %.24q…", where, m))
		}
		for _, v := range secrets {
			if strings.Contains(text, v) {
				found = append(found, fmt.Errorf("%s holds a secret of the run (%.6s…)", where, v))
			}
		}
	}
	spans := s.spans.all()
	for _, sp := range spans {
		check(fmt.Sprintf("span %q of %s", sp.Name, sp.Service), sp.Raw)
	}
	logs, _ := filepath.Glob(filepath.Join(s.logDir, "*.log"))
	lines := 0
	for _, path := range logs {
		n, err := eachLine(path, func(i int, line string) {
			check(fmt.Sprintf("%s line %d", filepath.Base(path), i), line)
		})
		if err != nil {
			return err
		}
		lines += n
	}
	if len(found) > 10 {
		found = append(found[:10], fmt.Errorf("and %d more", len(found)-10))
	}
	if err := errors.Join(found...); err != nil {
		return fmt.Errorf("telemetry holds secrets: %w", err)
	}
	fmt.Printf("e2e: no secret in %d spans and %d log lines (%d secrets searched for)\n", len(spans), lines, len(secrets))
	return nil
}

// devSecrets returns the dev stack's secret material: each database
// password and the page-token key, and each line of every private key.
func devSecrets(dir string) ([]string, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "secrets", "*"))
	keys, _ := filepath.Glob(filepath.Join(dir, "pki", "*-key.pem"))
	signing, _ := filepath.Glob(filepath.Join(dir, "keys", "*"))
	var out []string
	for _, f := range append(append(files, keys...), signing...) {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, field := range strings.Fields(string(raw)) {
			if len(field) >= 16 && !strings.HasPrefix(field, "-----") {
				out = append(out, field)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no secret material under %s", dir)
	}
	return out, nil
}

// eachLine calls f with each line of the file at path and returns how many
// there were.
func eachLine(path string, f func(int, string)) (int, error) {
	file, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	n := 0
	for sc.Scan() {
		n++
		f(n, sc.Text())
	}
	return n, sc.Err()
}

// TestTokenInAPathIsNotLogged: a scanner's probe carrying a token in its
// path is logged as unrouted, with the token removed before the path is
// clipped, so not even the token's header or payload (the user id) is
// left. The search after every test covers the spans of the probe too.
func TestTokenInAPathIsNotLogged(t *testing.T) {
	t.Parallel()
	u := register(t, "token-in-path")
	id := "probe-" + strings.ToLower(rand.Text()[:12])
	newCaller(t).do("GET", "/nonexistent/"+u.token, nil, "X-Request-Id", id).must(t, 404, "a token in an unrouted path")
	if got := accessLine(t, id)["path"]; got != "/nonexistent/[REDACTED]" {
		t.Errorf("access log path = %.80q, want /nonexistent/[REDACTED]", got)
	}
}
