package rpc_test

import (
	"context"
	"testing"
	"time"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
	"github.com/bastion-bank/bastion/services/auth/internal/password"
)

// TestOverloadedPoolShedsLoginsAtOnce holds every place in the hash pool,
// as a login storm does, and checks that further logins are refused with
// RESOURCE_EXHAUSTED and a retry delay straight away: the calls carry no
// deadline to speak of and the client's login counter is held locked, so
// one that queued (for the pool, a database connection or the row lock)
// would not return while the places and the lock are held. It also checks
// that a shed login gives nothing away and costs nothing: right, wrong and
// unknown get the same status, no attempt is charged to the throttle, and
// nothing is written to the audit log (no password was checked).
func TestOverloadedPoolShedsLoginsAtOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{cfg: domain.Config{MaxFailures: 1}, pool: password.PoolConfig{Workers: 1, Queue: 1}})
	email, pw, _ := s.user(t)
	var held []*password.Ticket
	for range 2 {
		tk, err := s.hasher.Admit(context.Background())
		if err != nil {
			t.Fatalf("Admit() = %v", err)
		}
		held = append(held, tk)
	}
	// Hold the client's login counter locked as well, as a storm's other
	// logins do: a login that reached the database would wait here.
	lock, err := s.db.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(context.Background())
	if _, err := lock.Exec(context.Background(), `INSERT INTO auth.login_counters (scope, key, count, window_start)
		VALUES ('ip', $1, 0, now()) ON CONFLICT (scope, key) DO UPDATE SET count = auth.login_counters.count`, identity.ClientKey(s.ip)); err != nil {
		t.Fatal(err)
	}
	// A generous bound, only so that a regression fails instead of hanging.
	ctx, cancel := context.WithTimeout(s.ctx(), 30*time.Second)
	defer cancel()
	var first *status.Status
	for _, tc := range []struct{ name, email, pw string }{
		{"right password", email, pw},
		{"wrong password", email, "not the password"},
		{"unknown email", "nobody-" + email, "not the password"},
	} {
		_, err := s.auth.Login(ctx, &authv1.LoginRequest{Email: tc.email, Password: tc.pw})
		wantCode(t, "Login("+tc.name+", pool full)", err, codes.ResourceExhausted)
		if got := retryAfter(err); got < time.Second {
			t.Errorf("Login(%s, pool full) retry delay = %v, want at least 1s", tc.name, got)
		}
		st := status.Convert(err)
		if first == nil {
			first = st
		} else if !proto.Equal(first.Proto(), st.Proto()) {
			t.Errorf("Login(%s, pool full) = %v, but the right password got %v: a shed must not tell accounts apart", tc.name, st.Proto(), first.Proto())
		}
	}
	var audited int
	if err := s.db.QueryRow(context.Background(), `SELECT count(*) FROM auth.audit_events
		WHERE action LIKE 'auth.login%' AND (detail->>'email' = $1 OR detail->>'email' = $2)`, email, "nobody-"+email).Scan(&audited); err != nil {
		t.Fatal(err)
	}
	if audited != 0 {
		t.Errorf("%d audit rows for shed logins, want none: nothing was decided", audited)
	}
	if err := lock.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tk := range held {
		tk.Release()
	}
	// With MaxFailures 1, a charged shed "wrong password" would throttle the
	// account now; it was not charged, so the right password gets in.
	if _, err := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: email, Password: pw}); err != nil {
		t.Errorf("Login(right password, pool free again) = %v, want success: shed attempts must not count as failures", err)
	}
}
