package mtls_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/mtls"
)

// verified returns a connection state whose verified leaf carries uris.
func verified(t *testing.T, isCA bool, uris ...string) tls.ConnectionState {
	t.Helper()
	c := &x509.Certificate{IsCA: isCA}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		c.URIs = append(c.URIs, u)
	}
	return tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c}}}
}

func TestServiceFromState(t *testing.T) {
	t.Parallel()
	unverified := verified(t, false, "spiffe://bastion.local/gateway")
	unverified.VerifiedChains = nil
	tests := []struct {
		name string
		cs   tls.ConnectionState
		want string // "" = refused
	}{
		{"service of the trust domain", verified(t, false, "spiffe://bastion.local/gateway"), "gateway"},
		{"SPIFFE characters", verified(t, false, "spiffe://bastion.local/ledger_v2.eu-1"), "ledger_v2.eu-1"},
		{"one-character name", verified(t, false, "spiffe://bastion.local/a"), "a"},
		{"upper-case scheme is still spiffe", verified(t, false, "SPIFFE://bastion.local/gateway"), "gateway"},
		{"chain not verified", unverified, ""},
		{"no connection state", tls.ConnectionState{}, ""},
		{"no URI SAN", verified(t, false), ""},
		{"two SPIFFE IDs", verified(t, false, "spiffe://bastion.local/gateway", "spiffe://bastion.local/auth"), ""},
		{"SPIFFE ID and another URI", verified(t, false, "spiffe://bastion.local/gateway", "https://gateway.example"), ""},
		{"not spiffe", verified(t, false, "https://bastion.local/gateway"), ""},
		{"other trust domain", verified(t, false, "spiffe://evil.local/gateway"), ""},
		{"trust domain as a suffix", verified(t, false, "spiffe://bastion.local.evil/gateway"), ""},
		{"trust domain with a port", verified(t, false, "spiffe://bastion.local:443/gateway"), ""},
		{"user info", verified(t, false, "spiffe://gateway@bastion.local/auth"), ""},
		{"query", verified(t, false, "spiffe://bastion.local/gateway?admin=1"), ""},
		{"empty query", verified(t, false, "spiffe://bastion.local/gateway?"), ""},
		{"fragment", verified(t, false, "spiffe://bastion.local/gateway#admin"), ""},
		{"no path", verified(t, false, "spiffe://bastion.local"), ""},
		{"root path", verified(t, false, "spiffe://bastion.local/"), ""},
		{"nested path", verified(t, false, "spiffe://bastion.local/gateway/admin"), ""},
		{"escaped slash", verified(t, false, "spiffe://bastion.local/gateway%2Fadmin"), ""},
		{"escaped letter", verified(t, false, "spiffe://bastion.local/g%61teway"), ""},
		{"dot dot", verified(t, false, "spiffe://bastion.local/.."), ""},
		{"dot", verified(t, false, "spiffe://bastion.local/."), ""},
		{"opaque", verified(t, false, "spiffe:bastion.local/gateway"), ""},
		{"space", verified(t, false, "spiffe://bastion.local/gate%20way"), ""},
		{"CA certificate", verified(t, true, "spiffe://bastion.local/gateway"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := mtls.ServiceFromState(tt.cs, td)
			if tt.want == "" {
				if err == nil || got != "" || errs.KindOf(err) != errs.Unauthenticated {
					t.Errorf("ServiceFromState(%s) = %q, %v; want an Unauthenticated error", tt.name, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ServiceFromState(%s) = %q, %v; want %q", tt.name, got, err, tt.want)
			}
		})
	}
}

type plainAuth struct{}

func (plainAuth) AuthType() string { return "insecure" }

func TestServiceFromPeerRefusesWithoutVerifiedTLS(t *testing.T) {
	t.Parallel()
	unverified := verified(t, false, "spiffe://bastion.local/gateway")
	unverified.VerifiedChains = nil
	tests := []struct {
		name string
		ctx  context.Context
	}{
		{"no peer", context.Background()},
		{"no transport security", peer.NewContext(context.Background(), &peer.Peer{AuthInfo: plainAuth{}})},
		{"no auth info", peer.NewContext(context.Background(), &peer.Peer{})},
		{"TLS without a verified chain", peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{State: unverified}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, err := mtls.ServiceFromPeer(tt.ctx, td); err == nil {
				t.Errorf("ServiceFromPeer(%s) = %q, nil; want an error", tt.name, got)
			}
		})
	}
}

// TestServiceFromPeerOverGRPC runs a real gRPC server on ServerCredentials
// and calls it with ClientCredentials: the server learns the caller's name,
// and a client expecting another service never gets to send its request.
func TestServiceFromPeerOverGRPC(t *testing.T) {
	t.Parallel()
	dir := newPKI(t, "auth", "gateway", "accounts")
	seen := make(chan string, 4)
	srv := grpc.NewServer(grpc.Creds(source(t, dir, "auth").ServerCredentials()),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			name, err := mtls.ServiceFromPeer(ctx, td)
			if err != nil {
				name = "error: " + err.Error()
			}
			seen <- name
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	check := func(as, expects string) error {
		conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(source(t, dir, as).ClientCredentials(expects)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	for _, caller := range []string{"gateway", "accounts"} {
		if err := check(caller, "auth"); err != nil {
			t.Fatalf("Check as %s = %v", caller, err)
		}
		if got := <-seen; got != caller {
			t.Errorf("ServiceFromPeer = %q, want %q", got, caller)
		}
	}
	if err := check("gateway", "accounts"); status.Code(err) != codes.Unavailable {
		t.Errorf("Check expecting accounts at auth = %v, want Unavailable", err)
	}
	select {
	case got := <-seen:
		t.Errorf("a client that refused the server still reached the handler as %q", got)
	default:
	}
}
