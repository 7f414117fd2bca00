package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/mtls"
)

// TestRevocationRacingRefreshThroughTheStack is the revocation race of the
// API contract's "Sessions and revocation", on the real processes: an admin's
// refresh is stopped in the auth service's database transaction right after
// it has locked the session (the test holds the row of the refresh token
// being spent, on a connection of its own), then the admin is demoted or
// disabled, or the victim logs out while a thief refreshes the same
// session, and only
// then does the refresh go on. The token the refresh returns must be refused
// one second after the revocation returned: by the gateway with 401 on
// routes that reach each service, and by each service called directly over
// mTLS as the gateway.
//
// Not parallel: a role change locks every admin's row, so another test's
// role change or admin login would wait behind the held row and be counted
// as the revocation waiting; sequential tests run before the parallel ones.
func TestRevocationRacingRefreshThroughTheStack(t *testing.T) {
	owner := register(t, "race-owner")
	account := owner.openAccount("EUR")
	tests := []struct {
		name   string
		revoke func(boss, victim *caller) response
	}{
		{"role change", func(boss, victim *caller) response {
			return boss.do("PUT", "/v1/users/"+victim.userID+"/roles", map[string]any{"roles": []string{"user"}})
		}},
		{"disable", func(boss, victim *caller) response {
			return boss.do("POST", "/v1/users/"+victim.userID+":disable", map[string]any{"reason": "compromised"})
		}},
		{"logout by the victim while a thief refreshes", func(_, victim *caller) response {
			return victim.do("POST", "/v1/auth/logout", map[string]any{"refreshToken": victim.refresh})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			boss, victim := admin(t), register(t, "race-victim")
			boss.do("PUT", "/v1/users/"+victim.userID+"/roles", map[string]any{"roles": []string{"admin", "user"}}).
				must(t, 200, "promote the victim")
			victim.login("correct horse battery")
			thief := newCaller(t) // holds the victim's refresh token
			thief.refresh = victim.refresh

			held := holdRefreshToken(t, victim.refresh)
			var refreshed, revoked response
			var returned time.Time
			held.race(t, func() {
				refreshed = thief.do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": thief.refresh})
			}, func() {
				revoked = tt.revoke(boss, victim)
				returned = time.Now()
			})
			revoked.must(t, 200, tt.name)
			refreshed.must(t, 200, "the refresh that held the session first")
			thief.token, thief.refresh = refreshed.str("accessToken"), refreshed.str("refreshToken")
			t.Logf("the racing refresh issued a token with roles %v", jwtRoles(t, thief.token))

			// Refused within the second: poll, then check everywhere once it is up.
			deadline := returned.Add(time.Second)
			for ; time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if thief.do("GET", "/v1/users/me", nil).Status == 401 {
					t.Logf("the gateway refused it %v after the %s returned", time.Since(returned).Round(time.Millisecond), tt.name)
					break
				}
			}
			time.Sleep(time.Until(deadline))
			for _, r := range []struct{ what, method, path string }{
				{"GET /v1/users/me (auth)", "GET", "/v1/users/me"},
				{"list another owner's accounts (accounts)", "GET", "/v1/accounts?ownerId=" + owner.userID},
				{"read a transfer (transactions)", "GET", "/v1/transfers/" + randomID},
			} {
				got := thief.do(r.method, r.path, nil)
				if got.Status != 401 || got.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
					t.Errorf("%s with the racing token 1s after the %s returned: %d %q, want 401 invalid_token",
						r.what, tt.name, got.Status, got.Header.Get("WWW-Authenticate"))
				}
			}
			if got := thief.deposit(account, 100, "EUR"); got.Status != 401 {
				t.Errorf("deposit with the racing token 1s after the %s returned: %d, want 401", tt.name, got.Status)
			}
			boss.deposit(account, 100, "EUR").must(t, 200, "the same deposit with a live admin token (the control)")
			refusedByEachService(t, thief.token, boss.token)
			thief.do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": thief.refresh}).
				must(t, 401, "refresh with the racing refresh token")
		})
	}
}

// refusedByEachService calls each service directly over mTLS, as the
// gateway, with the racing token (which must get UNAUTHENTICATED) and with
// a live one (which must not, so the call does reach the token check).
func refusedByEachService(t *testing.T, racing, live string) {
	t.Helper()
	calls := []struct {
		server, method string
		req, reply     any
	}{
		{"auth", "/bank.auth.v1.AuthService/GetMe", &authv1.GetMeRequest{}, &authv1.GetMeResponse{}},
		{"accounts", "/bank.accounts.v1.AccountsService/ListAccounts", &accountsv1.ListAccountsRequest{}, &accountsv1.ListAccountsResponse{}},
		{"transactions", "/bank.transactions.v1.TransactionsService/GetTransfer",
			&transactionsv1.GetTransferRequest{TransferId: randomID}, &transactionsv1.GetTransferResponse{}},
	}
	src, err := mtls.NewSource(mtls.FilesIn(filepath.Join(bank.dir, "pki"), "gateway"), "bastion.local")
	if err != nil {
		t.Fatalf("NewSource(gateway): %v", err)
	}
	for _, c := range calls {
		conn, err := grpc.NewClient(bank.services[c.server], grpc.WithTransportCredentials(src.ClientCredentials(c.server)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, tok := range []struct {
			name  string
			raw   string
			wantU bool
		}{{"racing", racing, true}, {"live", live, false}} {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok.raw)
			err := conn.Invoke(ctx, c.method, c.req, c.reply)
			cancel()
			if got := status.Code(err) == codes.Unauthenticated; got != tok.wantU {
				t.Errorf("%s with the %s token = %v, want UNAUTHENTICATED %t", c.method, tok.name, err, tok.wantU)
			}
		}
	}
}

// heldRow is a row lock the test holds on a connection of its own, to stop
// the auth service's transaction at the statement that needs the row.
type heldRow struct {
	tx    pgx.Tx
	pid   uint32
	watch *pgx.Conn
}

// holdRefreshToken locks the stored row of a raw refresh token.
func holdRefreshToken(t *testing.T, raw string) *heldRow {
	t.Helper()
	ctx := context.Background()
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256(b)
	h := &heldRow{}
	var conns [2]*pgx.Conn
	for i := range conns {
		if conns[i], err = pgx.Connect(ctx, bank.dbURL); err != nil {
			t.Fatal(err)
		}
		conn := conns[i]
		t.Cleanup(func() { conn.Close(ctx) })
	}
	h.watch = conns[1]
	if h.tx, err = conns[0].Begin(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.tx.Rollback(ctx) })
	err = h.tx.QueryRow(ctx, `SELECT pg_backend_pid() FROM auth.refresh_tokens WHERE token_hash = $1 FOR UPDATE`, hash[:]).
		Scan(&h.pid)
	if err != nil {
		t.Fatalf("lock the refresh token's row: %v", err)
	}
	return h
}

// race runs first until it waits on h, then second until it waits too (or
// has finished), then releases h and waits for both.
func (h *heldRow) race(t *testing.T, first, second func()) {
	t.Helper()
	firstDone, secondDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(firstDone); first() }()
	if !h.waitBlocked(t, 1, firstDone) {
		t.Fatal("the refresh never waited on the held row: the test no longer sets up the race")
	}
	go func() { defer close(secondDone); second() }()
	h.waitBlocked(t, 2, secondDone)
	if err := h.tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-firstDone
	<-secondDone
}

// waitBlocked waits until n backends wait on h, directly or behind another
// waiter, and reports true; or reports false once done is closed first.
func (h *heldRow) waitBlocked(t *testing.T, n int, done <-chan struct{}) bool {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		var waiting int
		err := h.watch.QueryRow(context.Background(), `WITH RECURSIVE waiting(pid) AS (
				SELECT a.pid FROM pg_stat_activity a WHERE $1::int = ANY (pg_blocking_pids(a.pid))
				UNION
				SELECT a.pid FROM pg_stat_activity a JOIN waiting w ON w.pid = ANY (pg_blocking_pids(a.pid)))
			SELECT count(*) FROM waiting`, h.pid).Scan(&waiting)
		if err != nil {
			t.Fatalf("count the backends waiting on the held row: %v", err)
		}
		if waiting >= n {
			return true
		}
		select {
		case <-done:
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("after 20s, fewer than %d backends wait on the held row", n)
	return false
}

// jwtRoles reads the roles claim of a token without verifying it.
func jwtRoles(t *testing.T, raw string) []string {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.Roles
}
