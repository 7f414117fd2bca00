package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"

	"github.com/bastion-bank/bastion/platform/pagetoken"
)

// pageTokenCodec returns the codec that signs history page tokens, keyed
// from the file at path. Without a file it uses a random key for this
// process only and warns: tokens then stop working on restart and are
// refused by other replicas, which is safe (a client starts its list again)
// but surprising.
func pageTokenCodec(path string, logger *slog.Logger) (*pagetoken.Codec, error) {
	if path == "" {
		key := make([]byte, pagetoken.MinKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate page token key: %w", err)
		}
		logger.Warn("BANK_PAGE_TOKEN_KEY_FILE is not set: page tokens are signed with a random per-process key; " +
			"they break on restart and across replicas. Set it to a file of at least 32 random bytes in production.")
		return pagetoken.New(key)
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read BANK_PAGE_TOKEN_KEY_FILE: %w", err)
	}
	// A trailing newline from an editor or `echo` is not key material.
	c, err := pagetoken.New(bytes.TrimSpace(key))
	if err != nil {
		return nil, fmt.Errorf("BANK_PAGE_TOKEN_KEY_FILE: %w", err)
	}
	return c, nil
}
