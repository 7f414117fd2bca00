package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/gateway/internal/server"
	"github.com/bastion-bank/bastion/platform/authclient"
	"github.com/bastion-bank/bastion/platform/grpcclient"
	"github.com/bastion-bank/bastion/platform/mtls"
	"github.com/bastion-bank/bastion/platform/ratelimit"
	"github.com/bastion-bank/bastion/platform/telemetry"
	"github.com/bastion-bank/bastion/platform/token"
)

// PublicCertName is the file stem, in BANK_PKI_DIR, of the public serving
// certificate the dev PKI mints for the edge (pki.EnsureServing).
const PublicCertName = "gateway-public"

// publicSource is the certificate clients see: BANK_TLS_CERT_FILE and
// BANK_TLS_KEY_FILE when set, else the dev PKI's public serving certificate.
// Never the gateway's platform identity: whoever took that key from an
// exposed edge could call auth as the gateway and set the client IP that
// keys the login throttle. So a certificate naming any SPIFFE identity is
// refused here, and the gateway does not start.
func publicSource(s settings, logger *slog.Logger) (*mtls.Source, error) {
	files := mtls.Files{Cert: s.TLSCertFile, Key: s.TLSKeyFile}
	what := "BANK_TLS_CERT_FILE and BANK_TLS_KEY_FILE"
	if files.Cert == "" {
		files = mtls.Files{Cert: filepath.Join(s.PKIDir, PublicCertName+".pem"), Key: filepath.Join(s.PKIDir, PublicCertName+"-key.pem")}
		what = "the dev PKI's public certificate " + files.Cert
	}
	src, err := mtls.NewSource(files, s.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", what, err)
	}
	cert, err := src.PublicServerConfig().GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", what, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", what, err)
	}
	for _, u := range leaf.URIs {
		if u.Scheme == "spiffe" {
			return nil, fmt.Errorf("%s names the platform identity %s: serve the public with a certificate of its own", what, u)
		}
	}
	logger.Info("public certificate", "file", files.Cert, "subject", leaf.Subject.CommonName, "dns_names", leaf.DNSNames)
	src.LogReloadErrors(logger, "public certificate")
	return src, nil
}

// dialUpstreams connects (lazily) to each service of server.Services,
// checking each server's SPIFFE identity, with the upstream deadline on every
// call. closeAll closes every connection made.
func dialUpstreams(s settings, src *mtls.Source, tel *telemetry.Telemetry) (up server.Upstreams, closeAll func(), err error) {
	stats := tel.GRPCClientHandler()
	var conns []*grpc.ClientConn
	closeAll = func() {
		for _, conn := range conns {
			_ = conn.Close()
		}
	}
	up = server.Upstreams{}
	for _, svc := range server.Services() {
		conn, err := grpcclient.Dial(s.Upstreams[svc.Name], src.ClientCredentials(svc.Name), grpcclient.Options{Timeout: s.UpstreamTimeout, StatsHandler: stats})
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("dial %s: %w", svc.Name, err)
		}
		conns = append(conns, conn)
		up[svc.Name] = conn
	}
	return up, closeAll, nil
}

// followAuth builds the token verifier (platform/authclient): keys from
// auth's JWKS, revocations from auth's feed, followed in the background until
// ctx ends. synced reports whether the list of revoked tokens is current
// (authclient.Verifier.Synced: the first snapshot has arrived and the feed
// has not been lost for longer than authclient.MaxStaleness); while it is
// not, the policy refuses user routes and /readyz answers 503.
func followAuth(ctx context.Context, s settings, conn grpc.ClientConnInterface, logger *slog.Logger) (*token.Verifier, func() bool) {
	v := authclient.Follow(ctx, conn, token.VerifierConfig{Issuer: s.TokenIssuer, Audience: s.TokenAudience, MaxLifetime: s.AccessTTL}, logger)
	go func() {
		if v.WaitSynced(ctx, 24*time.Hour) {
			logger.Info("revocation feed synchronised; accepting tokens")
		}
	}()
	return v.Verifier, v.Synced
}

// newLimiter shares counters through Redis when BANK_REDIS_URL is set,
// deciding locally while Redis is down; otherwise each replica limits alone,
// which start-up logs loudly.
func newLimiter(s settings, logger *slog.Logger) (ratelimit.Limiter, func(), error) {
	mem := ratelimit.NewMemory(time.Now, 0)
	if s.RedisURL == "" {
		logger.Warn("BANK_REDIS_URL is not set: rate limits are counted per gateway process, not shared between replicas")
		return mem, func() {}, nil
	}
	opts, err := redis.ParseURL(s.RedisURL)
	if err != nil {
		return nil, nil, errors.New("BANK_REDIS_URL is not a valid redis:// URL")
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 200*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
	client := redis.NewClient(opts)
	var last atomic.Int64
	fb := &ratelimit.Fallback{
		Primary:   ratelimit.NewRedis(client),
		Secondary: mem,
		Cooldown:  5 * time.Second,
		OnError: func(err error) {
			if now := time.Now().Unix(); last.Swap(now) != now {
				logger.Warn("redis rate limiter unavailable; limiting in memory", "error", err.Error())
			}
		},
	}
	logger.Info("rate limits shared through redis", "addr", opts.Addr)
	return fb, func() { _ = client.Close() }, nil
}

// listenAndServe binds the public address and serves HTTPS until ctx ends.
func listenAndServe(ctx context.Context, s settings, h http.Handler, public *mtls.Source, logger *slog.Logger) error {
	t := server.DefaultTimeouts(s.UpstreamTimeout)
	srv, err := server.NewHTTPServer(h, public.PublicServerConfig(), t, logger)
	if err != nil {
		return err
	}
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.Addr, err)
	}
	logger.Info("gateway listening (HTTPS only)", "addr", lis.Addr().String())
	return server.Serve(ctx, srv, lis, t.Shutdown)
}
