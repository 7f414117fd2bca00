package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/bastion-bank/bastion/platform/config"
	"go.opentelemetry.io/otel/trace"
)

// secretValuer renders as a secret only when the handler resolves it, the
// way a lazily formatted value would.
type secretValuer struct{ v string }

func (s secretValuer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("password", s.v), slog.String("user", "u1"))
}

// logLines logs with a fresh logger into a buffer and returns the raw output
// and each line decoded.
func logLines(t *testing.T, ctx context.Context, log func(context.Context, *slog.Logger)) (string, []map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	log(ctx, NewLogger(&buf, slog.LevelDebug))
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		lines = append(lines, m)
	}
	return buf.String(), lines
}

func TestLoggerRedactsSecrets(t *testing.T) {
	t.Parallel()
	jwt := testJWT(t)
	const pw = "correct-horse-battery-staple"
	const opaque = "rt_9f8e7d6c5b4a39281706"
	tests := []struct {
		name    string
		log     func(context.Context, *slog.Logger)
		secrets []string
	}{
		{"password attr", func(ctx context.Context, l *slog.Logger) {
			l.InfoContext(ctx, "login", "email", "a@b.c", "password", pw)
		}, []string{pw}},
		{"mixed-case key", func(ctx context.Context, l *slog.Logger) {
			l.Info("login", slog.String("PassWord", pw))
		}, []string{pw}},
		{"refresh token attr", func(ctx context.Context, l *slog.Logger) {
			l.Info("refresh", slog.String("refresh_token", opaque))
		}, []string{opaque}},
		{"authorization header", func(ctx context.Context, l *slog.Logger) {
			l.Info("request", slog.String("authorization", "Bearer "+opaque))
		}, []string{opaque}},
		{"jwt under innocent key", func(ctx context.Context, l *slog.Logger) {
			l.Info("request", slog.String("header", "Bearer "+jwt))
		}, []string{jwt}},
		{"jwt in message", func(ctx context.Context, l *slog.Logger) {
			l.Info("got " + jwt)
		}, []string{jwt}},
		{"jwt in error", func(ctx context.Context, l *slog.Logger) {
			l.Error("verify failed", slog.Any("error", fmt.Errorf("parse %s: %w", jwt, errors.New("bad sig"))))
		}, []string{jwt}},
		{"nested group", func(ctx context.Context, l *slog.Logger) {
			l.Info("req", slog.Group("body", slog.Group("credentials", slog.String("x", pw)), slog.String("new_password", pw)))
		}, []string{pw}},
		{"sensitive group name", func(ctx context.Context, l *slog.Logger) {
			l.Info("req", slog.Group("secret", slog.String("value", pw)))
		}, []string{pw}},
		{"WithAttrs", func(ctx context.Context, l *slog.Logger) {
			l.With("api_key", opaque).Info("call")
		}, []string{opaque}},
		{"WithGroup then attrs", func(ctx context.Context, l *slog.Logger) {
			l.WithGroup("req").With("cookie", "sid="+opaque).Info("call", "password", pw)
		}, []string{opaque, pw}},
		{"sensitive WithGroup name", func(ctx context.Context, l *slog.Logger) {
			l.WithGroup("token").Info("call", "value", opaque)
		}, []string{opaque}},
		{"LogValuer resolved late", func(ctx context.Context, l *slog.Logger) {
			l.Info("user", slog.Any("who", secretValuer{pw}))
		}, []string{pw}},
		{"struct with password field", func(ctx context.Context, l *slog.Logger) {
			l.Info("decoded", slog.Any("req", struct{ Email, Password string }{"a@b.c", pw}))
		}, []string{pw}},
		{"map with token", func(ctx context.Context, l *slog.Logger) {
			l.Info("decoded", slog.Any("hdrs", map[string][]string{"Set-Cookie": {"sid=" + opaque}}))
		}, []string{opaque}},
		{"string slice with jwt", func(ctx context.Context, l *slog.Logger) {
			l.Info("decoded", slog.Any("vals", []string{"ok", jwt}))
		}, []string{jwt}},
		{"LogAttrs path", func(ctx context.Context, l *slog.Logger) {
			l.LogAttrs(ctx, slog.LevelWarn, "x", slog.String("private_key", pw))
		}, []string{pw}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, lines := logLines(t, context.Background(), tt.log)
			if len(lines) != 1 {
				t.Fatalf("logged %d lines, want 1: %s", len(lines), out)
			}
			for _, s := range tt.secrets {
				if strings.Contains(out, s) {
					t.Errorf("log output holds secret %q: %s", s, out)
				}
			}
			if !strings.Contains(out, Redacted) {
				t.Errorf("log output = %s, want %q in it", out, Redacted)
			}
		})
	}
}

func TestLoggerKeepsCleanAttributes(t *testing.T) {
	t.Parallel()
	out, lines := logLines(t, context.Background(), func(ctx context.Context, l *slog.Logger) {
		l.With("service", "auth").WithGroup("req").Info("transfer posted",
			"amount", 1500, "currency", "EUR", slog.Any("ids", []string{"a", "b"}), slog.Bool("ok", true))
	})
	if strings.Contains(out, Redacted) {
		t.Errorf("clean record was redacted: %s", out)
	}
	got := lines[0]
	req, _ := got["req"].(map[string]any)
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"msg", got["msg"], "transfer posted"},
		{"service", got["service"], "auth"},
		{"req.amount", req["amount"], float64(1500)},
		{"req.currency", req["currency"], "EUR"},
		{"req.ok", req["ok"], true},
		{"req.ids", fmt.Sprint(req["ids"]), "[a b]"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("log field %s = %v, want %v (line %s)", c.name, c.got, c.want, out)
		}
	}
}

func TestLoggerAddsTraceIDs(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	sc := span.SpanContext()

	out, lines := logLines(t, ctx, func(ctx context.Context, l *slog.Logger) {
		l.InfoContext(ctx, "top")
		l.WithGroup("g").With("a", 1).InfoContext(ctx, "grouped", "b", 2)
		l.Info("no context")
	})
	if len(lines) != 3 {
		t.Fatalf("logged %d lines, want 3: %s", len(lines), out)
	}
	for i, line := range lines[:2] {
		if got := line[TraceIDKey]; got != sc.TraceID().String() {
			t.Errorf("line %d %s = %v, want %s (top level even inside a group)", i, TraceIDKey, got, sc.TraceID())
		}
		if got := line[SpanIDKey]; got != sc.SpanID().String() {
			t.Errorf("line %d %s = %v, want %s", i, SpanIDKey, got, sc.SpanID())
		}
	}
	if g, _ := lines[1]["g"].(map[string]any); g["a"] != float64(1) || g["b"] != float64(2) {
		t.Errorf("grouped line g = %v, want a=1 and b=2 inside it", lines[1]["g"])
	}
	if _, ok := lines[2][TraceIDKey]; ok {
		t.Errorf("line without span has %s: %v", TraceIDKey, lines[2])
	}
}

func TestLoggerIgnoresInvalidSpanContext(t *testing.T) {
	t.Parallel()
	// A context carrying an all-zero span context must not produce ids.
	ctx := trace.ContextWithSpanContext(context.Background(), trace.SpanContext{})
	_, lines := logLines(t, ctx, func(ctx context.Context, l *slog.Logger) { l.InfoContext(ctx, "x") })
	if _, ok := lines[0][TraceIDKey]; ok {
		t.Errorf("log line = %v, want no %s for an invalid span context", lines[0], TraceIDKey)
	}
}

func TestLoggerHonoursLevelAndEmptyGroup(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := NewLogger(&buf, slog.LevelWarn)
	l.Info("dropped")
	l.WithGroup("").With().Warn("kept")
	out := buf.String()
	if strings.Contains(out, "dropped") || !strings.Contains(out, "kept") {
		t.Errorf("log output at Warn level = %q, want only the warning", out)
	}
	if l.Handler().Enabled(context.Background(), slog.LevelInfo) {
		t.Errorf("Enabled(Info) = true at Warn level, want false")
	}
}

func TestLoggerSiblingsDoNotShareAttrs(t *testing.T) {
	t.Parallel()
	_, lines := logLines(t, context.Background(), func(ctx context.Context, l *slog.Logger) {
		base := l.WithGroup("g").With("base", 1)
		base.With("a", 1).Info("one")
		base.With("b", 2).Info("two")
	})
	one, _ := lines[0]["g"].(map[string]any)
	two, _ := lines[1]["g"].(map[string]any)
	if _, leaked := two["a"]; leaked {
		t.Errorf("second logger's group = %v, holds the first logger's attribute", two)
	}
	if _, leaked := one["b"]; leaked {
		t.Errorf("first logger's group = %v, holds the second logger's attribute", one)
	}
}

// TestConfigurationIsLoggedInClear: the start-up configuration line shows
// every value that is not a secret, even under a name containing "token"
// (the issuer, audience and lifetimes must be compared across processes);
// secrets were already replaced by platform/config's explicit list; and a
// credential-shaped value is still masked. An ordinary attribute with such
// a name stays masked.
func TestConfigurationIsLoggedInClear(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(NewLogHandler(slog.NewJSONHandler(&buf, nil)))
	env := config.New(func(k string) string {
		return map[string]string{
			"BANK_TOKEN_ISSUER":        "bastion",
			"BANK_ACCESS_TOKEN_TTL":    "10m",
			"BANK_PAGE_TOKEN_KEY_FILE": "/run/page-token.key",
			"BANK_ADMIN_PASSWORD":      "correct horse battery staple",
			"BANK_TOKEN_AUDIENCE":      "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln",
		}[k]
	})
	env.String("BANK_TOKEN_ISSUER", "")
	env.AccessTokenTTL()
	env.String("BANK_PAGE_TOKEN_KEY_FILE", "")
	env.Secret("BANK_ADMIN_PASSWORD")
	env.String("BANK_TOKEN_AUDIENCE", "")
	logger.LogAttrs(context.Background(), slog.LevelInfo, "configuration", env.Summary()...)
	logger.Info("other", "refresh_token", "abc")
	var line map[string]any
	if err := json.Unmarshal(bytes.SplitN(buf.Bytes(), []byte("\n"), 2)[0], &line); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"BANK_TOKEN_ISSUER": "bastion", "BANK_ACCESS_TOKEN_TTL": "10m0s", "BANK_PAGE_TOKEN_KEY_FILE": "/run/page-token.key",
		"BANK_ADMIN_PASSWORD": config.SecretSet, "BANK_TOKEN_AUDIENCE": Redacted,
	} {
		if line[key] != want {
			t.Errorf("configuration line %s = %v, want %q", key, line[key], want)
		}
	}
	if strings.Contains(buf.String(), "correct horse") || strings.Contains(buf.String(), `"abc"`) {
		t.Errorf("a secret reached the log: %s", buf.String())
	}
}

// TestLoggerRedactsEveryKindUnderASensitiveKey: the handler looks at an
// attribute's kind before its value (only KindAny can be Vetted, and only
// strings, groups and KindAny can hold text), so a number, a flag, a
// duration or a time under a sensitive key must still come out as
// [Redacted], never as the value.
func TestLoggerRedactsEveryKindUnderASensitiveKey(t *testing.T) {
	t.Parallel()
	when := time.Date(2031, 7, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		attr   slog.Attr
		secret string
	}{
		{slog.Int("pin_secret", 734921), "734921"},
		{slog.Int64("otp_token", 918273), "918273"},
		{slog.Uint64("api_key", 44556677), "44556677"},
		{slog.Float64("password", 271828.5), "271828"},
		{slog.Bool("secret_flag", true), "true"},
		{slog.Duration("token_ttl", 987654321), "987654321"},
		{slog.Time("credential_expiry", when), "2031"},
		{slog.String("refresh_token", "rt_55aa66bb"), "rt_55aa66bb"},
		{slog.Any("authorization", struct{ Scheme, Value string }{"Bearer", "zz_99yy"}), "zz_99yy"},
		{slog.Any("cookie", secretValuer{"pw_lazy_1"}), "pw_lazy_1"},
	}
	for _, tt := range tests {
		t.Run(tt.attr.Key, func(t *testing.T) {
			t.Parallel()
			out, lines := logLines(t, context.Background(), func(ctx context.Context, l *slog.Logger) {
				l.LogAttrs(ctx, slog.LevelInfo, "x", tt.attr)
			})
			if strings.Contains(out, tt.secret) {
				t.Errorf("log output holds %q: %s", tt.secret, out)
			}
			if got := lines[0][tt.attr.Key]; got != Redacted {
				t.Errorf("%s = %v, want %q", tt.attr.Key, got, Redacted)
			}
		})
	}
}

// TestLoggerRedactsPastTheStackBuffer: a record's attributes are redacted
// into a fixed array on the stack and spill to the heap past it; a secret
// on either side of the boundary, and every other field, must come out as
// on a short line.
func TestLoggerRedactsPastTheStackBuffer(t *testing.T) {
	t.Parallel()
	jwt := testJWT(t)
	const n = 40
	secretAt := map[int]slog.Attr{
		0:     slog.String("header", "Bearer opaque_0"),
		15:    slog.String("password", "pw_15"),
		16:    slog.String("note", "got "+jwt),
		17:    slog.Int("pin_secret", 170017),
		n - 1: slog.Group("req", slog.String("api_key", "ak_last")),
	}
	out, lines := logLines(t, context.Background(), func(ctx context.Context, l *slog.Logger) {
		attrs := make([]slog.Attr, n)
		for i := range attrs {
			attrs[i] = slog.Int(fmt.Sprintf("f%02d", i), i)
			if a, ok := secretAt[i]; ok {
				attrs[i] = a
			}
		}
		l.LogAttrs(ctx, slog.LevelInfo, "wide", attrs...)
	})
	for _, s := range []string{"opaque_0", "pw_15", jwt, "170017", "ak_last"} {
		if strings.Contains(out, s) {
			t.Errorf("log output holds %q: %s", s, out)
		}
	}
	for i := range n {
		if _, secret := secretAt[i]; secret {
			continue
		}
		if key := fmt.Sprintf("f%02d", i); lines[0][key] != float64(i) {
			t.Errorf("%s = %v, want %d", key, lines[0][key], i)
		}
	}
}
