package grpctest_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bastion-bank/bastion/platform/grpctest"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
)

// TestFakeAuth: the fake behaves as the processes under test rely on: the
// Env's keys, a refused feed while down, then the snapshot and each push.
func TestFakeAuth(t *testing.T) {
	t.Parallel()
	env := grpctest.New(t)
	auth := grpctest.NewFakeAuth(env, "revoked-before")
	auth.Down()
	conn := env.Dial(t, "gateway", env.Serve(t, "auth", auth.RegisterOn), "auth")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	jwks, err := authv1.NewAuthServiceClient(conn).GetJWKS(ctx, &authv1.GetJWKSRequest{})
	if want := env.Keys.PublicKeys(); err != nil || len(jwks.GetKeys()) != len(want) || jwks.GetKeys()[0].GetKid() != want[0].Kid {
		t.Errorf("GetJWKS while the feed is down = %v, %v; want the Env's %d keys", jwks, err, len(want))
	}
	feed := authv1.NewRevocationServiceClient(conn)
	stream, err := feed.WatchRevocations(ctx, &authv1.WatchRevocationsRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("WatchRevocations while down = %v, want Unavailable", err)
	}

	auth.Up()
	stream, err = feed.WatchRevocations(ctx, &authv1.WatchRevocationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := stream.Recv()
	if err != nil || !snap.GetSnapshot() || len(snap.GetRevocations()) != 1 || snap.GetRevocations()[0].GetTokenId() != "revoked-before" {
		t.Fatalf("first message once up = %v, %v; want a snapshot of revoked-before", snap, err)
	}
	exp := time.Now().Add(time.Minute).Truncate(time.Second)
	auth.Revoke("revoked-now", exp)
	msg, err := stream.Recv()
	if err != nil || msg.GetSnapshot() || len(msg.GetRevocations()) != 1 ||
		msg.GetRevocations()[0].GetTokenId() != "revoked-now" || !msg.GetRevocations()[0].GetExpiresAt().AsTime().Equal(exp) {
		t.Errorf("message after Revoke = %v, %v; want revoked-now expiring %v", msg, err, exp)
	}
}
