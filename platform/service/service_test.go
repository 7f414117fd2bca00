package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/service"
	"github.com/bastion-bank/bastion/platform/telemetry"
)

func TestCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{nil, "serve"},
		{[]string{"accounts"}, "serve"},
		{[]string{"accounts", "migrate"}, "migrate"},
		{[]string{"accounts", "migrat"}, "migrat"},
	}
	for _, tt := range tests {
		if got := service.Command(tt.args); got != tt.want {
			t.Errorf("Command(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

// A process started by Start serves over mTLS under its own name, with the
// defaults Serve fills in, and Serve returns nil once its context ends.
func TestStartAndServe(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	logs := &grpctest.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := service.Start(ctx, service.Config{Name: "accounts", PKIDir: env.PKIDir, TrustDomain: grpctest.TrustDomain,
		MetricsAddr: "127.0.0.1:0", LogOutput: logs, Summary: nil})
	if err != nil {
		t.Fatalf("Start = %v", err)
	}
	defer p.Close(ctx)
	if err := p.LoadCertificate(); err != nil {
		t.Fatalf("LoadCertificate = %v", err)
	}
	addr := grpctest.FreeAddr(t)
	registered := false
	done := make(chan error, 1)
	go func() {
		done <- p.Serve(ctx, addr, grpcserver.Config{}, func(*grpc.Server) { registered = true }, "extra", "attr")
	}()
	// The server's certificate must name accounts: Dial checks it.
	grpctest.WaitServing(t, env.Dial(t, "gateway", addr, "accounts"), done)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after its context was cancelled")
	}
	if !registered {
		t.Error("Serve did not call register")
	}
	if out := logs.String(); !strings.Contains(out, "accounts service listening") || !strings.Contains(out, `"extra":"attr"`) ||
		!strings.Contains(out, "accounts service stopped") {
		t.Errorf("logs lack the listening line with its attributes and the stopped line:\n%s", out)
	}
	if n := strings.Count(logs.String(), `"msg":"garbage collector: `); n != 1 {
		t.Errorf("logs have %d garbage collector lines, want 1:\n%s", n, logs)
	}
}

// A missing certificate is reported with the directory it was looked for in.
func TestLoadCertificateNamesTheDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p, err := service.Start(context.Background(), service.Config{Name: "accounts", PKIDir: dir, MetricsAddr: "127.0.0.1:0",
		LogOutput: &grpctest.SyncBuffer{}})
	if err != nil {
		t.Fatalf("Start = %v", err)
	}
	defer p.Close(context.Background())
	if err := p.LoadCertificate(); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("LoadCertificate(empty dir) = %v, want an error naming %s", err, dir)
	}
}

// Run dispatches the two commands and refuses any other with the usage;
// a settings error stops it before anything starts.
func TestRun(t *testing.T) {
	t.Parallel()
	errLoad := errors.New("BANK_X is not valid")
	migrated, served := 0, 0
	migrate := func() error { migrated++; return nil }
	load := func() (string, service.Config, error) { return "", service.Config{}, errLoad }
	serve := func(string, *service.Process) error { served++; return nil }
	ctx := context.Background()
	if err := service.Run(ctx, []string{"x", "migrate"}, "x", migrate, load, serve); err != nil || migrated != 1 {
		t.Errorf("Run(migrate) = %v, migrated %d times; want nil, once", err, migrated)
	}
	if err := service.Run(ctx, []string{"x", "migrat"}, "x", migrate, load, serve); err == nil ||
		!strings.Contains(err.Error(), `unknown command "migrat"`) || !strings.Contains(err.Error(), "usage: x [serve | migrate]") {
		t.Errorf("Run(migrat) = %v, want the unknown command and the usage", err)
	}
	if err := service.Run(ctx, []string{"x"}, "x", migrate, load, serve); !errors.Is(err, errLoad) || served != 0 {
		t.Errorf("Run(serve) with bad settings = %v, served %d times; want the settings error, not served", err, served)
	}
}

// With trace export off (no OTLP endpoint, the default), one trace id still
// follows a call from one process to the next: the caller's log line and
// the server's "rpc" line carry the same trace_id, though neither process
// records a span.
func TestTraceIDFollowsTheCallWithExportOff(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := func(name string, logs *grpctest.SyncBuffer) *service.Process {
		p, err := service.Start(ctx, service.Config{Name: name, PKIDir: env.PKIDir, TrustDomain: grpctest.TrustDomain,
			MetricsAddr: "127.0.0.1:0", LogOutput: logs})
		if err != nil {
			t.Fatalf("Start(%s) = %v", name, err)
		}
		t.Cleanup(func() { p.Close(context.Background()) })
		if err := p.LoadCertificate(); err != nil {
			t.Fatalf("LoadCertificate(%s) = %v", name, err)
		}
		return p
	}
	serverLogs, clientLogs := &grpctest.SyncBuffer{}, &grpctest.SyncBuffer{}
	server, client := start("accounts", serverLogs), start("transactions", clientLogs)
	addr := grpctest.FreeAddr(t)
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, addr, grpcserver.Config{}, func(*grpc.Server) {}) }()
	conn, err := client.Dial(addr, "accounts")
	if err != nil {
		t.Fatalf("Dial = %v", err)
	}
	defer conn.Close()
	grpctest.WaitServing(t, conn, done)

	callCtx, span := client.Tel.TracerProvider().Tracer("test").Start(ctx, "transfer")
	recording := span.IsRecording()
	client.Logger.InfoContext(callCtx, "calling accounts")
	if _, err := healthpb.NewHealthClient(conn).Check(callCtx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check = %v", err)
	}
	span.End()
	traceID := span.SpanContext().TraceID().String()
	if !span.SpanContext().IsValid() || recording {
		t.Fatalf("caller's span valid %v, recording %v; want valid and not recording", span.SpanContext().IsValid(), recording)
	}
	if got := logField(t, clientLogs, "calling accounts", telemetry.TraceIDKey); got != traceID {
		t.Errorf("caller's log trace_id = %q, want %s", got, traceID)
	}
	// The server writes its line before it answers.
	if got := logField(t, serverLogs, "rpc", telemetry.TraceIDKey); got != traceID {
		t.Errorf("server's rpc line trace_id = %q, want the caller's %s\n%s", got, traceID, serverLogs)
	}
}

// logField returns key of the last log line whose msg is msg.
func logField(t *testing.T, logs *grpctest.SyncBuffer, msg, key string) string {
	t.Helper()
	var got string
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			got, _ = rec[key].(string)
		}
	}
	return got
}
