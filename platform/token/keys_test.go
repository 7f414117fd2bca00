package token_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/token"
)

// TestRotation walks a key through its life: published before it signs,
// then signing, then retired once no token it signed can still be live. A
// token signed by the old key verifies while the key is published and is
// refused once the key is dropped.
func TestRotation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.ks.SetPublishDelay(45 * time.Second)
	oldKid, oldPriv := f.ks.Active()
	old, _ := f.sign(t, "user")
	if _, err := f.verifier.Verify(context.Background(), old); err != nil {
		t.Fatalf("Verify(old-key token) = %v", err) // the verifier now caches only the old key
	}
	newKid, err := f.ks.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := f.ks.Active(); kid != oldKid {
		t.Fatalf("Active() right after Rotate = %s, want the old %s until the publish delay passes", kid, oldKid)
	}
	f.clock.Advance(46 * time.Second)
	if kid, _ := f.ks.Active(); kid != newKid {
		t.Fatalf("Active() after the publish delay = %s, want %s", kid, newKid)
	}
	fresh, _ := f.sign(t, "user")
	for name, raw := range map[string]string{"new-key token": fresh, "old-key token": old} {
		if _, err := f.verifier.Verify(context.Background(), raw); err != nil {
			t.Errorf("Verify(%s) after rotation = %v, want accepted", name, err)
		}
	}
	retention := token.DefaultTTL + time.Minute
	if got := f.ks.Prune(retention); len(got) != 0 {
		t.Errorf("Prune right after rotation retired %v, want nothing", got)
	}
	f.clock.Advance(retention - time.Second)
	if got := f.ks.Prune(retention); len(got) != 0 {
		t.Errorf("Prune a second before retention retired %v", got)
	}
	f.clock.Advance(2 * time.Second)
	if got := f.ks.Prune(retention); !slices.Equal(got, []string{oldKid}) {
		t.Fatalf("Prune after retention = %v, want [%s]", got, oldKid)
	}
	for _, j := range f.ks.PublicKeys() {
		if j.Kid == oldKid {
			t.Errorf("PublicKeys() after Prune still lists %s", oldKid)
		}
	}
	// A live-looking token under the dropped key (its private key leaked, say)
	// is refused once the verifier's cache has refreshed.
	stale := forge(f.header(func(h map[string]any) { h["kid"] = oldKid }), f.claims(nil), oldPriv, nil)
	f.clock.Advance(5 * time.Minute)
	_, err = f.verifier.Verify(context.Background(), stale)
	wantRefused(t, "Verify(token under a dropped key)", err, token.ReasonUnknownKid)
	if _, err := f.verifier.Verify(context.Background(), forge(f.header(nil), f.claims(nil), mustActive(f), nil)); err != nil {
		t.Errorf("Verify(token under the new key) = %v", err)
	}
}

func mustActive(f *fixture) ed25519.PrivateKey {
	_, priv := f.ks.Active()
	return priv
}

func TestRetire(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ks, err := token.OpenKeyStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := ks.Active()
	second, err := ks.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{second, "missing", "../" + first} {
		if err := ks.Retire(kid); err == nil {
			t.Errorf("Retire(%q) = nil, want an error (signing, unknown or not a kid)", kid)
		}
	}
	if err := ks.Retire(first); err != nil {
		t.Fatalf("Retire(%s) = %v", first, err)
	}
	if _, err := os.Stat(filepath.Join(dir, first+".key")); !os.IsNotExist(err) {
		t.Errorf("Retire left %s.key on disk (stat: %v)", first, err)
	}
	if got := ks.PublicKeys(); len(got) != 1 || got[0].Kid != second {
		t.Errorf("PublicKeys() after Retire = %v, want only %s", got, second)
	}
}

// TestRetireKeyFile: retiring a key whose file is already gone (removed by
// hand, or by another replica sharing the directory) succeeds, but a file
// that cannot be removed is an error: a retired key left on disk would be
// loaded again, and sign, at the next start.
func TestRetireKeyFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(path string) error
		wantErr bool
	}{
		{"file in place", func(string) error { return nil }, false},
		{"file already deleted", os.Remove, false},
		{"file cannot be removed", func(path string) error {
			// A non-empty directory in the file's place: os.Remove fails
			// with something other than "does not exist", even as root.
			if err := os.Remove(path); err != nil {
				return err
			}
			return os.MkdirAll(filepath.Join(path, "pinned"), 0o700)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ks, err := token.OpenKeyStore(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			old, _ := ks.Active()
			if _, err := ks.Rotate(); err != nil {
				t.Fatal(err)
			}
			if err := tt.prepare(filepath.Join(dir, old+".key")); err != nil {
				t.Fatal(err)
			}
			if err := ks.Retire(old); (err != nil) != tt.wantErr {
				t.Errorf("Retire(%s) with the %s = %v, want error %v", old, tt.name, err, tt.wantErr)
			}
		})
	}
}

// TestKeyStorePersistsPrivately: keys survive a restart, the files are 0600,
// and the JWKS carries the public half and nothing else.
func TestKeyStorePersistsPrivately(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "keys")
	a, err := token.OpenKeyStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := a.Active()
	time.Sleep(10 * time.Millisecond) // distinct file times, as two real rotations have
	second, err := a.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("key directory mode = %v, %v; want 0700", info.Mode().Perm(), err)
	}
	for _, kid := range []string{first, second} {
		info, err := os.Stat(filepath.Join(dir, kid+".key"))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s.key mode = %v, %v; want 0600", kid, info.Mode().Perm(), err)
		}
	}
	b, err := token.OpenKeyStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	kid, priv := b.Active()
	if _, want := a.Active(); kid != second || !priv.Equal(want) {
		t.Errorf("reopened store signs with %s, want %s with the same key", kid, second)
	}
	if got, want := kidsOf(b.PublicKeys()), kidsOf(a.PublicKeys()); !slices.Equal(got, want) {
		t.Errorf("reopened JWKS = %v, want %v", got, want)
	}
	checkPublicOnly(t, b)
}

// checkPublicOnly fails t if the JWKS holds anything but public keys.
func checkPublicOnly(t *testing.T, ks *token.KeyStore) {
	t.Helper()
	_, priv := ks.Active()
	raw, _ := json.Marshal(ks.PublicKeys())
	for _, secret := range [][]byte{priv, priv.Seed()} {
		for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.StdEncoding, base64.URLEncoding} {
			if strings.Contains(string(raw), enc.EncodeToString(secret)[:20]) {
				t.Fatalf("JWKS %s contains private key material", raw)
			}
		}
	}
	var generic []map[string]any
	_ = json.Unmarshal(raw, &generic)
	for i, j := range ks.PublicKeys() {
		x, err := base64.RawURLEncoding.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize || j.Kty != "OKP" || j.Crv != "Ed25519" || j.Alg != "EdDSA" || j.Use != "sig" || len(generic[i]) != 6 {
			t.Errorf("JWKS entry %v is not exactly an Ed25519 public signing key", generic[i])
		}
	}
}

func kidsOf(jwks []token.JWK) []string {
	var kids []string
	for _, j := range jwks {
		kids = append(kids, j.Kid)
	}
	slices.Sort(kids)
	return kids
}

// TestOpenKeyStoreRefuses: a key the store cannot trust stops the start
// rather than being skipped or used.
func TestOpenKeyStoreRefuses(t *testing.T) {
	t.Parallel()
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkcs8 := func(k any) []byte {
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	tests := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"world-readable key", pkcs8(ed), 0o644},
		{"group-readable key", pkcs8(ed), 0o640},
		{"not PEM", []byte("not pem"), 0o600},
		{"bad PKCS#8", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600},
		{"an ECDSA key", pkcs8(ec), 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "k1.key")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			if _, err := token.OpenKeyStore(dir, nil); err == nil {
				t.Errorf("OpenKeyStore(%s) = nil error, want refused", tt.name)
			}
		})
	}
}

// TestOpenKeyStoreIgnoresOtherFiles: a half-written temporary file from a
// crashed rotation, or anything that is not <kid>.key, is not a key.
func TestOpenKeyStoreIgnoresOtherFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, data := range map[string]string{".tmp-abc-123": "-----BEGIN PRI", "README": "keys", "bad kid!.key": "x"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ks, err := token.OpenKeyStore(dir, nil)
	if err != nil {
		t.Fatalf("OpenKeyStore(dir with stray files) = %v", err)
	}
	if n := len(ks.PublicKeys()); n != 1 {
		t.Errorf("OpenKeyStore made %d keys, want the one it created", n)
	}
}

// TestOpenKeyStoreTieBreak: keys with the same file time (a restore that
// reset them) load in one order every time, so replicas agree on the signer.
// The kids are chosen so that kid order and file-name order differ ("ab" <
// "ab-" but "ab-.key" < "ab.key").
func TestOpenKeyStoreTieBreak(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	same := time.Unix(1_700_000_000, 0)
	for _, kid := range []string{"ab", "ab-", "a"} {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		der, _ := x509.MarshalPKCS8PrivateKey(priv)
		path := filepath.Join(dir, kid+".key")
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, same, same); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		ks, err := token.OpenKeyStore(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if kid, _ := ks.Active(); kid != "ab-" {
			t.Fatalf("Active() with tied file times = %s, want the greatest kid ab-", kid)
		}
	}
}

func TestKeyStoreFromKeys(t *testing.T) {
	t.Parallel()
	_, a, _ := ed25519.GenerateKey(rand.Reader)
	_, b, _ := ed25519.GenerateKey(rand.Reader)
	ks, err := token.NewKeyStoreFromKeys(map[string]ed25519.PrivateKey{"k1": a, "k2": b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kid, priv := ks.Active(); kid != "k2" || !priv.Equal(b) || len(ks.PublicKeys()) != 2 || ks.ActiveSince().IsZero() {
		t.Errorf("Active() = %s with %d keys, want k2 of 2", kid, len(ks.PublicKeys()))
	}
	checkPublicOnly(t, ks)
	// On a clock that does not move between two readings (a test clock, a
	// coarse system clock) the keys must already count as published: the
	// greatest kid signs at once, not the oldest for want of a key old
	// enough.
	stopped := func() time.Time { return time.Unix(1_900_000_000, 0) }
	ks, err = token.NewKeyStoreFromKeys(map[string]ed25519.PrivateKey{"k1": a, "k2": b, "k3": b}, stopped)
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := ks.Active(); kid != "k3" {
		t.Errorf("Active() on a stopped clock = %s, want k3", kid)
	}
	tests := map[string]map[string]ed25519.PrivateKey{
		"no keys":   {},
		"bad kid":   {"../evil": a},
		"empty kid": {"": a},
		"short key": {"k": a[:10]},
	}
	for name, keys := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := token.NewKeyStoreFromKeys(keys, nil); err == nil {
				t.Errorf("NewKeyStoreFromKeys(%s) = nil error, want refused", name)
			}
		})
	}
}

// TestPublishBeforeSigning: a rotated key is in the JWKS before it signs, so a
// verifier that fetched the keys a moment ago can check the first token it signs.
func TestPublishBeforeSigning(t *testing.T) {
	t.Parallel()
	c := newClock()
	ks, err := token.OpenKeyStore(t.TempDir(), c.Now)
	if err != nil {
		t.Fatal(err)
	}
	ks.SetPublishDelay(45 * time.Second)
	c.Advance(time.Hour)
	old, _ := ks.Active()
	fresh, err := ks.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := ks.Active(); kid != old || !slices.Contains(kidsOf(ks.PublicKeys()), fresh) {
		t.Fatalf("right after rotation: signing with %s (want the old %s), JWKS %v (want %s in it)", kid, old, kidsOf(ks.PublicKeys()), fresh)
	}
	if got := ks.Prune(time.Minute); len(got) != 0 {
		t.Errorf("Prune retired %v while the old key still signs", got)
	}
	if err := ks.Retire(old); err == nil {
		t.Error("Retire(the signing key) = nil, want an error")
	}
	c.Advance(46 * time.Second)
	if kid, _ := ks.Active(); kid != fresh || !ks.ActiveSince().Equal(c.Now().Add(-46*time.Second)) {
		t.Errorf("after the publish delay: signing with %s since %v, want %s", kid, ks.ActiveSince(), fresh)
	}
}
