// Package banktest is an in-process stand-in for Bastion's gateway at the
// HTTP layer only: enough of docs/api.md (routes, bearer tokens, JSON bodies,
// Idempotency-Key, ownership, size and media-type rules) to check that
// bankload speaks the contract, and a record of every request it got. It
// is a test double for the generator's tests, not a model of the bank.
package banktest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The administrator every Server knows.
const (
	AdminEmail    = "admin@bastion.local"
	AdminPassword = "admin-password-for-tests"
)

// MaxBody is docs/api.md's cap on request bodies.
const MaxBody = 64 << 10

// Options make a Server misbehave on purpose.
type Options struct {
	AllowBOLA     bool          // serve any account to any user, as a broken server would
	TransferDelay time.Duration // hold each transfer this long (or until the client gives up)
	MaxFailures   int           // failed logins before an account is throttled (0: 5)
	AdminOTP      string        // the admin's MFA is on: its one code, accepted once
}

// Call is what the Server saw of one request.
type Call struct {
	Route          string // the mux pattern that matched, or "" for none
	Method         string
	Authorization  string
	ContentType    string
	IdempotencyKey string
	BodyLen        int
	Status         int
	At             time.Time
}

// Server is the fake gateway.
type Server struct {
	*httptest.Server
	opts Options

	mu       sync.Mutex
	calls    []Call
	users    map[string]*user // by email
	tokens   map[string]*user
	accounts map[string]*account
	keys     map[string]bool // user id + idempotency key
	failures map[string]int  // by email
	tickets  map[string]*user
	seq      int
}

// ApprovalThreshold is the default BANK_APPROVAL_THRESHOLD of the real
// bank: a deposit at or above it is held for a second manager.
const ApprovalThreshold = 1_000_000

type user struct {
	id, email, password string
	admin               bool
}

type account struct {
	id, owner string
	balance   int64
}

// New starts a Server over TLS; srv.Certificate() is its CA.
func New(opts Options) *Server {
	if opts.MaxFailures == 0 {
		opts.MaxFailures = 5
	}
	s := &Server{opts: opts, users: map[string]*user{}, tokens: map[string]*user{},
		accounts: map[string]*account{}, keys: map[string]bool{}, failures: map[string]int{}, tickets: map[string]*user{}}
	s.users[AdminEmail] = &user{id: "u-admin", email: AdminEmail, password: AdminPassword, admin: true}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/auth/register", s.register)
	mux.HandleFunc("POST /v1/auth/login", s.login)
	mux.HandleFunc("POST /v1/auth/login/mfa", s.loginMFA)
	mux.HandleFunc("GET /v1/users/me", s.authed(func(w http.ResponseWriter, r *http.Request, u *user) {
		reply(w, map[string]any{"user": map[string]string{"id": u.id}})
	}))
	mux.HandleFunc("POST /v1/accounts", s.authed(s.openAccount))
	mux.HandleFunc("GET /v1/accounts", s.authed(s.listAccounts))
	mux.HandleFunc("GET /v1/accounts/{id}", s.authed(s.getAccount))
	mux.HandleFunc("GET /v1/accounts/{id}/transactions", s.authed(s.history))
	mux.HandleFunc("POST /v1/accounts/{id}/deposits", s.authed(s.deposit))
	mux.HandleFunc("POST /v1/transfers", s.authed(s.transfer))
	s.Server = httptest.NewTLSServer(s.edge(mux))
	return s
}

// BaseURL returns the server's URL parsed.
func (s *Server) BaseURL() *url.URL {
	u, _ := url.Parse(s.Server.URL)
	return u
}

// Calls returns a copy of every request seen so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// statusWriter remembers the status for the record.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// edge applies the rules the real gateway applies before routing, and
// records the call.
func (s *Server) edge(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		c := Call{Route: pattern, Method: r.Method, Authorization: r.Header.Get("Authorization"),
			ContentType: r.Header.Get("Content-Type"), IdempotencyKey: r.Header.Get("Idempotency-Key"), At: time.Now()}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			c.Status = sw.status
			s.mu.Lock()
			s.calls = append(s.calls, c)
			s.mu.Unlock()
		}()
		if r.Method == http.MethodPost {
			b, err := io.ReadAll(http.MaxBytesReader(sw, r.Body, MaxBody))
			c.BodyLen = len(b)
			if err != nil {
				problem(sw, http.StatusRequestEntityTooLarge, "body too large")
				return
			}
			if r.Header.Get("Content-Type") != "application/json" {
				problem(sw, http.StatusUnsupportedMediaType, "want application/json")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		mux.ServeHTTP(sw, r)
	})
}

func (s *Server) authed(h func(http.ResponseWriter, *http.Request, *user)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		u := s.tokens[tok]
		s.mu.Unlock()
		if !ok || u == nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			problem(w, http.StatusUnauthorized, "invalid token")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, u)
	}
}

func (s *Server) nextID(prefix string) string {
	s.seq++
	return prefix + "-" + strconv.Itoa(s.seq)
}

// decode reads a JSON object strictly: unknown fields are a 400, as docs/api.md says.
func decode(w http.ResponseWriter, r *http.Request, into any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		problem(w, http.StatusBadRequest, "invalid body")
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func problem(w http.ResponseWriter, status int, title string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "title": title})
}
