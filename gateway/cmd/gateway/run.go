package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/bastion-bank/bastion/proto/openapi"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/gateway/internal/policy"
	"github.com/bastion-bank/bastion/gateway/internal/server"
	"github.com/bastion-bank/bastion/platform/mtls"
	"github.com/bastion-bank/bastion/platform/service/gctune"
	"github.com/bastion-bank/bastion/platform/telemetry"
)

// run reads the configuration once, wires the gateway and serves until ctx
// ends (SIGINT or SIGTERM), then drains in-flight requests.
func run(ctx context.Context, _ []string, getenv func(string) string, _, stderr io.Writer) error {
	s, err := loadSettings(getenv)
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		ServiceName: "gateway", MetricsAddr: s.MetricsAddr, Pprof: s.Pprof, OTLPEndpoint: s.OTLPEndpoint,
		LogLevel: s.LogLevel, LogOutput: stderr,
	})
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.WithoutCancel(ctx)) }()
	logger := tel.Logger()
	gctune.Apply(logger) // as platform/service does for the services
	logger.LogAttrs(ctx, slog.LevelInfo, "configuration", s.summary...)
	if err := tel.StartAdmin(ctx); err != nil {
		return err
	}
	return serve(ctx, s, tel)
}

// serve builds the upstream connections, the verifier, the limiter, the
// policy and the HTTPS server, in that order, and serves.
func serve(ctx context.Context, s settings, tel *telemetry.Telemetry) error {
	logger := tel.Logger()
	internal, err := mtls.NewSource(mtls.FilesIn(s.PKIDir, "gateway"), s.TrustDomain)
	if err != nil {
		return fmt.Errorf("load the gateway's platform certificate from %s: %w", s.PKIDir, err)
	}
	internal.LogReloadErrors(logger, "platform certificate")
	public, err := publicSource(s, logger)
	if err != nil {
		return err
	}
	up, closeUpstreams, err := dialUpstreams(s, internal, tel)
	if err != nil {
		return err
	}
	defer closeUpstreams()
	verifier, synced := followAuth(ctx, s, up["auth"], logger)
	limiter, closeLimiter, err := newLimiter(s, logger)
	if err != nil {
		return err
	}
	defer closeLimiter()
	limits := policy.NewLimits(s.RateAuth, s.RateUser, s.RateTransfers, s.RatePublic)
	pol, err := policy.New(policy.Config{
		Verifier: verifier, Limiter: limiter, Limits: limits, Counters: tel.Security(), Logger: logger,
		Timeout: s.UpstreamTimeout, Services: server.PublicServices(), RevocationsSynced: synced, StaffMFA: s.StaffMFA,
	})
	if err != nil {
		return err
	}
	h, err := server.NewHandler(ctx, server.Config{
		Policy: pol, Upstreams: up, Limiter: limiter, PublicLimit: limits.Public,
		FailedAuthLimit: edge.FailedAuthLimit(s.RateFailedAuth),
		Readiness:       server.Readiness{Local: synced},
		Edge: edge.Config{TrustedProxies: s.TrustedProxies, CORS: edge.CORS{Origins: s.CORSOrigins},
			AccessLog: logger.With("log", "access"),
			Admission: edge.Admission{MaxInFlight: s.MaxInFlight, Wait: s.AdmissionWait}},
		Counters: tel.Security(), Logger: logger, OpenAPI: openapi.Document(),
		TracerProvider: tel.TracerProvider(), MeterProvider: tel.MeterProvider(),
	})
	if err != nil {
		return err
	}
	return listenAndServe(ctx, s, h, public, logger)
}
