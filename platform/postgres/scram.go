package postgres

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// scramIterations matches Postgres's own default (scram_iterations = 4096).
const scramIterations = 4096

// scramVerifier returns the SCRAM-SHA-256 verifier Postgres stores for
// password, in the form it accepts in ALTER ROLE … PASSWORD. Sending the
// verifier instead of the password keeps the password out of the server's
// statement log and pg_stat_activity. Passwords are printable ASCII (checked
// by the caller), which SASLprep leaves unchanged, so the client and server
// derive the same key.
func scramVerifier(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("derive scram key: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s",
		iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

// newScramVerifier returns a verifier for password with a fresh random salt.
func newScramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	rand.Read(salt) // never fails (crypto/rand panics rather than return an error)
	return scramVerifier(password, salt, scramIterations)
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
