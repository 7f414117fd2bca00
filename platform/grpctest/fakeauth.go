package grpctest

import (
	"context"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bastion-bank/bastion/platform/token"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
)

// FakeAuth is the auth service as the other processes use it: the JWKS of
// an Env's signing keys, and the revocation feed, which sends a snapshot of
// the revoked token ids and then each revocation pushed with Revoke. It can
// be down, refusing the feed with UNAVAILABLE as an unreachable auth
// would, so tests can see a process fail closed until the feed is in.
type FakeAuth struct {
	authv1.UnimplementedAuthServiceServer
	authv1.UnimplementedRevocationServiceServer
	keys    *token.KeyStore
	revoked []string
	down    atomic.Bool
	pushes  chan *authv1.Revocation
}

// NewFakeAuth returns a FakeAuth, up, serving e's public keys, whose feed's
// snapshot lists the token ids revoked (each expiring an hour after the
// snapshot is sent).
func NewFakeAuth(e *Env, revoked ...string) *FakeAuth {
	return &FakeAuth{keys: e.Keys, revoked: revoked, pushes: make(chan *authv1.Revocation, 16)}
}

// RegisterOn adds the auth and revocation services to s; pass it to Env.Serve
// with the identity "auth".
func (a *FakeAuth) RegisterOn(s *grpc.Server) {
	authv1.RegisterAuthServiceServer(s, a)
	authv1.RegisterRevocationServiceServer(s, a)
}

// Down makes the feed refuse new streams with UNAVAILABLE until Up; the
// JWKS stays available. Streams already open are not cut.
func (a *FakeAuth) Down() { a.down.Store(true) }

// Up lets new streams of the feed in again.
func (a *FakeAuth) Up() { a.down.Store(false) }

// Revoke sends the revocation of tokenID on the feed: on the stream open now,
// or else on the next one after its snapshot. Up to 16 may wait for a stream.
func (a *FakeAuth) Revoke(tokenID string, expiresAt time.Time) {
	a.pushes <- &authv1.Revocation{TokenId: tokenID, ExpiresAt: timestamppb.New(expiresAt)}
}

// GetJWKS returns the Env's public signing keys.
func (a *FakeAuth) GetJWKS(context.Context, *authv1.GetJWKSRequest) (*authv1.GetJWKSResponse, error) {
	resp := &authv1.GetJWKSResponse{}
	for _, k := range a.keys.PublicKeys() {
		resp.Keys = append(resp.Keys, &authv1.JWK{Kty: k.Kty, Crv: k.Crv, X: k.X, Kid: k.Kid, Alg: k.Alg, Use: k.Use})
	}
	return resp, nil
}

// WatchRevocations refuses the stream while the fake is down; otherwise it
// sends the snapshot, then each pushed revocation until the caller leaves.
func (a *FakeAuth) WatchRevocations(_ *authv1.WatchRevocationsRequest, stream grpc.ServerStreamingServer[authv1.WatchRevocationsResponse]) error {
	if a.down.Load() {
		return status.Error(codes.Unavailable, "auth is down")
	}
	snap := &authv1.WatchRevocationsResponse{Snapshot: true}
	for _, id := range a.revoked {
		snap.Revocations = append(snap.Revocations, &authv1.Revocation{TokenId: id, ExpiresAt: timestamppb.New(time.Now().Add(time.Hour))})
	}
	if err := stream.Send(snap); err != nil {
		return err
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case r := <-a.pushes:
			if err := stream.Send(&authv1.WatchRevocationsResponse{Revocations: []*authv1.Revocation{r}}); err != nil {
				return err
			}
		}
	}
}
