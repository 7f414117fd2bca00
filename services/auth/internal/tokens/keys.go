// Package tokens joins the auth domain to platform/token: it signs access
// tokens with the newest key in the key directory, publishes the public
// keys, picks up keys added by "auth rotate-keys" without a restart, retires
// old keys once no unexpired token can carry them, and feeds the service's
// own verifier from the revocation set.
package tokens

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bastion-bank/bastion/platform/token"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// retentionSlack is added to the token lifetime before an old key is
// retired, to cover verifiers' clock leeway.
const retentionSlack = time.Minute

// publishDelay is how long a rotated key is in the JWKS before it signs:
// longer than the verifiers' unknown-kid refetch interval (30 s, see
// token.KeySetConfig), so none of them refuses the first tokens it signs.
const publishDelay = 45 * time.Second

// keyring is one loaded state of the key directory.
type keyring struct {
	store  *token.KeyStore
	signer *token.Signer
}

// Keys holds the signing keys of one key directory.
type Keys struct {
	dir string
	cfg token.SignerConfig
	cur atomic.Pointer[keyring]
}

// OpenKeys loads the keys in dir (creating dir and a first key, mode 0600,
// if there are none) and signs with cfg.
func OpenKeys(dir string, cfg token.SignerConfig) (*Keys, error) {
	if cfg.TTL <= 0 {
		cfg.TTL = token.DefaultTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	k := &Keys{dir: dir, cfg: cfg}
	if err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// Rotate adds a new key to dir, which signs from the next Reload on (in this
// process: at once), and returns its kid. The old keys stay published.
func Rotate(dir string, now func() time.Time) (string, error) {
	ks, err := token.OpenKeyStore(dir, now)
	if err != nil {
		return "", err
	}
	return ks.Rotate()
}

// Reload reads the key directory again, so a key added by another process
// (the rotate-keys command) signs from now on, and retires keys whose
// successor has signed for longer than a token lives.
func (k *Keys) Reload() error {
	ks, err := token.OpenKeyStore(k.dir, k.cfg.Now)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	ks.SetPublishDelay(publishDelay)
	ks.Prune(k.cfg.TTL + retentionSlack)
	k.cur.Store(&keyring{store: ks, signer: token.NewSigner(ks, k.cfg)})
	return nil
}

// Run reloads the key directory every interval until ctx ends, passing
// failures to report; the keys already loaded stay in use meanwhile.
func (k *Keys) Run(ctx context.Context, every time.Duration, report func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.Reload(); err != nil {
				report(err)
			}
		}
	}
}

// TTL returns the access-token lifetime.
func (k *Keys) TTL() time.Duration { return k.cfg.TTL }

// Issue signs an access token for userID with roles and amr.
func (k *Keys) Issue(userID string, roles, amr []string) (domain.AccessToken, error) {
	raw, c, err := k.cur.Load().signer.SignAMR(userID, roles, amr)
	if err != nil {
		return domain.AccessToken{}, err
	}
	return domain.AccessToken{Raw: raw, ID: c.ID, IssuedAt: c.IssuedAt.Time, ExpiresAt: c.ExpiresAt.Time}, nil
}

// PublicKeys returns the JWKS: public halves only, newest first.
func (k *Keys) PublicKeys() []token.JWK { return k.cur.Load().store.PublicKeys() }

// KeySource is a token.KeySource reading this process's keys directly, for
// the service's own verifier: no network hop, and never a stale key.
func (k *Keys) KeySource() token.KeySource {
	return func(context.Context) ([]token.JWK, error) { return k.PublicKeys(), nil }
}

// Follow keeps list in step with revs: it gets the current set at once and
// every new revocation synchronously, so a token revoked here is refused by
// this process's verifier before the revoking call returns.
func Follow(revs *domain.Revocations, list *token.RevocationList) {
	revs.OnAdd(func(batch []domain.Revocation) {
		for _, v := range batch {
			list.Add(v.TokenID, v.ExpiresAt)
		}
	})
}

// Verifier returns the auth service's own token verifier: its key set reads
// this process's keys (re-read at most every second, which costs a slice
// copy, so a retired key stops verifying at once) and its revocation list
// follows revs.
func (k *Keys) Verifier(cfg token.VerifierConfig, revs *domain.Revocations) *token.Verifier {
	set := token.NewKeySet(k.KeySource(), token.KeySetConfig{TTL: time.Second, MinRefetchInterval: time.Second})
	list := token.NewRevocationList()
	Follow(revs, list)
	return token.NewVerifier(set, cfg, list)
}
