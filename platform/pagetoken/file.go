package pagetoken

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
)

// FromFile returns a codec keyed from the file at path (surrounding white
// space ignored). With no path it uses a random key for this process only and
// warns: tokens then break on restart and across replicas, which is safe (a
// client starts its list again) but surprising.
func FromFile(path string, logger *slog.Logger) (*Codec, error) {
	if path == "" {
		key := make([]byte, MinKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate page token key: %w", err)
		}
		logger.Warn("BANK_PAGE_TOKEN_KEY_FILE is not set: page tokens are signed with a random per-process key; " +
			"they break on restart and across replicas. Set it to a file of at least 32 random bytes in production.")
		return New(key)
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read BANK_PAGE_TOKEN_KEY_FILE: %w", err)
	}
	c, err := New(bytes.TrimSpace(key))
	if err != nil {
		return nil, fmt.Errorf("BANK_PAGE_TOKEN_KEY_FILE: %w", err)
	}
	return c, nil
}
