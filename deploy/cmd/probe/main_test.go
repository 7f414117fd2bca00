package main

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
)

func TestProbe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	env := grpctest.New(t)
	addr := env.Serve(t, "auth", func(*grpc.Server) {})
	// A service still waiting for auth's revocation feed: alive, not ready.
	waiting := env.Serve(t, "accounts", func(*grpc.Server) {}, func(c *grpcserver.Config) {
		c.RevocationsSynced = func() bool { return false }
	})

	healthy := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	defer healthy.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: healthy.Certificate().Raw}), 0o644)

	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"grpc health as a platform peer", []string{"grpc", addr, env.PKIDir, "auth", "auth"}, true},
		{"grpc liveness", []string{"grpc", addr, env.PKIDir, "auth", "auth", "liveness"}, true},
		{"grpc unknown health service", []string{"grpc", addr, env.PKIDir, "auth", "auth", "nonsense"}, false},
		{"grpc readiness while waiting for auth", []string{"grpc", waiting, env.PKIDir, "accounts", "accounts"}, false},
		{"grpc liveness while waiting for auth", []string{"grpc", waiting, env.PKIDir, "accounts", "accounts", "liveness"}, true},
		{"grpc expecting another identity", []string{"grpc", addr, env.PKIDir, "auth", "accounts"}, false},
		{"grpc without the peer's files", []string{"grpc", addr, t.TempDir(), "auth", "auth"}, false},
		{"https healthy", []string{"https", healthy.URL + "/healthz", ca}, true},
		{"https not 200", []string{"https", healthy.URL + "/nope", ca}, false},
		{"https untrusted CA", []string{"https", healthy.URL + "/healthz", filepath.Join(env.PKIDir, "ca.pem")}, false},
		{"file present", []string{"file", ca}, true},
		{"file missing", []string{"file", ca + ".missing"}, false},
		{"usage", []string{"nonsense"}, false},
	}
	other := func(k string) string {
		if k == "BANK_TRUST_DOMAIN" {
			return "other.example"
		}
		return ""
	}
	if err := run(ctx, []string{"probe", "grpc", addr, env.PKIDir, "auth", "auth"}, other); err == nil {
		t.Error("probe with another trust domain accepted the platform's certificates")
	}
	for _, tt := range tests {
		err := run(ctx, append([]string{"probe"}, tt.args...), func(string) string { return "" })
		if (err == nil) != tt.ok {
			t.Errorf("probe %s = %v, want healthy=%v", tt.name, err, tt.ok)
		}
	}
}
