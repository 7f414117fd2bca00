package main

import (
	"log/slog"
	"time"

	"github.com/bastion-bank/bastion/platform/config"
	"github.com/bastion-bank/bastion/platform/rbac"
)

// settings is everything the auth service reads from its environment, once.
type settings struct {
	DatabaseURL   string
	PKIDir        string
	KeysDir       string
	Addr          string
	MetricsAddr   string
	Pprof         string // BANK_PPROF: profiling endpoints on the metrics listener (telemetry.Config.Pprof)
	AdminEmail    string
	AdminPassword string
	PageTokenKey  string // file of the key that signs user-list page tokens
	TOTPKeyFile   string // file of the key that seals TOTP secrets at rest
	AdminTOTPFile string // file of the bootstrap admin's TOTP secret (base32), optional
	MaxFailures   int
	AccountMax    int
	Window        time.Duration
	AccessTTL     time.Duration
	StaffMFA      rbac.MFAPolicy // BANK_STAFF_MFA: whether staff operations need a one-time code
	RefreshTTL    time.Duration
	Issuer        string
	Audience      string
	TrustDomain   string
	LogLevel      slog.Level
	OTLPEndpoint  string
}

// readSettings reads the environment through getenv and reports every
// problem at once. The Env is returned for its Summary.
func readSettings(getenv func(string) string) (settings, *config.Env, error) {
	env := config.New(getenv)
	s := settings{
		DatabaseURL:   env.URL("BANK_DATABASE_URL", ""),
		PKIDir:        env.Required("BANK_PKI_DIR"),
		KeysDir:       env.Required("BANK_KEYS_DIR"),
		Addr:          env.Addr("BANK_AUTH_ADDR", "127.0.0.1:9101"),
		MetricsAddr:   env.Addr("BANK_METRICS_ADDR", "127.0.0.1:9465"),
		Pprof:         env.OneOf("BANK_PPROF", "0", "0", "1", "any-address"),
		AdminEmail:    env.String("BANK_ADMIN_EMAIL", ""),
		AdminPassword: env.Secret("BANK_ADMIN_PASSWORD"),
		PageTokenKey:  env.String("BANK_PAGE_TOKEN_KEY_FILE", ""),
		TOTPKeyFile:   env.Required("BANK_TOTP_KEY_FILE"),
		AdminTOTPFile: env.String("BANK_ADMIN_TOTP_SECRET_FILE", ""),
		MaxFailures:   env.PositiveInt("BANK_LOGIN_MAX_FAILURES", 5),
		Window:        env.PositiveDuration("BANK_LOGIN_WINDOW", 15*time.Minute),
		AccessTTL:     env.AccessTokenTTL(),
		StaffMFA:      env.StaffMFA(),
		RefreshTTL:    env.PositiveDuration("BANK_REFRESH_TOKEN_TTL", 30*24*time.Hour),
		Issuer:        env.String("BANK_TOKEN_ISSUER", "bastion"),
		Audience:      env.String("BANK_TOKEN_AUDIENCE", "bastion-api"),
		TrustDomain:   env.String("BANK_TRUST_DOMAIN", "bastion.local"),
		LogLevel:      env.LogLevel("BANK_LOG_LEVEL", slog.LevelInfo),
		OTLPEndpoint:  env.String("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
	}
	// The ceiling defaults to 50, or to the per-client limit if that is
	// raised above it (as a load test does), and is never below it.
	s.AccountMax = env.PositiveInt("BANK_LOGIN_ACCOUNT_MAX_FAILURES", max(50, s.MaxFailures))
	if s.AccountMax < s.MaxFailures {
		env.Invalid("BANK_LOGIN_ACCOUNT_MAX_FAILURES", "must be at least BANK_LOGIN_MAX_FAILURES")
	}
	if s.DatabaseURL == "" {
		env.Invalid("BANK_DATABASE_URL", "is required")
	}
	if (s.AdminEmail == "") != (s.AdminPassword == "") {
		env.Invalid("BANK_ADMIN_PASSWORD", "must be set together with BANK_ADMIN_EMAIL, or neither")
	}
	if s.AdminTOTPFile != "" && s.AdminEmail == "" {
		env.Invalid("BANK_ADMIN_TOTP_SECRET_FILE", "needs BANK_ADMIN_EMAIL: it enrols that admin")
	}
	if s.RefreshTTL < s.AccessTTL {
		env.Invalid("BANK_REFRESH_TOKEN_TTL", "must be at least BANK_ACCESS_TOKEN_TTL")
	}
	return s, env, env.Err()
}
