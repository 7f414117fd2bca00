package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	grpcstats "google.golang.org/grpc/stats"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
	"github.com/bastion-bank/bastion/proto/openapi"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/gateway/internal/policy"
	"github.com/bastion-bank/bastion/gateway/internal/server"
	"github.com/bastion-bank/bastion/platform/grpcclient"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/ratelimit"
	"github.com/bastion-bank/bastion/platform/refusal"
	"github.com/bastion-bank/bastion/platform/telemetry"
)

// options adjusts one harness.
type options struct {
	limits          policy.Limits
	upstreamTimeout time.Duration
	timeouts        server.Timeouts
	accountsAddr    string // overrides the stub (a dead or silent address)
	edge            edge.Config
	meter           metric.MeterProvider
	// tracer, when set, traces the gateway and its upstream calls, and
	// counters (platform/telemetry's) record the edge's refusals on its spans.
	tracer   *sdktrace.TracerProvider
	counters *telemetry.Security
	// now is the rate limiter's clock (time.Now unless a test stops it, so
	// that no budget refills while a slow machine runs the test).
	now func() time.Time
}

// harness is a gateway serving HTTPS on loopback in front of stub services
// that run the real platform server chain over real mTLS.
type harness struct {
	env     *grpctest.Env
	rec     *recorder
	handler http.Handler // the whole handler, for benchmarks that call it in process
	addr    string
	base    string
	h2      *http.Client // negotiates HTTP/2
	h1      *http.Client // HTTP/1.1 only
	caPool  *x509.CertPool
}

// edgeCounters returns the counters to give the policy and the handler:
// none (their own defaults) unless the options set some.
func (o options) edgeCounters() refusal.Counters {
	if o.counters == nil {
		return nil
	}
	return o.counters
}

func defaultOptions() options {
	return options{
		limits:          policy.NewLimits(1000, 1000, 1000, 1000),
		upstreamTimeout: 2 * time.Second,
		timeouts:        server.DefaultTimeouts(2 * time.Second),
	}
}

func newHarness(t testing.TB, adjust ...func(*options)) *harness {
	t.Helper()
	o := defaultOptions()
	for _, f := range adjust {
		f(&o)
	}
	env := grpctest.New(t)
	rec := &recorder{}
	stats := func(c *grpcserver.Config) { c.StatsHandler = rec }
	authAddr := env.Serve(t, "auth", func(s *grpc.Server) { authv1.RegisterAuthServiceServer(s, &authStub{rec: rec}) }, stats)
	accountsAddr := o.accountsAddr
	if accountsAddr == "" {
		accountsAddr = env.Serve(t, "accounts", func(s *grpc.Server) {
			accountsv1.RegisterAccountsServiceServer(s, &accountsStub{rec: rec})
		}, stats, grpctest.WithOwners(owners))
	}
	txAddr := env.Serve(t, "transactions", func(s *grpc.Server) {
		transactionsv1.RegisterTransactionsServiceServer(s, &transactionsStub{rec: rec})
	}, stats, grpctest.WithOwners(owners))

	src := env.Source(t, "gateway")
	var clientStats grpcstats.Handler
	if o.tracer != nil {
		// As platform/telemetry's GRPCClientHandler sends it.
		clientStats = otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(o.tracer),
			otelgrpc.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))
	}
	dial := func(addr, name string) *grpc.ClientConn {
		conn, err := grpcclient.Dial(addr, src.ClientCredentials(name), grpcclient.Options{Timeout: o.upstreamTimeout, StatsHandler: clientStats})
		if err != nil {
			t.Fatalf("Dial(%s): %v", name, err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	up := server.Upstreams{
		"auth":         dial(authAddr, "auth"),
		"accounts":     dial(accountsAddr, "accounts"),
		"transactions": dial(txAddr, "transactions"),
	}
	// A service of the table with no stub here gets a server that serves
	// none of its methods (each answers UNIMPLEMENTED), under another
	// service's certificate: adding a service to server.Services needs no
	// edit of this harness.
	for _, svc := range server.Services() {
		if up[svc.Name] == nil {
			up[svc.Name] = dial(env.Serve(t, "accounts", func(*grpc.Server) {}, stats), "accounts")
		}
	}
	now := o.now
	if now == nil {
		now = time.Now
	}
	limiter := ratelimit.NewMemory(now, 0)
	pol, err := policy.New(policy.Config{
		Verifier: env.Verifier,
		Limiter:  limiter,
		Limits:   o.limits,
		Timeout:  o.upstreamTimeout,
		Services: server.PublicServices(),
		Counters: o.edgeCounters(),
	})
	if err != nil {
		t.Fatalf("policy.New: %v", err)
	}
	logger := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := server.Config{
		Policy: pol, Upstreams: up, Limiter: limiter, PublicLimit: o.limits.Public,
		Edge: o.edge, Logger: logger, MeterProvider: o.meter, Counters: o.edgeCounters(),
		OpenAPI: openapi.Document(),
	}
	if o.tracer != nil {
		cfg.TracerProvider = o.tracer
	}
	h, err := server.NewHandler(ctx, cfg)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	srv, err := server.NewHTTPServer(h, publicTLS(t, env), o.timeouts, logger)
	if err != nil {
		t.Fatalf("NewHTTPServer: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, srv, lis, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	hs := &harness{env: env, rec: rec, handler: h, addr: lis.Addr().String(), base: "https://" + lis.Addr().String(), caPool: caPool(t, env.PKIDir)}
	hs.h2 = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: hs.caPool}, ForceAttemptHTTP2: true,
	}}
	hs.h1 = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: hs.caPool, NextProtos: []string{"http/1.1"}},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
	t.Cleanup(hs.h2.CloseIdleConnections)
	t.Cleanup(hs.h1.CloseIdleConnections)
	return hs
}

func caPool(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA in ca.pem")
	}
	return pool
}

// request describes one HTTP call.
type request struct {
	method  string
	path    string
	body    string
	token   string
	headers map[string]string
}

// response is what came back.
type response struct {
	status int
	header http.Header
	body   []byte
	proto  int
}

func (h *harness) do(t *testing.T, c *http.Client, r request) response {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(t.Context(), r.method, h.base+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b, proto: resp.ProtoMajor}
}

// problem decodes a problem+json body strictly and checks its shape.
func (r response) problem(t *testing.T) edge.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != edge.ProblemContentType {
		t.Errorf("Content-Type = %q, want %q (body %s)", ct, edge.ProblemContentType, r.body)
	}
	var p edge.Problem
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decode problem %s: %v", r.body, err)
	}
	if p.Status != r.status || p.Type == "" || p.Title == "" || p.Detail == "" || p.Code == "" {
		t.Errorf("problem %+v: want status %d and type, title, detail, code set", p, r.status)
	}
	if p.RequestID == "" || p.RequestID != r.header.Get("X-Request-Id") {
		t.Errorf("problem requestId %q, X-Request-Id %q: want equal and set", p.RequestID, r.header.Get("X-Request-Id"))
	}
	return p
}

// publicTLS is the gateway's public TLS configuration from the test PKI
// (whose gateway certificate names 127.0.0.1 and localhost).
func publicTLS(t testing.TB, env *grpctest.Env) *tls.Config {
	t.Helper()
	return env.Source(t, "gateway").PublicServerConfig()
}
