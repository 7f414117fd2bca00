// Package token signs and verifies Bastion's access tokens: JWTs (RFC 9068
// "at+jwt") signed with Ed25519 (EdDSA), 15 minutes long, carrying a kid that
// the JWKS publishes. Only the auth service signs; every other process
// verifies with public keys it fetched, re-checking revocations pushed to it.
package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// JWK is one public key of a JSON Web Key Set (RFC 7517, RFC 8037).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

var kidPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

type signingKey struct {
	kid     string
	priv    ed25519.PrivateKey
	created time.Time
}

// KeyStore holds the auth service's signing keys. The newest key signs; older
// keys stay published until Prune drops them, which callers do once every
// token an old key signed has expired.
type KeyStore struct {
	dir string // "" for an in-memory store
	now func() time.Time
	// publishDelay is how long a new key is published before it signs.
	publishDelay time.Duration

	mu   sync.RWMutex
	keys []signingKey // oldest first
}

// OpenKeyStore loads the keys in dir (files <kid>.key, PKCS#8 PEM, 0600),
// creating dir and a first key if there is none.
func OpenKeyStore(dir string, now func() time.Time) (*KeyStore, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("token: key directory: %w", err)
	}
	ks := &KeyStore{dir: dir, now: now}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("token: key directory: %w", err)
	}
	for _, e := range entries {
		kid, ok := strings.CutSuffix(e.Name(), ".key")
		if !ok || !kidPattern.MatchString(kid) {
			continue
		}
		k, err := readKey(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		ks.keys = append(ks.keys, signingKey{kid: kid, priv: k, created: info.ModTime()})
	}
	// Ties (a coarse filesystem clock, a restore that reset every mtime) are
	// broken by kid, so that every reload and every replica picks the same
	// signing key.
	slices.SortFunc(ks.keys, func(a, b signingKey) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.kid, b.kid)
	})
	if len(ks.keys) == 0 {
		if _, err := ks.Rotate(); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

// NewKeyStoreFromKeys returns an in-memory store of the given keys (for
// production keys loaded elsewhere, and for tests). The lexically greatest kid signs.
func NewKeyStoreFromKeys(keys map[string]ed25519.PrivateKey, now func() time.Time) (*KeyStore, error) {
	if now == nil {
		now = time.Now
	}
	if len(keys) == 0 {
		return nil, errors.New("token: no keys")
	}
	ks := &KeyStore{now: now}
	kids := slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	})
	for i, kid := range kids {
		if !kidPattern.MatchString(kid) || len(keys[kid]) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("token: bad key %q", kid)
		}
		ks.keys = append(ks.keys, signingKey{kid: kid, priv: keys[kid], created: now().Add(time.Duration(i-len(kids)) * time.Nanosecond)})
	}
	return ks, nil
}

// Rotate adds a new key, which signs from now on, and returns its kid.
func (ks *KeyStore) Rotate() (string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	kid := base64.RawURLEncoding.EncodeToString(b)
	if ks.dir != "" {
		if err := writeKey(ks.dir, kid, priv); err != nil {
			return "", err
		}
	}
	ks.mu.Lock()
	ks.keys = append(ks.keys, signingKey{kid: kid, priv: priv, created: ks.now()})
	ks.mu.Unlock()
	return kid, nil
}

// Retire removes a key that is not the active one, from memory and disk.
func (ks *KeyStore) Retire(kid string) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	i := slices.IndexFunc(ks.keys, func(k signingKey) bool { return k.kid == kid })
	switch {
	case i < 0:
		return fmt.Errorf("token: no key %q", kid)
	case i == len(ks.keys)-1 || i == ks.signing():
		return errors.New("token: the signing or newest key cannot be retired; rotate first")
	}
	ks.keys = slices.Delete(ks.keys, i, i+1)
	if ks.dir != "" {
		if err := os.Remove(filepath.Join(ks.dir, kid+".key")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// SetPublishDelay makes a new key wait d after it is added (or after its file
// was written) before it signs, while it is already in the JWKS. Verifiers
// refetch the JWKS for an unknown kid at most every so often
// (KeySetConfig.MinRefetchInterval); a delay longer than that means no
// verifier ever sees a token whose key it could not have fetched yet.
func (ks *KeyStore) SetPublishDelay(d time.Duration) {
	ks.mu.Lock()
	ks.publishDelay = d
	ks.mu.Unlock()
}

// signing returns the index of the key that signs now: the newest one that
// has been published for the publish delay, or the oldest if none has.
func (ks *KeyStore) signing() int {
	cutoff := ks.now().Add(-ks.publishDelay)
	for i := len(ks.keys) - 1; i >= 0; i-- {
		if !ks.keys[i].created.After(cutoff) {
			return i
		}
	}
	return 0
}

// Prune retires every key whose successor has been signing for longer than
// retention (the access-token lifetime plus leeway): no unexpired token can
// carry its kid any more. It returns the retired kids.
func (ks *KeyStore) Prune(retention time.Duration) []string {
	ks.mu.RLock()
	var old []string
	for i := 0; i < len(ks.keys)-1; i++ {
		if ks.now().Sub(ks.keys[i+1].created.Add(ks.publishDelay)) > retention {
			old = append(old, ks.keys[i].kid)
		}
	}
	ks.mu.RUnlock()
	for _, kid := range old {
		_ = ks.Retire(kid)
	}
	return old
}

// Active returns the signing key and its kid.
func (ks *KeyStore) Active() (string, ed25519.PrivateKey) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	k := ks.keys[ks.signing()]
	return k.kid, k.priv
}

// PublicKeys returns the JWKS: public halves only.
func (ks *KeyStore) PublicKeys() []JWK {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	out := make([]JWK, 0, len(ks.keys))
	for i := len(ks.keys) - 1; i >= 0; i-- {
		k := ks.keys[i]
		pub := k.priv.Public().(ed25519.PublicKey)
		out = append(out, JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: k.kid, Alg: "EdDSA", Use: "sig"})
	}
	return out
}

// writeKey stores priv as <kid>.key in dir, mode 0600. It writes a temporary
// file and renames it, so a crash part-way never leaves a truncated .key file
// that would stop the next start (OpenKeyStore refuses unreadable keys, and
// ignores the temporary name).
func writeKey(dir, kid string, priv ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-"+kid+"-*") // CreateTemp uses mode 0600
	if err != nil {
		return fmt.Errorf("token: write key: %w", err)
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	_, err = f.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, kid+".key"))
	}
	if err != nil {
		return fmt.Errorf("token: write key: %w", err)
	}
	return nil
}

func readKey(path string) (ed25519.PrivateKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("token: %s is readable by others (mode %v); want 0600", path, info.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(raw)
	if blk == nil {
		return nil, fmt.Errorf("token: %s is not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("token: %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("token: %s is not an Ed25519 key", path)
	}
	return priv, nil
}

// publicKey decodes a JWK into an Ed25519 public key.
func publicKey(j JWK) (ed25519.PublicKey, error) {
	if j.Kty != "OKP" || j.Crv != "Ed25519" || (j.Alg != "" && j.Alg != "EdDSA") || (j.Use != "" && j.Use != "sig") {
		return nil, fmt.Errorf("token: unsupported key %q", j.Kid)
	}
	b, err := base64.RawURLEncoding.DecodeString(j.X)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("token: bad key %q", j.Kid)
	}
	return ed25519.PublicKey(b), nil
}
