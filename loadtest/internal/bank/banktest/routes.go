package banktest

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var in struct{ Email, Password, DisplayName string }
	if !decode(w, r, &in) {
		return
	}
	if len(in.Password) < 12 || len(in.Password) > 128 || !strings.Contains(in.Email, "@") || in.DisplayName == "" {
		problem(w, http.StatusBadRequest, "validation failed")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	email := strings.ToLower(in.Email)
	if s.users[email] != nil {
		problem(w, http.StatusConflict, "already registered")
		return
	}
	u := &user{id: s.nextID("u"), email: email, password: in.Password}
	s.users[email] = u
	reply(w, map[string]any{"user": map[string]any{"id": u.id, "email": u.email, "roles": []string{"user"}}})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var in struct{ Email, Password string }
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	email := strings.ToLower(in.Email)
	if s.failures[email] >= s.opts.MaxFailures {
		w.Header().Set("Retry-After", "60")
		problem(w, http.StatusTooManyRequests, "too many failed logins")
		return
	}
	u := s.users[email]
	if u == nil || u.password != in.Password {
		s.failures[email]++
		problem(w, http.StatusUnauthorized, "invalid credentials")
		return
	}
	delete(s.failures, email)
	if u.admin && s.opts.AdminOTP != "" {
		ticket := s.nextID("ticket")
		s.tickets[ticket] = u
		reply(w, map[string]any{"mfaRequired": true, "mfaToken": ticket, "expiresIn": 300})
		return
	}
	s.issue(w, u)
}

// loginMFA spends a ticket: the admin's one code, once.
func (s *Server) loginMFA(w http.ResponseWriter, r *http.Request) {
	var in struct{ MFAToken, Code string }
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.tickets[in.MFAToken]
	delete(s.tickets, in.MFAToken)
	if u == nil || in.Code != s.opts.AdminOTP {
		problem(w, http.StatusUnauthorized, "invalid credentials")
		return
	}
	s.opts.AdminOTP = "used " + s.opts.AdminOTP // each code works once
	s.issue(w, u)
}

// issue answers a login with a new token for u; the caller holds s.mu.
func (s *Server) issue(w http.ResponseWriter, u *user) {
	tok := s.nextID("tok." + u.id + ".sig")
	s.tokens[tok] = u
	reply(w, map[string]any{"accessToken": tok, "refreshToken": "r-" + tok, "tokenType": "Bearer", "expiresIn": 900})
}

func (s *Server) openAccount(w http.ResponseWriter, r *http.Request, u *user) {
	var in struct{ Currency, DisplayName string }
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &account{id: s.nextID("acc"), owner: u.id}
	s.accounts[a.id] = a
	reply(w, map[string]any{"account": s.view(a)})
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request, u *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []any
	for _, a := range s.accounts {
		if a.owner == u.id {
			out = append(out, s.view(a))
		}
	}
	reply(w, map[string]any{"accounts": out})
}

// own returns the account if u may see it; anyone else's is a 404, as if it
// did not exist (unless the server was built broken with AllowBOLA).
func (s *Server) own(w http.ResponseWriter, id string, u *user) *account {
	a := s.accounts[id]
	if a == nil || (a.owner != u.id && !u.admin && !s.opts.AllowBOLA) {
		problem(w, http.StatusNotFound, "not found")
		return nil
	}
	return a
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request, u *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.own(w, r.PathValue("id"), u); a != nil {
		reply(w, map[string]any{"account": s.view(a)})
	}
}

func (s *Server) history(w http.ResponseWriter, r *http.Request, u *user) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, err := strconv.Atoi(r.URL.Query().Get("pageSize")); err != nil || n < 1 || n > 100 {
		problem(w, http.StatusBadRequest, "pageSize")
		return
	}
	if s.own(w, r.PathValue("id"), u) != nil {
		reply(w, map[string]any{"entries": []any{}})
	}
}

func (s *Server) deposit(w http.ResponseWriter, r *http.Request, u *user) {
	key := r.Header.Get("Idempotency-Key")
	var in struct{ Amount, Currency, Reference string }
	if !decode(w, r, &in) || !s.checkKey(w, key) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !u.admin {
		problem(w, http.StatusForbidden, "managers only")
		return
	}
	a := s.accounts[r.PathValue("id")]
	amount, err := strconv.ParseInt(in.Amount, 10, 64)
	if a == nil || err != nil || amount <= 0 {
		problem(w, http.StatusBadRequest, "bad deposit")
		return
	}
	if a.owner == u.id { // the separation of duties, as the real bank has it
		problem(w, http.StatusForbidden, "separation of duties")
		return
	}
	if amount >= ApprovalThreshold { // held for a second manager; nothing credited
		reply(w, map[string]any{"transfer": map[string]any{"id": s.nextID("tr"), "status": "PENDING_APPROVAL", "holdReason": "amount"}})
		return
	}
	a.balance += amount
	reply(w, map[string]any{"transfer": map[string]any{"id": s.nextID("tr"), "status": "COMPLETED"}})
}

func (s *Server) transfer(w http.ResponseWriter, r *http.Request, u *user) {
	key := r.Header.Get("Idempotency-Key")
	var in struct{ FromAccountID, ToAccountID, Amount, Currency, Description string }
	if !decode(w, r, &in) || !s.checkKey(w, key) {
		return
	}
	if d := s.opts.TransferDelay; d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	from := s.accounts[in.FromAccountID]
	if from == nil || from.owner != u.id {
		problem(w, http.StatusNotFound, "not found")
		return
	}
	to := s.accounts[in.ToAccountID]
	amount, err := strconv.ParseInt(in.Amount, 10, 64)
	if to == nil || to == from || err != nil || amount <= 0 {
		problem(w, http.StatusBadRequest, "bad transfer")
		return
	}
	if s.keys[u.id+"\x00"+key] {
		w.Header().Set("Idempotent-Replayed", "true")
		reply(w, map[string]any{"transfer": map[string]any{"status": "COMPLETED"}})
		return
	}
	if from.balance < amount {
		problem(w, http.StatusUnprocessableEntity, "insufficient funds")
		return
	}
	s.keys[u.id+"\x00"+key] = true
	from.balance -= amount
	to.balance += amount
	reply(w, map[string]any{"transfer": map[string]any{"id": s.nextID("tr"), "status": "COMPLETED"}})
}

func (s *Server) checkKey(w http.ResponseWriter, key string) bool {
	if key == "" || len(key) > 255 {
		problem(w, http.StatusBadRequest, "Idempotency-Key required")
		return false
	}
	return true
}

func (s *Server) view(a *account) map[string]any {
	return map[string]any{"id": a.id, "ownerId": a.owner, "currency": "EUR", "status": "ACTIVE",
		"balance": map[string]string{"currency": "EUR", "amount": strconv.FormatInt(a.balance, 10)}}
}

// Balance returns an account's balance, for tests that check money moved.
func (s *Server) Balance(id string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[id]; a != nil {
		return a.balance
	}
	return -1
}
