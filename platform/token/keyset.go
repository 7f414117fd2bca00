package token

import (
	"context"
	"crypto/ed25519"
	"sync"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
)

// KeySource fetches the current JWKS (from the auth service, over mTLS).
type KeySource func(ctx context.Context) ([]JWK, error)

// KeySetConfig configures a KeySet.
type KeySetConfig struct {
	// MinRefetchInterval caps how often an unknown kid may trigger a fetch,
	// so a flood of tokens with made-up kids cannot hammer the auth service.
	MinRefetchInterval time.Duration // default 30 s
	TTL                time.Duration // refresh known keys this often; default 5 min
	// FetchTimeout bounds one fetch. A fetch does not end with the request
	// that started it: a client that hangs up must not abort the refresh
	// every other request is waiting for (and spend the refetch allowance).
	FetchTimeout time.Duration // default 5 s
	Now          func() time.Time
}

// KeySet caches the public keys that verify tokens.
type KeySet struct {
	src KeySource
	cfg KeySetConfig

	fetchMu sync.Mutex // one fetch at a time; waiters reuse its result

	mu        sync.RWMutex
	keys      map[string]ed25519.PublicKey
	fetched   time.Time // last successful fetch
	attempted time.Time // last fetch attempt
}

// NewKeySet returns an empty KeySet that fills itself from src on first use.
func NewKeySet(src KeySource, cfg KeySetConfig) *KeySet {
	if cfg.MinRefetchInterval <= 0 {
		cfg.MinRefetchInterval = 30 * time.Second
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &KeySet{src: src, cfg: cfg, keys: map[string]ed25519.PublicKey{}}
}

func (k *KeySet) lookup(kid string) (ed25519.PublicKey, bool, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	key, ok := k.keys[kid]
	fresh := !k.fetched.IsZero() && k.cfg.Now().Sub(k.fetched) < k.cfg.TTL
	return key, ok, fresh
}

// Key returns the public key for kid, fetching the JWKS when the kid is
// unknown (at most once per MinRefetchInterval) or the cache is stale. A
// failed fetch keeps the last good keys.
func (k *KeySet) Key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	key, ok, fresh := k.lookup(kid)
	switch {
	case ok && fresh:
		return key, nil
	case ok:
		// Known but stale: refresh, unless another caller already is; the
		// key it holds stays good meanwhile, so nobody queues behind a slow
		// auth service every TTL.
		if !k.fetchMu.TryLock() {
			return key, nil
		}
	default:
		k.fetchMu.Lock()
	}
	defer k.fetchMu.Unlock()
	key, ok, fresh = k.lookup(kid)
	if ok && fresh {
		return key, nil // another caller fetched while we waited
	}
	k.mu.RLock()
	recent := !k.attempted.IsZero() && k.cfg.Now().Sub(k.attempted) < k.cfg.MinRefetchInterval
	k.mu.RUnlock()
	if !recent {
		_ = k.fetch(ctx) // on failure the last good keys stay; the kid decides
		key, ok, _ = k.lookup(kid)
	}
	if !ok {
		return nil, errs.Reasoned(errs.Unauthenticated, ReasonUnknownKid, "invalid token")
	}
	return key, nil
}

// Refresh fetches the JWKS now, whatever the cache holds.
func (k *KeySet) Refresh(ctx context.Context) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	return k.fetch(ctx)
}

func (k *KeySet) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.cfg.FetchTimeout)
	defer cancel()
	jwks, err := k.src(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.attempted = k.cfg.Now()
	if err != nil {
		return err
	}
	keys := make(map[string]ed25519.PublicKey, len(jwks))
	for _, j := range jwks {
		if pub, err := publicKey(j); err == nil {
			keys[j.Kid] = pub
		}
	}
	k.keys, k.fetched = keys, k.cfg.Now()
	return nil
}
