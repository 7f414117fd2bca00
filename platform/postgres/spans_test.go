package postgres_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bastion-bank/bastion/platform/postgres"
)

// TestQuerySpansNameTheServer: a query's span carries the server, port, user
// and database it ran against, set once from the pool's configuration.
func TestQuerySpansNameTheServer(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	pool, err := postgres.Open(context.Background(), packageURL, postgres.PoolConfig{
		ApplicationName: "postgres_test", StartupWait: 5 * time.Second, TracerProvider: tp})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(pool.Close)
	ctx, parent := tp.Tracer("test").Start(context.Background(), "parent")
	var one int
	if err := pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("SELECT 1: %v", err)
	}
	parent.End()
	u, _ := url.Parse(packageURL)
	want := map[attribute.Key]string{
		"db.system.name": "postgresql",
		"server.address": u.Hostname(),
		"server.port":    u.Port(),
		"db.namespace":   u.Path[1:],
	}
	for _, s := range rec.Ended() {
		if s.Name() == "parent" {
			continue
		}
		got := map[attribute.Key]string{}
		for _, kv := range s.Attributes() {
			got[kv.Key] = kv.Value.String()
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("span %q: %s = %q, want %q", s.Name(), k, got[k], v)
			}
		}
		return
	}
	t.Fatalf("no query span recorded (spans: %d)", len(rec.Ended()))
}
