package main

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/gateway/internal/policy"
	"github.com/bastion-bank/bastion/gateway/internal/server"
	"github.com/bastion-bank/bastion/platform/config"
	"github.com/bastion-bank/bastion/platform/rbac"
)

// settings is the gateway's whole configuration, read once in run.
type settings struct {
	Addr        string            // BANK_GATEWAY_ADDR: the public HTTPS address
	Upstreams   map[string]string // each upstream's address, by server.Service name
	PKIDir      string            // ca.pem, gateway.pem, gateway-key.pem
	TrustDomain string
	MetricsAddr string
	Pprof       string // BANK_PPROF: profiling endpoints on the metrics listener (telemetry.Config.Pprof)

	TLSCertFile string // the public certificate; default the dev PKI's gateway-public.pem
	TLSKeyFile  string

	RateAuth      int
	RateUser      int
	RateTransfers int
	RatePublic    int
	// RateFailedAuth is BANK_RATE_LIMIT_FAILED_AUTH: 401 and 403 answers
	// per client network per minute before every request is 429.
	RateFailedAuth int
	RedisURL       string

	// MaxInFlight and AdmissionWait are BANK_GATEWAY_MAX_IN_FLIGHT and
	// BANK_GATEWAY_ADMISSION_WAIT: the edge's bound on requests in flight
	// and the longest wait for a slot before a 503 (edge.Admission).
	MaxInFlight   int
	AdmissionWait time.Duration

	TrustedProxies  []netip.Prefix
	CORSOrigins     []string
	UpstreamTimeout time.Duration

	TokenIssuer   string
	TokenAudience string
	AccessTTL     time.Duration  // BANK_ACCESS_TOKEN_TTL: the longest token lifetime accepted
	StaffMFA      rbac.MFAPolicy // BANK_STAFF_MFA: whether staff operations need a one-time code

	LogLevel     slog.Level
	OTLPEndpoint string

	summary []slog.Attr
}

// loadSettings reads every variable and reports every problem at once.
func loadSettings(getenv func(string) string) (settings, error) {
	env := config.New(getenv)
	s := settings{
		Addr:            env.Addr("BANK_GATEWAY_ADDR", "127.0.0.1:8443"),
		Upstreams:       map[string]string{},
		PKIDir:          env.String("BANK_PKI_DIR", ".dev/pki"),
		TrustDomain:     env.String("BANK_TRUST_DOMAIN", "bastion.local"),
		MetricsAddr:     env.String("BANK_METRICS_ADDR", "127.0.0.1:9464"),
		Pprof:           env.OneOf("BANK_PPROF", "0", "0", "1", "any-address"),
		TLSCertFile:     env.String("BANK_TLS_CERT_FILE", ""),
		TLSKeyFile:      env.String("BANK_TLS_KEY_FILE", ""),
		RateAuth:        env.PositiveInt("BANK_RATE_LIMIT_AUTH", policy.DefaultAuthPerMinute),
		RateUser:        env.PositiveInt("BANK_RATE_LIMIT_USER", policy.DefaultUserPerMinute),
		RateTransfers:   env.PositiveInt("BANK_RATE_LIMIT_TRANSFERS", policy.DefaultTransfersPerMinute),
		RatePublic:      env.PositiveInt("BANK_RATE_LIMIT_PUBLIC", policy.DefaultPublicPerMinute),
		RateFailedAuth:  env.PositiveInt("BANK_RATE_LIMIT_FAILED_AUTH", edge.DefaultFailedAuthPerMinute),
		RedisURL:        env.URL("BANK_REDIS_URL", ""),
		MaxInFlight:     env.PositiveInt("BANK_GATEWAY_MAX_IN_FLIGHT", edge.DefaultMaxInFlight),
		AdmissionWait:   env.PositiveDuration("BANK_GATEWAY_ADMISSION_WAIT", edge.DefaultAdmissionWait),
		UpstreamTimeout: env.PositiveDuration("BANK_UPSTREAM_TIMEOUT", policy.DefaultTimeout),
		TokenIssuer:     env.String("BANK_TOKEN_ISSUER", "bastion"),
		TokenAudience:   env.String("BANK_TOKEN_AUDIENCE", "bastion-api"),
		AccessTTL:       env.AccessTokenTTL(),
		StaffMFA:        env.StaffMFA(),
		LogLevel:        env.LogLevel("BANK_LOG_LEVEL", slog.LevelInfo),
		OTLPEndpoint:    env.String("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
	}
	for _, svc := range server.Services() {
		s.Upstreams[svc.Name] = env.Addr(svc.AddrVar, svc.DefaultAddr)
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		env.Invalid("BANK_TLS_KEY_FILE", "must be set together with BANK_TLS_CERT_FILE")
	}
	if s.AdmissionWait > maxAdmissionWait {
		env.Invalid("BANK_GATEWAY_ADMISSION_WAIT", "must be at most 1s: a longer wait is the queue the bound exists to prevent")
	}
	s.TrustedProxies = readProxies(env)
	origins, err := edge.ParseOrigins(env.String("BANK_CORS_ORIGINS", ""))
	if err != nil {
		env.Invalid("BANK_CORS_ORIGINS", err.Error())
	}
	s.CORSOrigins = origins
	if err := env.Err(); err != nil {
		return settings{}, err
	}
	s.summary = env.Summary()
	return s, nil
}

// maxAdmissionWait caps BANK_GATEWAY_ADMISSION_WAIT.
const maxAdmissionWait = time.Second

// readProxies reads BANK_TRUSTED_PROXIES: the peers whose X-Forwarded-For
// is believed. A /0 is refused, since it would believe every client.
func readProxies(env *config.Env) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range env.List("BANK_TRUSTED_PROXIES", nil) {
		prefix, err := parsePrefix(p)
		if err != nil {
			env.Invalid("BANK_TRUSTED_PROXIES", "must be a comma-separated list of CIDRs or IP addresses")
			return nil
		}
		if prefix.Bits() == 0 {
			env.Invalid("BANK_TRUSTED_PROXIES", "must not contain a /0: that would believe X-Forwarded-For from every client")
			return nil
		}
		out = append(out, prefix)
	}
	return out
}

// parsePrefix accepts a CIDR or a single address (as a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
