package tokens_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/token"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
	"github.com/bastion-bank/bastion/services/auth/internal/tokens"
)

var cfg = token.SignerConfig{Issuer: "iss", Audience: "aud"}

func TestOpenKeysCreatesAPrivateKeyFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "keys")
	k, err := tokens.OpenKeys(dir, cfg)
	if err != nil {
		t.Fatalf("OpenKeys = %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.key"))
	if len(files) != 1 {
		t.Fatalf("key files = %v, want one", files)
	}
	info, _ := os.Stat(files[0])
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %v, want 0600", perm)
	}
	if k.TTL() != token.DefaultTTL {
		t.Errorf("TTL() = %v, want %v", k.TTL(), token.DefaultTTL)
	}
}

func TestIssueAndVerify(t *testing.T) {
	t.Parallel()
	k, err := tokens.OpenKeys(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	revs := domain.NewRevocations(time.Now)
	v := k.Verifier(token.VerifierConfig{Issuer: "iss", Audience: "aud"}, revs)
	at, err := k.Issue("3f0e7a4c-1111-4222-8333-444455556666", []string{"user"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if at.ExpiresAt.Sub(at.IssuedAt) != token.DefaultTTL || at.ID == "" {
		t.Errorf("Issue() = %+v, want a jti and a 15 min lifetime", at)
	}
	u, err := v.Verify(context.Background(), at.Raw)
	if err != nil || u.TokenID != at.ID || !u.ExpiresAt.Equal(at.ExpiresAt) {
		t.Fatalf("Verify() = %+v, %v; want the issued token's id and expiry", u, err)
	}
	revs.Add([]domain.Revocation{{TokenID: at.ID, ExpiresAt: at.ExpiresAt}})
	if _, err := v.Verify(context.Background(), at.Raw); err == nil {
		t.Error("Verify(revoked) = nil error: the verifier does not follow the revocation set")
	}
}

func TestReloadPicksUpRotationAndKeepsKeysOnError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k, err := tokens.OpenKeys(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := tokens.Rotate(dir, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.PublicKeys()) != 1 {
		t.Fatal("rotation showed before a reload")
	}
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	keys := k.PublicKeys()
	if len(keys) != 2 || keys[0].Kid != kid {
		t.Fatalf("PublicKeys() = %v, want the new key %s first and the old one still published", keys, kid)
	}
	// A key file others can read is refused; the loaded keys stay in use.
	os.WriteFile(filepath.Join(dir, "loose.key"), []byte("x"), 0o644)
	if err := k.Reload(); err == nil {
		t.Error("Reload(with a world-readable key file) = nil, want an error")
	}
	if _, err := k.Issue("3f0e7a4c-1111-4222-8333-444455556666", []string{"user"}, nil); err != nil || len(k.PublicKeys()) != 2 {
		t.Errorf("after a failed reload: Issue = %v, keys = %d; want the old keys still working", err, len(k.PublicKeys()))
	}
	reports := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go k.Run(ctx, 10*time.Millisecond, func(err error) {
		select {
		case reports <- err:
		default:
		}
	})
	select {
	case <-reports:
	case <-time.After(5 * time.Second):
		t.Error("Run never reported the failing reload")
	}
	cancel()
}
