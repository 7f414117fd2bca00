package domain_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/audit"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// TestSecurityEventsAreAudited walks one user through every audited event
// and reads the audit table back.
func TestSecurityEventsAreAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{MaxFailures: 2})
	u, pw := f.register(t)
	tok := f.login(t, u.Email, pw)
	next, err := f.svc.Refresh(ctx, tok.Refresh, f.ip)
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Refresh(ctx, tok.Refresh, f.ip) // reuse
	tok = f.login(t, u.Email, pw)
	f.svc.Logout(ctx, identity.User{ID: u.ID, TokenID: tok.Access.ID, ExpiresAt: tok.Access.ExpiresAt}, tok.Refresh, f.ip)
	for range 3 {
		f.svc.Login(ctx, domain.LoginInput{Email: u.Email, Password: "wrong password", ClientIP: f.ip})
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT action || ':' || outcome || ':' || reason, client_ip, detail::text
		FROM auth.audit_events WHERE resource = $1 OR detail->>'email' = $2 ORDER BY id`, "user/"+u.ID, u.Email)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ event, ip, detail string }
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.event, &x.ip, &x.detail)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"auth.registered:success:", "auth.login:success:", "auth.refresh_reuse:denied:family_revoked",
		"auth.login:success:", "auth.logout:success:", "auth.login_failed:failure:bad_password",
		"auth.login_failed:failure:bad_password", "auth.login_throttled:denied:throttled_account_client",
	}
	if len(got) != len(want) {
		t.Fatalf("audit rows = %v, want %v", got, want)
	}
	for i, r := range got {
		if r.event != want[i] {
			t.Errorf("audit row %d = %q, want %q", i, r.event, want[i])
		}
		for _, secret := range []string{pw, tok.Refresh, next.Refresh, tok.Access.Raw} {
			if strings.Contains(r.detail, secret) {
				t.Errorf("audit row %d detail %s holds a secret", i, r.detail)
			}
		}
	}
	if got[1].ip != f.ip {
		t.Errorf("login audit client_ip = %q, want %q", got[1].ip, f.ip)
	}
}

// TestAuditChainVerifies is not parallel: it reads the whole chain.
func TestAuditChainVerifies(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	u, pw := f.register(t)
	f.login(t, u.Email, pw)
	f.svc.Login(ctx, domain.LoginInput{Email: "x-" + uuid.NewString() + "@example.com", Password: "nope nope", ClientIP: f.ip})
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	log := audit.New("auth", f.clock.Now)
	if _, err := log.Seal(ctx, conn); err != nil {
		t.Fatal(err)
	}
	rep, err := log.Verify(ctx, conn)
	if err != nil || rep.Sealed < 3 {
		t.Errorf("Verify() = %+v, %v; want at least 3 rows and an intact chain", rep, err)
	}
}
