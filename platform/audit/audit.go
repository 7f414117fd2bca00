// Package audit is Bastion's append-only, hash-chained audit log: the one
// implementation every service uses, each in its own schema.
//
// Security-relevant events (logins, token reuse, role changes, freezes,
// transfers, approvals, authorization denials) are appended to
// <schema>.audit_events inside the transaction that makes the change, as
// pending rows: a plain insert, with no lock and no read of the chain, so
// audited transactions never wait for each other. A sealer (Seal, run by
// every replica through StartSealer) then links committed rows into the
// chain, in batches, under a per-schema advisory lock only sealers take:
// each sealed row gets a gapless sequence number and the SHA-256 of the
// previous row's hash and its own contents. A trigger refuses DELETE,
// TRUNCATE, inserts that claim to be sealed, and every UPDATE but sealing
// (the chain columns set once, nothing else changed); a deferred check
// refuses a seal that does not link to the row before it. The trigger stops
// accidents and injected SQL; the chain makes any change that gets past it
// (by the table's owner or a superuser) visible to Verify. What the chain
// alone cannot reveal: deleting the newest rows, rewriting every row from
// some point on with freshly computed hashes, and changes to rows not sealed
// yet (Verify reports rows pending for too long). Anchors reveal the first
// two: the verifier records each head it verified in audit_anchors.heads,
// which no service role or schema owner can write, and checks every later
// run against them (Record, CheckRecorded); heads kept outside the
// database (CheckAnchor) do the same against the database's superusers.
//
// A service's runtime role owns nothing: it may append, seal and read
// (RuntimeGrant), and cannot switch the trigger off; only the table's owner,
// which runs the migrations, and a superuser can.
package audit

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Event is one audited occurrence. Every field is stored as given, except
// as noted on Detail, after replacing invalid UTF-8 and removing NUL bytes
// (which Postgres text cannot hold) and cutting each string to 1 KiB.
type Event struct {
	Actor    string // who: a user id, a service name, or "anonymous"
	Action   string // what, as a stable name, e.g. "auth.login"
	Resource string // on what, e.g. "account/3f2c…"; may be empty
	Outcome  string // e.g. "success", "failure", "denied"
	Reason   string // why it failed or was denied, as a stable code; may be empty
	ClientIP string // the client's address as the gateway saw it
	TraceID  string // links the event to its trace and logs

	// Detail holds further facts as key/value pairs. It must never contain
	// secrets: no passwords, tokens, keys, cookies or session ids. As a
	// last defence, Append drops every key whose name, ignoring case and the
	// characters "_-. ", contains password, passwd, pwd, secret, token,
	// authorization, cookie, apikey, privatekey, credential or signature,
	// and keeps at most MaxDetailKeys keys (the first in sorted order).
	Detail map[string]string

	// At is when it happened; zero means the Log's clock. It is stored
	// with microsecond precision.
	At time.Time
}

// secretKeyWords are the fragments that make Append drop a Detail key.
var secretKeyWords = []string{
	"password", "passwd", "pwd", "secret", "token", "authorization",
	"cookie", "apikey", "privatekey", "credential", "signature",
}

// Limits on what one event may store, so that a client cannot make the audit
// log grow by megabytes per request (an email address is client input).
const (
	MaxFieldBytes = 1024
	MaxDetailKeys = 64
)

// Querier runs SQL; pgx.Tx, *pgxpool.Pool and *pgx.Conn satisfy it.
type Querier interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// schemaRE matches the schema names Bastion uses (see postgres.Provision).
var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// mustSchema returns schema quoted for SQL, and panics on a name Bastion
// would never use: schemas are constants in each service's wiring, so a bad
// one is a bug to be found at start-up.
func mustSchema(schema string) string {
	if !schemaRE.MatchString(schema) || strings.HasPrefix(schema, "pg_") {
		panic(fmt.Sprintf("audit: invalid schema name %q", schema))
	}
	return pgx.Identifier{schema}.Sanitize()
}

// clean makes s storable and bounded.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) <= MaxFieldBytes {
		return s
	}
	cut := MaxFieldBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// keySeparators drops the separators of a Detail key before it is matched
// against secretKeyWords. Built once: a Replacer builds its tables on first
// use, and building one per key was 42 % of the bytes the ledger allocated
// per transfer (docs/performance.md). A Replacer is safe for concurrent use.
var keySeparators = strings.NewReplacer("_", "", "-", "", ".", "", " ", "")

// isSecretKey reports whether a Detail key names something secret.
func isSecretKey(key string) bool {
	k := strings.ToLower(key)
	k = keySeparators.Replace(k)
	for _, w := range secretKeyWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// cleanDetail returns the storable part of d: secrets dropped, keys and
// values cleaned, at most MaxDetailKeys keys.
func cleanDetail(d map[string]string) map[string]string {
	keys := make([]string, 0, len(d))
	for k := range d {
		if !isSecretKey(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make(map[string]string, min(len(keys), MaxDetailKeys))
	for _, k := range keys {
		if len(out) == MaxDetailKeys {
			break
		}
		out[clean(k)] = clean(d[k])
	}
	return out
}
