package pagetoken

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"unicode"
	"unicode/utf8"
)

// FromFile returns a codec keyed from the file at path. A file of printable
// text (e.g. `openssl rand -hex 32`) is used without its surrounding white
// space; any other file is used byte for byte, since white space bytes in a
// binary key (e.g. `head -c 32 /dev/urandom`) are key material. With no path it uses a random key for this process only and
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
	c, err := New(keyMaterial(key))
	if err != nil {
		return nil, fmt.Errorf("BANK_PAGE_TOKEN_KEY_FILE: %w", err)
	}
	return c, nil
}

// keyMaterial returns the key a file holds: printable text without its
// surrounding white space, or anything else unchanged. Trimming a binary key
// would silently shorten it, and refuse one in about 5% of random files.
func keyMaterial(b []byte) []byte {
	text := bytes.TrimSpace(b)
	if !utf8.Valid(text) {
		return b
	}
	for _, r := range string(text) {
		if !unicode.IsPrint(r) {
			return b
		}
	}
	return text
}
