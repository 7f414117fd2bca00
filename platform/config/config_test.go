package config

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
)

// fakeEnv is a getenv over a map.
func fakeEnv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// summaryMap renders Summary as key → shown value.
func summaryMap(e *Env) map[string]string {
	out := make(map[string]string)
	for _, a := range e.Summary() {
		out[a.Key] = a.Value.String()
	}
	return out
}

func TestGetters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		value    string // "" means unset
		read     func(e *Env) any
		want     any
		wantShow string
	}{
		{"String unset", "", func(e *Env) any { return e.String("K", "def") }, "def", "def"},
		{"String set", "v a l", func(e *Env) any { return e.String("K", "def") }, "v a l", "v a l"},
		{"Required set", "x", func(e *Env) any { return e.Required("K") }, "x", "x"},
		{"Int unset", "", func(e *Env) any { return e.Int("K", 7) }, 7, "7"},
		{"Int negative", "-3", func(e *Env) any { return e.Int("K", 7) }, -3, "-3"},
		{"Int trimmed", " 42 ", func(e *Env) any { return e.Int("K", 7) }, 42, "42"},
		{"PositiveInt", "20", func(e *Env) any { return e.PositiveInt("K", 5) }, 20, "20"},
		{"PositiveInt unset", "", func(e *Env) any { return e.PositiveInt("K", 5) }, 5, "5"},
		{"Int64 big", "500000000000", func(e *Env) any { return e.Int64("K", 1) }, int64(500000000000), "500000000000"},
		{"Int64 unset", "", func(e *Env) any { return e.Int64("K", 1) }, int64(1), "1"},
		{"PositiveInt64", "1000000", func(e *Env) any { return e.PositiveInt64("K", 1) }, int64(1000000), "1000000"},
		{"Duration", "1m30s", func(e *Env) any { return e.Duration("K", time.Second) }, 90 * time.Second, "1m30s"},
		{"Duration zero", "0s", func(e *Env) any { return e.Duration("K", time.Second) }, time.Duration(0), "0s"},
		{"Duration unset", "", func(e *Env) any { return e.Duration("K", time.Second) }, time.Second, "1s"},
		{"PositiveDuration", "250ms", func(e *Env) any { return e.PositiveDuration("K", time.Second) }, 250 * time.Millisecond, "250ms"},
		{"Bool true", "TRUE", func(e *Env) any { return e.Bool("K", false) }, true, "true"},
		{"Bool 0", "0", func(e *Env) any { return e.Bool("K", true) }, false, "false"},
		{"Bool unset", "", func(e *Env) any { return e.Bool("K", true) }, true, "true"},
		{"Addr", "127.0.0.1:9101", func(e *Env) any { return e.Addr("K", "x:1") }, "127.0.0.1:9101", "127.0.0.1:9101"},
		{"Addr ipv6", "[::1]:0", func(e *Env) any { return e.Addr("K", "x:1") }, "[::1]:0", "[::1]:0"},
		{"Addr empty host", ":8443", func(e *Env) any { return e.Addr("K", "x:1") }, ":8443", ":8443"},
		{"Addr unset", "", func(e *Env) any { return e.Addr("K", "127.0.0.1:9464") }, "127.0.0.1:9464", "127.0.0.1:9464"},
		{"URL", "postgres://bank@db:5432/bank?sslmode=disable", func(e *Env) any { return e.URL("K", "") },
			"postgres://bank@db:5432/bank?sslmode=disable", "postgres://bank@db:5432/bank?sslmode=disable"},
		{"URL unset", "", func(e *Env) any { return e.URL("K", "") }, "", ""},
		{"List", " a, b ,,c ", func(e *Env) any { return e.List("K", nil) }, []string{"a", "b", "c"}, "a,b,c"},
		{"List unset", "", func(e *Env) any { return e.List("K", []string{"d"}) }, []string{"d"}, "d"},
		{"OneOf", "json", func(e *Env) any { return e.OneOf("K", "text", "json", "text") }, "json", "json"},
		{"LogLevel", "debug", func(e *Env) any { return e.LogLevel("K", slog.LevelInfo) }, slog.LevelDebug, "DEBUG"},
		{"LogLevel offset", "WARN+1", func(e *Env) any { return e.LogLevel("K", slog.LevelInfo) }, slog.LevelWarn + 1, "WARN+1"},
		{"LogLevel unset", "", func(e *Env) any { return e.LogLevel("K", slog.LevelInfo) }, slog.LevelInfo, "INFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := New(fakeEnv(map[string]string{"K": tt.value}))
			got := tt.read(e)
			if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tt.want) {
				t.Errorf("read K=%q = %#v, want %#v", tt.value, got, tt.want)
			}
			if err := e.Err(); err != nil {
				t.Errorf("Err() after K=%q = %v, want nil", tt.value, err)
			}
			if show := summaryMap(e)["K"]; show != tt.wantShow {
				t.Errorf("Summary()[K] after K=%q = %q, want %q", tt.value, show, tt.wantShow)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		value   string
		read    func(e *Env) any
		def     any
		problem string
	}{
		{"Required unset", "", func(e *Env) any { return e.Required("K") }, "", "is required"},
		{"Int word", "twenty", func(e *Env) any { return e.Int("K", 7) }, 7, "must be an integer"},
		{"Int float", "1.5", func(e *Env) any { return e.Int("K", 7) }, 7, "must be an integer"},
		{"Int overflow", "99999999999999999999", func(e *Env) any { return e.Int("K", 7) }, 7, "must be an integer"},
		{"PositiveInt zero", "0", func(e *Env) any { return e.PositiveInt("K", 5) }, 5, "must be a positive integer"},
		{"PositiveInt negative", "-1", func(e *Env) any { return e.PositiveInt("K", 5) }, 5, "must be a positive integer"},
		{"PositiveInt hex", "0x10", func(e *Env) any { return e.PositiveInt("K", 5) }, 5, "must be a positive integer"},
		{"Int64 word", "lots", func(e *Env) any { return e.Int64("K", 1) }, int64(1), "must be a 64-bit integer"},
		{"PositiveInt64 zero", "0", func(e *Env) any { return e.PositiveInt64("K", 1) }, int64(1), "must be a positive 64-bit integer"},
		{"PositiveInt64 overflow", "9223372036854775808", func(e *Env) any { return e.PositiveInt64("K", 1) }, int64(1), "must be a positive 64-bit integer"},
		{"Duration no unit", "45", func(e *Env) any { return e.Duration("K", time.Second) }, time.Second, "must be a duration such as 30s"},
		{"PositiveDuration negative", "-5s", func(e *Env) any { return e.PositiveDuration("K", time.Second) }, time.Second, "must be a positive duration such as 30s"},
		{"PositiveDuration zero", "0ms", func(e *Env) any { return e.PositiveDuration("K", time.Second) }, time.Second, "must be a positive duration such as 30s"},
		{"Bool yes", "yes", func(e *Env) any { return e.Bool("K", false) }, false, "must be true or false"},
		{"Addr no port", "127.0.0.1", func(e *Env) any { return e.Addr("K", "x:1") }, "x:1", "must be host:port"},
		{"Addr url", "http://h:1", func(e *Env) any { return e.Addr("K", "x:1") }, "x:1", "must be host:port"},
		{"Addr port word", "h:http", func(e *Env) any { return e.Addr("K", "x:1") }, "x:1", "must be host:port with a port from 0 to 65535"},
		{"Addr port too big", "h:65536", func(e *Env) any { return e.Addr("K", "x:1") }, "x:1", "must be host:port with a port from 0 to 65535"},
		{"Addr host with slash", "a/b:80", func(e *Env) any { return e.Addr("K", "x:1") }, "x:1", "must be host:port"},
		{"URL relative", "db/bank", func(e *Env) any { return e.URL("K", "") }, "", "must be an absolute URL such as scheme://host/path"},
		{"URL bad escape", "postgres://h/%zz", func(e *Env) any { return e.URL("K", "") }, "", "must be an absolute URL such as scheme://host/path"},
		{"List only commas", " , ,", func(e *Env) any { return e.List("K", []string{"d"}) }, []string{"d"}, "must list at least one item"},
		{"OneOf other", "xml", func(e *Env) any { return e.OneOf("K", "text", "json", "text") }, "text", "must be one of json, text"},
		{"OneOf case", "JSON", func(e *Env) any { return e.OneOf("K", "text", "json", "text") }, "text", "must be one of json, text"},
		{"LogLevel word", "verbose", func(e *Env) any { return e.LogLevel("K", slog.LevelInfo) }, slog.LevelInfo, "must be debug, info, warn or error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := New(fakeEnv(map[string]string{"K": tt.value}))
			got := tt.read(e)
			if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tt.def) {
				t.Errorf("read K=%q = %#v, want the default %#v", tt.value, got, tt.def)
			}
			err := e.Err()
			if err == nil {
				t.Fatalf("Err() after K=%q = nil, want an error", tt.value)
			}
			if want := "invalid configuration: K " + tt.problem; err.Error() != want {
				t.Errorf("Err() after K=%q = %q, want %q", tt.value, err, want)
			}
			if tt.value != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.value)) {
				t.Errorf("Err() = %q echoes the value %q", err, tt.value)
			}
			if k := errs.KindOf(err); k != errs.Invalid {
				t.Errorf("KindOf(Err()) = %v, want %v", k, errs.Invalid)
			}
		})
	}
}

func TestErrReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	e := New(fakeEnv(map[string]string{
		"BANK_RATE_LIMIT_AUTH": "lots",
		"BANK_AUTH_ADDR":       "nowhere",
		"BANK_GOOD":            "5",
		"BANK_TIMEOUT":         "-1s",
	}))
	e.PositiveInt("BANK_RATE_LIMIT_AUTH", 20)
	e.Addr("BANK_AUTH_ADDR", "127.0.0.1:9101")
	e.PositiveInt("BANK_GOOD", 1)
	if e.Secret("BANK_ADMIN_PASSWORD") == "" { // a required secret, as a service requires one
		e.Invalid("BANK_ADMIN_PASSWORD", "is required")
	}
	e.PositiveDuration("BANK_TIMEOUT", time.Second)
	e.PositiveInt("BANK_RATE_LIMIT_AUTH", 20) // read twice: reported once

	err := e.Err()
	ee, ok := errs.As(err)
	if !ok {
		t.Fatalf("Err() = %v, want an *errs.Error", err)
	}
	var got []string
	for _, v := range ee.Violations {
		got = append(got, v.Field)
	}
	want := []string{"BANK_RATE_LIMIT_AUTH", "BANK_AUTH_ADDR", "BANK_ADMIN_PASSWORD", "BANK_TIMEOUT"}
	if !slices.Equal(got, want) {
		t.Errorf("Err() violations = %v, want %v", got, want)
	}
	for _, key := range want {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("Err() = %q, does not name %s", err, key)
		}
	}
	if strings.Contains(err.Error(), "BANK_GOOD") {
		t.Errorf("Err() = %q, names a variable that was fine", err)
	}
	if msg := errs.SafeMessage(err); msg != ee.Msg {
		t.Errorf("SafeMessage(Err()) = %q, want the full list %q", msg, ee.Msg)
	}
}

func TestSecretsNeverShown(t *testing.T) {
	t.Parallel()
	const pw = "correct-horse-battery-staple"
	e := New(fakeEnv(map[string]string{
		"BANK_ADMIN_PASSWORD": pw,
		"BANK_SIGNING_KEY":    pw + "-key",
		"BANK_DATABASE_URL":   "postgres://bank:" + pw + "@db:5432/bank?sslmode=require&password=" + pw + "&sslkey=" + pw,
		"BANK_RATE_LIMIT_USR": pw, // a secret pasted into the wrong variable
	}))
	if got := e.Secret("BANK_ADMIN_PASSWORD"); got != pw {
		t.Errorf("Secret(BANK_ADMIN_PASSWORD) = %q, want the value", got)
	}
	e.Secret("BANK_SIGNING_KEY")
	e.Secret("BANK_UNSET_TOKEN")
	if e.Secret("BANK_MISSING_SECRET") == "" { // a required secret, as a service requires one
		e.Invalid("BANK_MISSING_SECRET", "is required")
	}
	e.String("BANK_ADMIN_PASSWORD", "") // a later plain read must not unmask it
	dbURL := e.URL("BANK_DATABASE_URL", "")
	e.PositiveInt("BANK_RATE_LIMIT_USR", 100)

	if !strings.Contains(dbURL, pw) {
		t.Errorf("URL() = %q, want the caller to get the real URL", dbURL)
	}
	sum := summaryMap(e)
	checks := []struct{ key, want string }{
		{"BANK_ADMIN_PASSWORD", SecretSet},
		{"BANK_SIGNING_KEY", SecretSet},
		{"BANK_UNSET_TOKEN", SecretUnset},
		{"BANK_MISSING_SECRET", SecretUnset},
		{"BANK_RATE_LIMIT_USR", "100"},
	}
	for _, c := range checks {
		if sum[c.key] != c.want {
			t.Errorf("Summary()[%s] = %q, want %q", c.key, sum[c.key], c.want)
		}
	}
	if !strings.Contains(sum["BANK_DATABASE_URL"], "sslmode=require") || !strings.Contains(sum["BANK_DATABASE_URL"], "db:5432") {
		t.Errorf("Summary()[BANK_DATABASE_URL] = %q, want host and non-secret parameters kept", sum["BANK_DATABASE_URL"])
	}
	everything := fmt.Sprint(e.Summary()) + " " + fmt.Sprint(e.Err())
	if strings.Contains(everything, pw) {
		t.Errorf("Summary() or Err() holds the secret: %s", everything)
	}
	if ee, _ := errs.As(e.Err()); len(ee.Violations) != 2 {
		t.Errorf("Err() = %v, want exactly BANK_MISSING_SECRET and BANK_RATE_LIMIT_USR", e.Err())
	}
}

func TestSummaryOrderAndKeys(t *testing.T) {
	t.Parallel()
	e := New(nil) // nil getenv: everything unset
	e.Addr("B", "127.0.0.1:1")
	e.Int("A", 3)
	e.Addr("B", "127.0.0.1:2") // read again with a new default
	if got, want := e.Keys(), []string{"B", "A"}; !slices.Equal(got, want) {
		t.Errorf("Keys() = %v, want %v", got, want)
	}
	sum := e.Summary()
	if len(sum) != 2 || sum[0].String() != "B=127.0.0.1:2" || sum[1].String() != "A=3" {
		t.Errorf("Summary() = %v, want [B=127.0.0.1:2 A=3]", sum)
	}
	if err := e.Err(); err != nil {
		t.Errorf("Err() with nothing set and no requirements = %v, want nil", err)
	}
}

func TestInvalidFromCaller(t *testing.T) {
	t.Parallel()
	e := New(fakeEnv(map[string]string{"BANK_TLS_CERT": "/x.pem"}))
	e.String("BANK_TLS_CERT", "")
	e.Invalid("BANK_TLS_KEY", "is required when BANK_TLS_CERT is set")
	e.Invalid("BANK_TLS_KEY", "second complaint, dropped")
	want := "invalid configuration: BANK_TLS_KEY is required when BANK_TLS_CERT is set"
	if err := e.Err(); err == nil || err.Error() != want {
		t.Errorf("Err() = %v, want %q", err, want)
	}
}
