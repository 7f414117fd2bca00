package grpctest

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// FreeAddr returns a loopback address nothing listens on right now, for a
// program under test to bind from its configuration. Another process could
// take the port in between; on loopback, within one test, that is rare
// enough not to design around.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// SyncBuffer is an io.Writer for a program's logs that the test may read
// while the program's goroutines still write: a bytes.Buffer behind a
// mutex. The zero value is ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitServing waits until the gRPC health service on conn reports the
// server as a whole SERVING, as WaitHealth does.
func WaitServing(t testing.TB, conn *grpc.ClientConn, done <-chan error) {
	t.Helper()
	WaitHealth(t, conn, done, "", healthpb.HealthCheckResponse_SERVING)
}

// WaitHealth polls the gRPC health service on conn for up to 30 s until svc
// reports want. It fails the test if done, the result of the program's run,
// delivers first: a program that exits during start-up must not be waited
// on for the whole timeout.
func WaitHealth(t testing.TB, conn *grpc.ClientConn, done <-chan error, svc string, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	health := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("run() returned before serving: %v", err)
		default:
		}
		resp, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err == nil && resp.GetStatus() == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("health %q never reported %v", svc, want)
}
