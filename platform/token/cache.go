package token

import (
	"crypto/ed25519"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/bastion-bank/bastion/platform/identity"
)

// DefaultCacheSize bounds how many verified tokens a Verifier remembers: one
// per active session of the last access-token lifetime is enough, and at
// about 200 bytes an entry this is a few MiB at most.
const DefaultCacheSize = 10_000

// verified remembers tokens whose signature and claims were checked, so a
// client's next request with the same token skips the signature check, the
// largest CPU cost of an authenticated call. It weakens nothing: an entry is
// keyed by the SHA-256 of the whole token (another byte is another entry),
// and on every hit the verifier checks again what can change after the
// first check: the clock (expiry, not-before), the key its kid names now
// (a rotated or removed key ends the entry) and the revocation list.
type verified struct {
	mu      sync.Mutex
	max     int
	entries map[[32]byte]verifiedEntry
}

type verifiedEntry struct {
	user identity.User
	kid  string
	key  ed25519.PublicKey // the key that verified it
	nbf  time.Time
}

func newVerified(max int) *verified {
	return &verified{max: max, entries: make(map[[32]byte]verifiedEntry)}
}

func cacheKey(raw string) [32]byte { return sha256.Sum256([]byte(raw)) }

func (c *verified) get(k [32]byte) (verifiedEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	return e, ok
}

func (c *verified) drop(k [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
}

// put remembers an entry. When full it first forgets every expired entry,
// then, if still full, an arbitrary one: a miss only costs a signature
// check, so the bound matters more than which entry goes.
func (c *verified) put(k [32]byte, e verifiedEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for key, old := range c.entries {
			if !now.Before(old.user.ExpiresAt) {
				delete(c.entries, key)
			}
		}
		for key := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, key)
		}
	}
	c.entries[k] = e
}

func (c *verified) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
