package token

import "time"

// ActiveSince returns when the signing key was added: the rotation tests
// check the moment a new key takes over, which nothing outside them needs.
func (ks *KeyStore) ActiveSince() time.Time {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.keys[ks.signing()].created
}
