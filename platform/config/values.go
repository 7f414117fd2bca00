package config

import (
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bastion-bank/bastion/platform/rbac"
)

// read is the one path every typed getter takes: an unset key yields def, a
// set one is converted, and a conversion problem is recorded (without the
// value) while def is returned, so that reading can go on and Err can report
// every bad variable at once.
func read[T any](e *Env, key string, def T, show func(T) string, conv func(string) (T, string)) T {
	raw, set := e.lookup(key)
	if !set {
		e.record(key, show(def), false, false)
		return def
	}
	v, problem := conv(raw)
	if problem != "" {
		e.Invalid(key, problem)
		e.record(key, show(def), false, true)
		return def
	}
	e.record(key, show(v), false, true)
	return v
}

// asIs shows a value that needs no formatting.
func asIs(s string) string { return s }

// String returns key's value, or def when unset. The value is used as it is,
// blanks and all; use Secret for anything that must not be logged.
func (e *Env) String(key, def string) string {
	v := e.getenv(key)
	if v == "" {
		e.record(key, def, false, false)
		return def
	}
	e.record(key, v, false, true)
	return v
}

// Required returns key's value and records a problem when it is unset.
func (e *Env) Required(key string) string {
	v := e.String(key, "")
	if v == "" {
		e.Invalid(key, "is required")
	}
	return v
}

// Secret returns key's value, or "" when unset. The value is never shown: not
// in Summary (only whether it is set) and not in Err.
func (e *Env) Secret(key string) string {
	v := e.getenv(key)
	e.record(key, "", true, v != "")
	return v
}

// Int returns key's value as a base-10 integer, or def when unset.
func (e *Env) Int(key string, def int) int {
	return read(e, key, def, strconv.Itoa, func(s string) (int, string) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, "must be an integer"
		}
		return n, ""
	})
}

// PositiveInt is Int for counts and limits, which must be at least 1: a
// rate limit of 0 or -1 is a typo, not a wish to turn the control off.
func (e *Env) PositiveInt(key string, def int) int {
	return read(e, key, def, strconv.Itoa, func(s string) (int, string) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, "must be a positive integer"
		}
		return n, ""
	})
}

// Int64 returns key's value as a base-10 64-bit integer, or def when unset.
func (e *Env) Int64(key string, def int64) int64 {
	return read(e, key, def, formatInt64, func(s string) (int64, string) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, "must be a 64-bit integer"
		}
		return n, ""
	})
}

// PositiveInt64 is Int64 for amounts that must be at least 1, such as
// transfer limits in minor units.
func (e *Env) PositiveInt64(key string, def int64) int64 {
	return read(e, key, def, formatInt64, func(s string) (int64, string) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return 0, "must be a positive 64-bit integer"
		}
		return n, ""
	})
}

func formatInt64(n int64) string { return strconv.FormatInt(n, 10) }

// Duration returns key's value as a Go duration ("750ms", "30s", "1h"), or
// def when unset.
func (e *Env) Duration(key string, def time.Duration) time.Duration {
	return read(e, key, def, time.Duration.String, func(s string) (time.Duration, string) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, "must be a duration such as 30s"
		}
		return d, ""
	})
}

// PositiveDuration is Duration for timeouts and windows, which must be
// longer than zero.
func (e *Env) PositiveDuration(key string, def time.Duration) time.Duration {
	return read(e, key, def, time.Duration.String, func(s string) (time.Duration, string) {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return 0, "must be a positive duration such as 30s"
		}
		return d, ""
	})
}

// Bool returns key's value as a boolean (1, t, true, 0, f, false in any
// case), or def when unset.
func (e *Env) Bool(key string, def bool) bool {
	return read(e, key, def, strconv.FormatBool, func(s string) (bool, string) {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return false, "must be true or false"
		}
		return b, ""
	})
}

// Addr returns key's value as a listen or dial address "host:port" (the host
// may be empty, meaning every interface; port 0 picks a free port), or def
// when unset.
func (e *Env) Addr(key, def string) string {
	return read(e, key, def, asIs, func(s string) (string, string) {
		host, port, err := net.SplitHostPort(s)
		if err != nil || strings.ContainsAny(host, " \t/@?#") {
			return "", "must be host:port"
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return "", "must be host:port with a port from 0 to 65535"
		}
		return s, ""
	})
}

// URL returns key's value as an absolute URL with a scheme and a host (such
// as a database URL), or def when unset. Summary shows it without its
// password, and with the values of password-, secret-, token- or key-like
// query parameters hidden, since libpq-style URLs carry them there too.
func (e *Env) URL(key, def string) string {
	return read(e, key, def, safeURL, func(s string) (string, string) {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return "", "must be an absolute URL such as scheme://host/path"
		}
		return s, ""
	})
}

// safeURL renders a URL for Summary with its credentials hidden.
func safeURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "[unparsable]"
	}
	q := u.Query()
	for name := range q {
		n := strings.ToLower(name)
		for _, w := range []string{"pass", "secret", "token", "key"} {
			if strings.Contains(n, w) {
				q.Set(name, "xxxxx")
			}
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// List returns key's value split on commas, each item trimmed and empty
// items dropped, or def when unset.
func (e *Env) List(key string, def []string) []string {
	show := func(l []string) string { return strings.Join(l, ",") }
	return read(e, key, def, show, func(s string) ([]string, string) {
		var out []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
		if len(out) == 0 {
			return nil, "must list at least one item"
		}
		return out, ""
	})
}

// OneOf returns key's value if it is one of allowed (compared exactly), or
// def when unset.
func (e *Env) OneOf(key, def string, allowed ...string) string {
	return read(e, key, def, asIs, func(s string) (string, string) {
		if !slices.Contains(allowed, s) {
			return "", "must be one of " + strings.Join(allowed, ", ")
		}
		return s, ""
	})
}

// LogLevel returns key's value as a slog level ("debug", "info", "warn",
// "error", optionally with an offset such as "info+2"), or def when unset.
func (e *Env) LogLevel(key string, def slog.Level) slog.Level {
	return read(e, key, def, slog.Level.String, func(s string) (slog.Level, string) {
		var l slog.Level
		if err := l.UnmarshalText([]byte(s)); err != nil {
			return 0, "must be debug, info, warn or error"
		}
		return l, ""
	})
}

// Access-token lifetime bounds, shared by the issuer (auth) and every
// verifier, so that both read the same BANK_ACCESS_TOKEN_TTL.
const (
	DefaultAccessTokenTTL = 15 * time.Minute
	MaxAccessTokenTTL     = time.Hour
)

// AccessTokenTTL returns BANK_ACCESS_TOKEN_TTL: how long auth's access
// tokens live, and the longest exp − iat a verifier accepts. At most
// MaxAccessTokenTTL: revocation is pushed, but a long-lived token still
// widens the window of a stolen one.
func (e *Env) AccessTokenTTL() time.Duration {
	const key = "BANK_ACCESS_TOKEN_TTL"
	ttl := e.PositiveDuration(key, DefaultAccessTokenTTL)
	if ttl > MaxAccessTokenTTL {
		e.Invalid(key, "must be at most 1h")
	}
	return ttl
}

// StaffMFA returns BANK_STAFF_MFA: "required" (the default), staff
// operations need a token from a login with a one-time code; "off", for
// workshops, a password is enough. Every process reads it, so that the edge
// and each service apply one policy (platform/rbac.Rule.CheckMFA).
func (e *Env) StaffMFA() rbac.MFAPolicy {
	if e.OneOf("BANK_STAFF_MFA", "required", "required", "off") == "off" {
		return rbac.MFAOff
	}
	return rbac.MFARequired
}

// OwnerCacheSize returns BANK_OWNER_CACHE_SIZE: how many ownership answers a
// service remembers (rbac.CacheOwners), default rbac.DefaultOwnerCacheSize;
// 0 turns the cache off, and every ownership check asks the database.
func (e *Env) OwnerCacheSize() int {
	const key = "BANK_OWNER_CACHE_SIZE"
	n := e.Int(key, rbac.DefaultOwnerCacheSize)
	if n < 0 {
		e.Invalid(key, "must be 0 (off) or a positive integer")
		return rbac.DefaultOwnerCacheSize
	}
	return n
}
