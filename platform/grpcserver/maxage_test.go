package grpcserver_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/grpcclient"
	"github.com/bastion-bank/bastion/platform/grpcserver"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/pki"
)

// connEvents counts the connections a stats handler sees begin and end.
type connEvents struct{ begun, ended atomic.Int32 }

func (c *connEvents) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (c *connEvents) HandleRPC(context.Context, stats.RPCStats)                         {}
func (c *connEvents) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (c *connEvents) HandleConn(_ context.Context, s stats.ConnStats) {
	switch s.(type) {
	case *stats.ConnBegin:
		c.begun.Add(1)
	case *stats.ConnEnd:
		c.ended.Add(1)
	}
}

// maxAge gives a server a short connection age and grace.
func maxAge(age, grace time.Duration, events *connEvents) grpctest.ServerOption {
	return func(c *grpcserver.Config) {
		c.MaxConnectionAge, c.MaxConnectionAgeGrace = age, grace
		if events != nil {
			c.StatsHandler = events
		}
	}
}

// ledgerClient dials the transactions server at addr as accounts, counting
// the client's connections in events.
func ledgerClient(t *testing.T, env *grpctest.Env, addr string, events *connEvents) transactionsv1.LedgerServiceClient {
	t.Helper()
	var opts grpcclient.Options
	if events != nil {
		opts.StatsHandler = events
	}
	conn, err := grpcclient.Dial(addr, env.Source(t, "accounts").ClientCredentials("transactions"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return transactionsv1.NewLedgerServiceClient(conn)
}

// balanceServedBy calls the server and returns the serial of the certificate
// it presented on the connection the call used.
func balanceServedBy(t *testing.T, c transactionsv1.LedgerServiceClient) *big.Int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p peer.Peer
	if _, err := c.GetBalances(ctx, &transactionsv1.GetBalancesRequest{AccountIds: []string{aliceAcct}}, grpc.Peer(&p)); err != nil {
		t.Fatalf("GetBalances = %v; a recycled connection must not fail a call", err)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		t.Fatalf("the call has no TLS peer (%T)", p.AuthInfo)
	}
	return info.State.PeerCertificates[0].SerialNumber
}

func serialOnDisk(t *testing.T, dir, name string) *big.Int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, name+".pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(raw)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}

// TestAgedConnectionsPickUpARotation: the server's certificate is rotated
// while a client holds a connection. With a maximum connection age the
// server sends GOAWAY, the client reconnects on its own, every call
// succeeds, and the new handshake presents the rotated certificate.
func TestAgedConnectionsPickUpARotation(t *testing.T) {
	env := grpctest.New(t)
	server, client := &connEvents{}, &connEvents{}
	addr := env.Serve(t, "transactions", func(s *grpc.Server) {
		transactionsv1.RegisterLedgerServiceServer(s, ledger{})
	}, maxAge(300*time.Millisecond, 300*time.Millisecond, server))
	c := ledgerClient(t, env, addr, client)
	old := balanceServedBy(t, c)
	if err := pki.Issue(env.PKIDir, "transactions", pki.Options{TrustDomain: grpctest.TrustDomain}); err != nil {
		t.Fatal(err)
	}
	rotated := serialOnDisk(t, env.PKIDir, "transactions")
	deadline := time.Now().Add(10 * time.Second)
	for serial := old; serial.Cmp(rotated) != 0; serial = balanceServedBy(t, c) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s the connection still presents %x, not the rotated %x", serial, rotated)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A while longer: reconnecting again and again costs no call.
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		balanceServedBy(t, c)
	}
	if n := server.begun.Load(); n < 3 {
		t.Errorf("the server saw %d connections in over a second with a 300 ms maximum age, want at least 3", n)
	}
	if n := client.ended.Load(); n < 2 {
		t.Errorf("the client saw %d of its connections end, want at least 2 (GOAWAY after the maximum age)", n)
	}
}

// TestWithoutAnAgeTheOldHandshakeStays is the failure the maximum age
// prevents: with the default (30 minutes) a connection opened before a
// rotation keeps presenting the old certificate.
func TestWithoutAnAgeTheOldHandshakeStays(t *testing.T) {
	env := grpctest.New(t)
	server := &connEvents{}
	addr := env.Serve(t, "transactions", func(s *grpc.Server) {
		transactionsv1.RegisterLedgerServiceServer(s, ledger{})
	}, maxAge(0, 0, server))
	c := ledgerClient(t, env, addr, nil)
	old := balanceServedBy(t, c)
	if err := pki.Issue(env.PKIDir, "transactions", pki.Options{TrustDomain: grpctest.TrustDomain}); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if serial := balanceServedBy(t, c); serial.Cmp(old) != 0 {
			t.Fatalf("the connection changed certificate (%x → %x) with the default age", old, serial)
		}
	}
	if n := server.begun.Load(); n != 1 {
		t.Errorf("the server saw %d connections, want the one", n)
	}
	if grpcserver.DefaultMaxConnectionAge != 30*time.Minute || grpcserver.DefaultMaxConnectionAgeGrace < grpcclient.DefaultTimeout {
		t.Errorf("defaults %v + %v grace: want 30 min, with a grace longer than a call's default deadline (%v)",
			grpcserver.DefaultMaxConnectionAge, grpcserver.DefaultMaxConnectionAgeGrace, grpcclient.DefaultTimeout)
	}
}

// endlessFeed sends its snapshot and then holds the stream open, as auth's
// revocation feed does.
type endlessFeed struct {
	authv1.UnimplementedRevocationServiceServer
}

func (endlessFeed) WatchRevocations(_ *authv1.WatchRevocationsRequest, s grpc.ServerStreamingServer[authv1.WatchRevocationsResponse]) error {
	if err := s.Send(&authv1.WatchRevocationsResponse{Snapshot: true}); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

// TestAgedStreamEndsAfterTheGrace: a stream does not pin an old connection
// for ever. It may run on through the grace period, then ends with
// Unavailable, and the client reopens it on a new connection.
func TestAgedStreamEndsAfterTheGrace(t *testing.T) {
	env := grpctest.New(t)
	const age, grace = 300 * time.Millisecond, 400 * time.Millisecond
	addr := env.Serve(t, "auth", func(s *grpc.Server) {
		authv1.RegisterRevocationServiceServer(s, endlessFeed{})
	}, maxAge(age, grace, nil))
	feed := authv1.NewRevocationServiceClient(env.Dial(t, "gateway", addr, "auth"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 2 {
		start := time.Now()
		stream, err := feed.WatchRevocations(ctx, &authv1.WatchRevocationsRequest{})
		if err != nil {
			t.Fatalf("stream %d: WatchRevocations = %v", i, err)
		}
		if msg, err := stream.Recv(); err != nil || !msg.GetSnapshot() {
			t.Fatalf("stream %d: first message = %v, %v; want the snapshot", i, msg, err)
		}
		_, err = stream.Recv()
		lived := time.Since(start)
		if status.Code(err) != codes.Unavailable {
			t.Errorf("stream %d ended with %v, want Unavailable so the follower reconnects", i, err)
		}
		if lived < age*9/10+grace-100*time.Millisecond {
			t.Errorf("stream %d ended after %v, before the %v age and %v grace had passed", i, lived, age, grace)
		}
	}
}
