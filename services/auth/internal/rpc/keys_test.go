package rpc_test

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/token"
	"github.com/bastion-bank/bastion/services/auth/internal/tokens"
)

func mustConn(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestJWKSHasOnlyPublicKeys(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{})
	for _, as := range []string{"gateway", "accounts", "transactions"} {
		resp, err := authv1.NewAuthServiceClient(s.dial(t, as)).GetJWKS(context.Background(), &authv1.GetJWKSRequest{})
		if err != nil {
			t.Fatalf("GetJWKS as %s = %v", as, err)
		}
		if len(resp.GetKeys()) == 0 {
			t.Fatalf("GetJWKS as %s returned no keys", as)
		}
		for _, k := range resp.GetKeys() {
			x, err := base64.RawURLEncoding.DecodeString(k.GetX())
			if k.GetKty() != "OKP" || k.GetCrv() != "Ed25519" || k.GetAlg() != "EdDSA" || k.GetUse() != "sig" || err != nil || len(x) != 32 {
				t.Errorf("key %v: want an Ed25519 public key (32 bytes of x) and nothing else", k)
			}
		}
		// The JSON a client sees has no private member ("d") at all.
		js, _ := protojson.Marshal(resp)
		var m map[string][]map[string]any
		if err := jsonUnmarshal(js, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range m["keys"] {
			if _, ok := k["d"]; ok {
				t.Errorf("JWKS key %v carries a private member d", k)
			}
		}
	}
	_, err := authv1.NewAuthServiceClient(s.dial(t, "intruder")).GetJWKS(context.Background(), &authv1.GetJWKSRequest{})
	wantCode(t, "GetJWKS(as a service no rule names)", err, codes.PermissionDenied)
}

// TestRotatedOutKeyIsRefused: a token signed by an old key keeps working
// while the key is published, and is refused once the key is retired.
func TestRotatedOutKeyIsRefused(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{fakeKey: true})
	f := s.follower(t, "gateway")
	_, _, old := s.user(t)

	newKid, err := tokens.Rotate(s.keysDir, s.keyClock.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.keys.Reload(); err != nil {
		t.Fatal(err)
	}
	// The new key is published first and signs only after the publish delay.
	_, _, early := s.user(t)
	if kid := kidOf(t, early.GetAccessToken()); kid == newKid {
		t.Fatalf("the new key %q signed before it had been published for the delay", newKid)
	}
	s.keyClock.Advance(time.Minute)
	if err := s.keys.Reload(); err != nil {
		t.Fatal(err)
	}
	_, _, fresh := s.user(t)
	if kid := kidOf(t, fresh.GetAccessToken()); kid != newKid {
		t.Fatalf("after rotation and the publish delay tokens carry kid %q, want the new %q", kid, newKid)
	}
	if err := f.keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verifier.Verify(context.Background(), old.GetAccessToken()); err != nil {
		t.Fatalf("a token of the previous key was refused while that key is still published: %v", err)
	}

	// Once a token lifetime (and leeway) has passed, the old key is retired.
	s.keyClock.Advance(token.DefaultTTL + 2*time.Minute)
	if err := s.keys.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.keys.PublicKeys()); n != 1 {
		t.Fatalf("JWKS has %d keys after retirement, want 1", n)
	}
	if err := f.keys.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err = f.verifier.Verify(context.Background(), old.GetAccessToken())
	if e, ok := errs.As(err); !ok || e.Reason != token.ReasonUnknownKid {
		t.Errorf("Verify(token of a retired key) = %v, want refused for its unknown kid", err)
	}
	// The service's own verifier drops it too, within its key-set TTL.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.auth.GetMe(s.as(old.GetAccessToken()), &authv1.GetMeRequest{})
		if codeOf(err) == codes.Unauthenticated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GetMe(token of a retired key) = %v after 10 s, want Unauthenticated", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
