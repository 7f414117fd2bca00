package main

import (
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/bastion-bank/bastion/platform/config"
	"github.com/bastion-bank/bastion/platform/rbac"
	"github.com/bastion-bank/bastion/platform/service"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
	ledgerpg "github.com/bastion-bank/bastion/services/transactions/internal/postgres"
)

// settings is the service's whole configuration, read once in run.
type settings struct {
	DatabaseURL string // BANK_DATABASE_URL: as the service's own role (bank_ledger)
	DBMaxConns  int    // BANK_DB_MAX_CONNS: pool size
	// GroupCommit bounds the ledger's group commit: BANK_LEDGER_BATCH_MAX,
	// BANK_LEDGER_QUEUE_MAX, BANK_LEDGER_COMMITTERS.
	GroupCommit ledgerpg.GroupCommit
	PKIDir      string // BANK_PKI_DIR: ca.pem, transactions.pem, transactions-key.pem
	TrustDomain string
	Addr        string // BANK_TRANSACTIONS_ADDR: where this service listens
	AuthAddr    string // JWKS and the revocation feed
	MetricsAddr string
	Pprof       string // BANK_PPROF: profiling endpoints on the metrics listener (telemetry.Config.Pprof)

	Limits           domain.Limits
	IdempotencyTTL   time.Duration
	PageTokenKeyFile string // "" means a random per-process key

	TokenIssuer   string
	TokenAudience string
	AccessTTL     time.Duration  // BANK_ACCESS_TOKEN_TTL: the longest token lifetime accepted
	StaffMFA      rbac.MFAPolicy // BANK_STAFF_MFA: whether staff operations need a one-time code
	OwnerCache    int            // BANK_OWNER_CACHE_SIZE: ownership answers remembered (rbac.CacheOwners); 0 is off

	LogLevel     slog.Level
	OTLPEndpoint string
}

// Defaults for the limits, in minor units (docs/api.md, "Limits and their knobs").
const (
	defaultApprovalThreshold = 1_000_000
	defaultMaxTransfer       = 100_000_000
	defaultDailyLimit        = 500_000_000
	// defaultDBMaxConns was chosen when every money transaction ended by
	// queueing on the audit chain's lock. That lock is off the transaction
	// now (audit rows are sealed after commit), and 16 connections measured
	// no faster than 8 on a 2-core machine (internal/rpc BenchmarkTransfer).
	defaultDBMaxConns = 8
)

// defaultDailyThreshold is 3 × the approval threshold: three payments just
// under the threshold in one day are as much as one that needs approval.
func defaultDailyThreshold(threshold int64) int64 {
	if threshold > math.MaxInt64/3 {
		return math.MaxInt64
	}
	return 3 * threshold
}

// loadSettings reads every variable and reports every problem at once. The
// Config it returns starts the process (platform/service), logging to
// stderr.
func loadSettings(getenv func(string) string, stderr io.Writer) (settings, service.Config, error) {
	env := config.New(getenv)
	s := settings{
		DatabaseURL: env.URL("BANK_DATABASE_URL", ""),
		DBMaxConns:  env.PositiveInt("BANK_DB_MAX_CONNS", defaultDBMaxConns),
		GroupCommit: ledgerpg.GroupCommit{
			MaxBatch:   env.PositiveInt("BANK_LEDGER_BATCH_MAX", ledgerpg.DefaultMaxBatch),
			MaxQueue:   env.PositiveInt("BANK_LEDGER_QUEUE_MAX", ledgerpg.DefaultMaxQueue),
			Committers: env.PositiveInt("BANK_LEDGER_COMMITTERS", ledgerpg.DefaultCommitters),
		},
		PKIDir:      env.String("BANK_PKI_DIR", ".dev/pki"),
		TrustDomain: env.String("BANK_TRUST_DOMAIN", "bastion.local"),
		Addr:        env.Addr("BANK_TRANSACTIONS_ADDR", "127.0.0.1:9103"),
		AuthAddr:    env.Addr("BANK_AUTH_ADDR", "127.0.0.1:9101"),
		MetricsAddr: env.Addr("BANK_METRICS_ADDR", "127.0.0.1:9467"),
		Pprof:       env.OneOf("BANK_PPROF", "0", "0", "1", "any-address"),
		Limits: domain.Limits{
			ApprovalThreshold: env.PositiveInt64("BANK_APPROVAL_THRESHOLD", defaultApprovalThreshold),
			MaxTransfer:       env.PositiveInt64("BANK_MAX_TRANSFER", defaultMaxTransfer),
			DailyLimit:        env.PositiveInt64("BANK_DAILY_LIMIT", defaultDailyLimit),
		},
		IdempotencyTTL:   env.PositiveDuration("BANK_IDEMPOTENCY_TTL", domain.MinKeyTTL),
		PageTokenKeyFile: env.String("BANK_PAGE_TOKEN_KEY_FILE", ""),
		TokenIssuer:      env.String("BANK_TOKEN_ISSUER", "bastion"),
		TokenAudience:    env.String("BANK_TOKEN_AUDIENCE", "bastion-api"),
		AccessTTL:        env.AccessTokenTTL(),
		StaffMFA:         env.StaffMFA(),
		OwnerCache:       env.OwnerCacheSize(),
		LogLevel:         env.LogLevel("BANK_LOG_LEVEL", slog.LevelInfo),
		OTLPEndpoint:     env.String("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
	}
	// The daily approval threshold defaults from the per-transfer one, so
	// it is read after it.
	s.Limits.ApprovalDailyThreshold = env.PositiveInt64("BANK_APPROVAL_DAILY_THRESHOLD", defaultDailyThreshold(s.Limits.ApprovalThreshold))
	s.Limits.DepositDailyLimit = env.PositiveInt64("BANK_DEPOSIT_DAILY_LIMIT", domain.DefaultDepositDailyLimit)
	if s.DatabaseURL == "" {
		env.Invalid("BANK_DATABASE_URL", "is required")
	}
	if s.IdempotencyTTL < domain.MinKeyTTL {
		env.Invalid("BANK_IDEMPOTENCY_TTL", "must be at least 24h: docs/api.md promises clients a day to retry")
	}
	if err := env.Err(); err != nil {
		return settings{}, service.Config{}, err
	}
	return s, service.Config{Name: serviceName, PKIDir: s.PKIDir, TrustDomain: s.TrustDomain, MetricsAddr: s.MetricsAddr,
		Pprof: s.Pprof, OTLPEndpoint: s.OTLPEndpoint, LogLevel: s.LogLevel, LogOutput: stderr, Summary: env.Summary()}, nil
}
