package main

import (
	"io"
	"log/slog"
	"time"

	"github.com/bastion-bank/bastion/platform/config"
	"github.com/bastion-bank/bastion/platform/rbac"
	"github.com/bastion-bank/bastion/platform/service"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

// settings is the service's whole configuration, read once in run.
type settings struct {
	DatabaseURL      string // BANK_DATABASE_URL: as the service's own role (bank_accounts)
	PKIDir           string // BANK_PKI_DIR: ca.pem, accounts.pem, accounts-key.pem
	TrustDomain      string
	Addr             string // BANK_ACCOUNTS_ADDR: where this service listens
	TransactionsAddr string // the ledger's internal RPCs
	AuthAddr         string // JWKS and the revocation feed
	MetricsAddr      string
	Pprof            string // BANK_PPROF: profiling endpoints on the metrics listener (telemetry.Config.Pprof)

	MaxAccountsPerUser int
	PageTokenKeyFile   string // "" means a random per-process key

	TokenIssuer   string
	TokenAudience string
	AccessTTL     time.Duration  // BANK_ACCESS_TOKEN_TTL: the longest token lifetime accepted
	StaffMFA      rbac.MFAPolicy // BANK_STAFF_MFA: whether staff operations need a one-time code
	OwnerCache    int            // BANK_OWNER_CACHE_SIZE: ownership answers remembered (rbac.CacheOwners); 0 is off

	LogLevel     slog.Level
	OTLPEndpoint string
}

// loadSettings reads every variable and reports every problem at once. The
// Config it returns starts the process (platform/service), logging to
// stderr.
func loadSettings(getenv func(string) string, stderr io.Writer) (settings, service.Config, error) {
	env := config.New(getenv)
	s := settings{
		DatabaseURL:        env.URL("BANK_DATABASE_URL", ""),
		PKIDir:             env.String("BANK_PKI_DIR", ".dev/pki"),
		TrustDomain:        env.String("BANK_TRUST_DOMAIN", "bastion.local"),
		Addr:               env.Addr("BANK_ACCOUNTS_ADDR", "127.0.0.1:9102"),
		TransactionsAddr:   env.Addr("BANK_TRANSACTIONS_ADDR", "127.0.0.1:9103"),
		AuthAddr:           env.Addr("BANK_AUTH_ADDR", "127.0.0.1:9101"),
		MetricsAddr:        env.Addr("BANK_METRICS_ADDR", "127.0.0.1:9466"),
		Pprof:              env.OneOf("BANK_PPROF", "0", "0", "1", "any-address"),
		MaxAccountsPerUser: env.PositiveInt("BANK_MAX_ACCOUNTS_PER_USER", domain.DefaultMaxOpenPerUser),
		PageTokenKeyFile:   env.String("BANK_PAGE_TOKEN_KEY_FILE", ""),
		TokenIssuer:        env.String("BANK_TOKEN_ISSUER", "bastion"),
		TokenAudience:      env.String("BANK_TOKEN_AUDIENCE", "bastion-api"),
		AccessTTL:          env.AccessTokenTTL(),
		StaffMFA:           env.StaffMFA(),
		OwnerCache:         env.OwnerCacheSize(),
		LogLevel:           env.LogLevel("BANK_LOG_LEVEL", slog.LevelInfo),
		OTLPEndpoint:       env.String("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
	}
	if s.DatabaseURL == "" {
		env.Invalid("BANK_DATABASE_URL", "is required")
	}
	if err := env.Err(); err != nil {
		return settings{}, service.Config{}, err
	}
	return s, service.Config{Name: serviceName, PKIDir: s.PKIDir, TrustDomain: s.TrustDomain, MetricsAddr: s.MetricsAddr,
		Pprof: s.Pprof, OTLPEndpoint: s.OTLPEndpoint, LogLevel: s.LogLevel, LogOutput: stderr, Summary: env.Summary()}, nil
}
