package domain_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
	"github.com/bastion-bank/bastion/services/auth/internal/mfa"
)

// code returns the code of secret for the step offset steps from now on
// the fixture's clock.
func (f *fixture) code(secret mfa.Secret, offset int64) string {
	return secret.Code(mfa.Step(f.clock.Now()) + offset)
}

// enrol turns MFA on for u through the API, verifying with the code of the
// previous step, and returns the secret.
func (f *fixture) enrol(t *testing.T, me identity.User) mfa.Secret {
	t.Helper()
	ctx := context.Background()
	e, err := f.svc.EnrollTOTP(ctx, me, f.ip)
	if err != nil {
		t.Fatalf("EnrollTOTP() = %v", err)
	}
	secret, err := mfa.ParseSecret(e.Secret)
	if err != nil {
		t.Fatalf("EnrollTOTP() secret %q: %v", e.Secret, err)
	}
	if _, err := f.svc.VerifyTOTP(ctx, me, f.code(secret, -1), f.ip); err != nil {
		t.Fatalf("VerifyTOTP() = %v", err)
	}
	return secret
}

// password logs in with the password of a user with MFA on and returns the ticket.
func (f *fixture) password(t *testing.T, email, pw string) string {
	t.Helper()
	tok, err := f.svc.Login(context.Background(), domain.LoginInput{Email: email, Password: pw, ClientIP: f.ip})
	if err != nil || tok.MFAToken == "" || tok.Access.Raw != "" || tok.Refresh != "" {
		t.Fatalf("Login(MFA on) = %+v, %v; want only a ticket", tok, err)
	}
	return tok.MFAToken
}

// familyAMR reads how the session of tok was proven.
func familyAMR(t *testing.T, f *fixture, u domain.User, tok domain.Tokens) []string {
	t.Helper()
	var amr []string
	if err := f.db.QueryRow(context.Background(), `SELECT amr FROM auth.refresh_families WHERE id = $1`,
		familyOf(t, f, u, tok)).Scan(&amr); err != nil {
		t.Fatal(err)
	}
	return amr
}

func TestTOTPEnrolmentAndLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	u, pw := f.register(t)
	tok := f.login(t, u.Email, pw)
	me := caller(u, tok)
	if got := familyAMR(t, f, u, tok); !slices.Equal(got, []string{"pwd"}) {
		t.Errorf("password login amr = %v, want [pwd]", got)
	}
	if f.ctr.get("login:ok") != 1 || f.ctr.get("login:mfa_required") != 0 {
		t.Errorf("counters %v after a login without MFA, want one ok and no MFA step", f.ctr.events)
	}

	if _, err := f.svc.VerifyTOTP(ctx, me, "123456", f.ip); !errors.Is(err, domain.ErrNoEnrolment) {
		t.Errorf("VerifyTOTP(no enrolment) = %v, want ErrNoEnrolment", err)
	}
	e, err := f.svc.EnrollTOTP(ctx, me, f.ip)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.URI, "otpauth://totp/Bastion:") || !strings.Contains(e.URI, "secret="+e.Secret) {
		t.Errorf("enrolment URI = %q", e.URI)
	}
	secret, _ := mfa.ParseSecret(e.Secret)
	if _, err := f.svc.VerifyTOTP(ctx, me, f.code(secret, 2), f.ip); errs.KindOf(err) != errs.Invalid {
		t.Errorf("VerifyTOTP(code two steps ahead) = %v, want invalid", err)
	}
	if got, _ := f.svc.GetMe(ctx, me); got.MFAEnabled {
		t.Fatal("a wrong code turned MFA on")
	}
	got, err := f.svc.VerifyTOTP(ctx, me, f.code(secret, 0), f.ip)
	if err != nil || !got.MFAEnabled {
		t.Fatalf("VerifyTOTP() = %+v, %v; want MFA on", got, err)
	}

	ticket := f.password(t, u.Email, pw)
	full, err := f.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: ticket, Code: f.code(secret, 1), ClientIP: f.ip})
	if err != nil || full.Access.Raw == "" || full.Refresh == "" {
		t.Fatalf("LoginMFA() = %+v, %v; want tokens", full, err)
	}
	if got := familyAMR(t, f, u, full); !slices.Equal(got, []string{"pwd", "otp"}) {
		t.Errorf("MFA login amr = %v, want [pwd otp]", got)
	}
	again, err := f.svc.Refresh(ctx, full.Refresh, f.ip)
	if err != nil || !slices.Equal(familyAMR(t, f, u, again), []string{"pwd", "otp"}) {
		t.Errorf("Refresh(MFA session) = %v; want the session to keep amr [pwd otp]", err)
	}
	events := auditEvents(t, u.ID)
	for _, want := range []string{"auth.mfa_enrolment:success:", "auth.mfa_enabled:failure:bad_otp", "auth.mfa_enabled:success:",
		"auth.login:success:mfa_required"} {
		if !slices.Contains(events, want) {
			t.Errorf("audit trail %v lacks %s", events, want)
		}
	}
	// Two completed logins: the password-only one before MFA, and the MFA one.
	if n := countOf(events, "auth.login:success:"); n != 2 {
		t.Errorf("audit trail %v has %d completed logins, want 2 (the MFA login must be audited)", events, n)
	}
	if f.ctr.get("login:mfa_required") != 1 || f.ctr.get("login:ok_mfa") != 1 {
		t.Errorf("counters %v, want one password step and one MFA login", f.ctr.events)
	}
}

// TestTOTPCodesAreSingleUse: a code is accepted once, an older one never
// after a newer, and another user's never.
func TestTOTPCodesAreSingleUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{MaxFailures: 50})
	u, pw := f.register(t)
	secret := f.enrol(t, caller(u, f.login(t, u.Email, pw))) // spends the previous step
	v, vpw := f.register(t)
	otherSecret := f.enrol(t, caller(v, f.login(t, v.Email, vpw)))

	login := func(code string) error {
		_, err := f.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: f.password(t, u.Email, pw), Code: code, ClientIP: f.ip})
		return err
	}
	if err := login(f.code(secret, 0)); err != nil {
		t.Fatalf("LoginMFA(this step) = %v", err)
	}
	for _, tt := range []struct {
		name, code, reason string
	}{
		{"the same code again", f.code(secret, 0), "otp_replayed"},
		{"the previous step's code, after this step's", f.code(secret, -1), "otp_replayed"},
		{"another user's code", f.code(otherSecret, 1), "bad_otp"},
		{"a code three steps ahead", f.code(secret, 3), "bad_otp"},
	} {
		before := f.ctr.get("login_failed:" + tt.reason)
		if err := login(tt.code); !errors.Is(err, domain.ErrInvalidCredentials) {
			t.Errorf("LoginMFA(%s) = %v, want ErrInvalidCredentials", tt.name, err)
		}
		if f.ctr.get("login_failed:"+tt.reason) != before+1 {
			t.Errorf("LoginMFA(%s) not counted as %s", tt.name, tt.reason)
		}
	}
	if err := login(f.code(secret, 1)); err != nil {
		t.Errorf("LoginMFA(next step) = %v; a newer code still works", err)
	}
	// When the clock moves on, the code of the new step works.
	f.clock.Advance(2 * mfa.Period)
	if err := login(f.code(secret, 0)); err != nil {
		t.Errorf("LoginMFA(a minute later) = %v", err)
	}
	if !slices.Contains(auditEvents(t, u.ID), "auth.login_failed:failure:otp_replayed") {
		t.Errorf("a replayed code was not audited: %v", auditEvents(t, u.ID))
	}
}

func TestMFATickets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{MaxFailures: 50})
	u, pw := f.register(t)
	secret := f.enrol(t, caller(u, f.login(t, u.Email, pw)))
	v, vpw := f.register(t)
	f.enrol(t, caller(v, f.login(t, v.Email, vpw)))

	spent := f.password(t, u.Email, pw)
	if _, err := f.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: spent, Code: f.code(secret, 0), ClientIP: f.ip}); err != nil {
		t.Fatal(err)
	}
	wrongFirst := f.password(t, u.Email, pw)
	if _, err := f.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: wrongFirst, Code: "000000", ClientIP: f.ip}); err == nil {
		t.Fatal("LoginMFA(wrong code) succeeded")
	}
	// Another user's ticket with my code: the ticket names the user, so my
	// code is simply a wrong code for them.
	theirs := f.password(t, v.Email, vpw)
	if _, err := f.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: theirs, Code: f.code(secret, 1), ClientIP: f.ip}); !errors.Is(err, domain.ErrInvalidCredentials) {
		t.Errorf("LoginMFA(another user's ticket, my code) = %v, want ErrInvalidCredentials", err)
	}
	expired := f.password(t, u.Email, pw)
	f.clock.Advance(6 * time.Minute)
	for _, tt := range []struct{ name, ticket string }{
		{"a spent ticket", spent},
		{"a ticket spent by a wrong code", wrongFirst},
		{"a ticket spent by another user's code", theirs},
		{"an expired ticket", expired},
		{"a made-up ticket", strings.Repeat("A", 43)},
		{"not a ticket", "nope"},
	} {
		if _, err := f.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: tt.ticket, Code: f.code(secret, 0), ClientIP: f.ip}); !errors.Is(err, domain.ErrInvalidMFAToken) {
			t.Errorf("LoginMFA(%s) = %v, want ErrInvalidMFAToken", tt.name, err)
		}
	}
}

// TestWrongCodesAreThrottled: a wrong code is a failed login, and the right
// password does not clear the count for a user with MFA on, so codes cannot
// be guessed by logging in again between guesses.
func TestWrongCodesAreThrottled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{MaxFailures: 3})
	u, pw := f.register(t)
	f.enrol(t, caller(u, f.login(t, u.Email, pw)))
	for i := range 3 {
		ticket := f.password(t, u.Email, pw)
		if _, err := f.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: ticket, Code: "000000", ClientIP: f.ip}); !errors.Is(err, domain.ErrInvalidCredentials) {
			t.Fatalf("guess %d = %v, want ErrInvalidCredentials", i, err)
		}
	}
	if _, err := f.svc.Login(ctx, domain.LoginInput{Email: u.Email, Password: pw, ClientIP: f.ip}); errs.KindOf(err) != errs.RateLimited {
		t.Errorf("Login(right password after 3 wrong codes) = %v, want rate limited", err)
	}
	// A refused code starts no session: only the enrolment's login has one.
	var families int
	if err := f.db.QueryRow(ctx, `SELECT count(DISTINCT family_id) FROM auth.refresh_tokens WHERE user_id = $1`, u.ID).Scan(&families); err != nil {
		t.Fatal(err)
	}
	if families != 1 {
		t.Errorf("%d refresh families after 3 wrong codes, want 1 (the enrolment's login): a refused code started a session", families)
	}
}

func countOf(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

// TestReenrolmentNeedsACode: with MFA on, a session proven by a password
// only (one from before MFA was turned on, say stolen) cannot replace the
// second factor; a session proven with a code can, and the old secret works
// until the new one is verified.
func TestReenrolmentNeedsACode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{MaxFailures: 50})
	u, pw := f.register(t)
	old := caller(u, f.login(t, u.Email, pw))
	secret := f.enrol(t, old)
	if _, err := f.svc.EnrollTOTP(ctx, old, f.ip); !errors.Is(err, domain.ErrMFAReenrolment) {
		t.Fatalf("EnrollTOTP(password-only session, MFA on) = %v, want ErrMFAReenrolment", err)
	}
	if got := f.ctr.get("mfa_enrolment:refused"); got != 1 {
		t.Errorf("refused re-enrolments counted %d, want 1", got)
	}
	full, err := f.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: f.password(t, u.Email, pw), Code: f.code(secret, 0), ClientIP: f.ip})
	if err != nil {
		t.Fatal(err)
	}
	strong := caller(u, full)
	strong.AMR = []string{"pwd", "otp"}
	e, err := f.svc.EnrollTOTP(ctx, strong, f.ip)
	if err != nil {
		t.Fatalf("EnrollTOTP(session with a code) = %v", err)
	}
	if _, err := f.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: f.password(t, u.Email, pw), Code: f.code(secret, 1), ClientIP: f.ip}); err != nil {
		t.Errorf("the old secret stopped working before the new one was verified: %v", err)
	}
	next, _ := mfa.ParseSecret(e.Secret)
	f.clock.Advance(2 * mfa.Period)
	if _, err := f.svc.VerifyTOTP(ctx, strong, f.code(next, 0), f.ip); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: f.password(t, u.Email, pw), Code: f.code(secret, 1), ClientIP: f.ip}); err == nil {
		t.Error("the replaced secret still works")
	}
	if _, err := f.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: f.password(t, u.Email, pw), Code: f.code(next, 1), ClientIP: f.ip}); err != nil {
		t.Errorf("the new secret does not work: %v", err)
	}
}

// TestTOTPSecretsAreSealedAtRest: the table holds no secret in clear, and a
// sealed secret moved to another user's row does not open.
func TestTOTPSecretsAreSealedAtRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{MaxFailures: 50})
	u, pw := f.register(t)
	secret := f.enrol(t, caller(u, f.login(t, u.Email, pw)))
	v, vpw := f.register(t)
	f.enrol(t, caller(v, f.login(t, v.Email, vpw)))
	var stored []byte
	if err := f.db.QueryRow(ctx, `SELECT secret FROM auth.totp WHERE user_id = $1`, u.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	for _, clear := range [][]byte{secret, []byte(secret.Base32())} {
		if bytes.Contains(stored, clear) {
			t.Fatal("the stored TOTP secret is in clear")
		}
	}
	if _, err := f.db.Exec(ctx, `UPDATE auth.totp SET secret = $2 WHERE user_id = $1`, v.ID, stored); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: f.password(t, v.Email, vpw), Code: f.code(secret, 0), ClientIP: f.ip})
	if errs.KindOf(err) != errs.Internal {
		t.Errorf("LoginMFA(with another user's sealed secret) = %v, want an internal error", err)
	}
}

// TestDisabledMeanwhile: a user disabled between the password and the code
// gets no token, and the answer is a wrong password's; an access token that
// outlives the user's disabling by its last second cannot touch the second
// factor either.
func TestDisabledMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	admin := f.admin(t)
	u, pw := f.register(t)
	me := caller(u, f.login(t, u.Email, pw))
	secret := f.enrol(t, me)
	ticket := f.password(t, u.Email, pw)
	if _, err := f.svc.DisableUser(ctx, domain.SetStatusInput{Actor: admin, UserID: u.ID, Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: ticket, Code: f.code(secret, 0), ClientIP: f.ip}); !errors.Is(err, domain.ErrInvalidCredentials) {
		t.Errorf("LoginMFA(disabled meanwhile) = %v, want ErrInvalidCredentials", err)
	}
	if _, err := f.svc.EnrollTOTP(ctx, me, f.ip); errs.KindOf(err) != errs.Unauthenticated {
		t.Errorf("EnrollTOTP(session of a disabled user) = %v, want unauthenticated", err)
	}
}

func TestEnsureAdminTOTP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, domain.Config{})
	admin := f.admin(t)
	u, _ := f.svc.GetMe(ctx, admin)
	secret := mfa.NewSecret()
	if ok, err := f.svc.EnsureAdminTOTP(ctx, strings.ToUpper(u.Email), secret); !ok || err != nil {
		t.Fatalf("EnsureAdminTOTP() = %v, %v; want enrolled", ok, err)
	}
	if ok, err := f.svc.EnsureAdminTOTP(ctx, u.Email, mfa.NewSecret()); ok || err != nil {
		t.Errorf("EnsureAdminTOTP(again, another secret) = %v, %v; want the enrolled secret kept", ok, err)
	}
	ticket := f.password(t, u.Email, "admin password 123")
	if _, err := f.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: ticket, Code: f.code(secret, 0), ClientIP: f.ip}); err != nil {
		t.Errorf("LoginMFA(the bootstrap secret) = %v", err)
	}
	plain, _ := f.register(t)
	if _, err := f.svc.EnsureAdminTOTP(ctx, plain.Email, secret); err == nil {
		t.Error("EnsureAdminTOTP enrolled a user who is not an admin")
	}
}

// TestMFAResetMeanwhile: a ticket from before the user's MFA was reset (the
// runbook's reset, or an enrolment row gone altogether) proves the password
// only, so the code step must refuse it as a wrong code is refused: no
// session, ErrInvalidCredentials, counted and audited as "mfa_off". A code
// of the old secret is offered, so only the missing enrolment can refuse it.
func TestMFAResetMeanwhile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		reset string // run on the user's id between the password and the code
	}{
		{"reset by the runbook", `UPDATE auth.totp SET secret = NULL, enabled_at = NULL, pending = NULL, pending_at = NULL,
			updated_at = now() WHERE user_id = $1`},
		{"reset while a new enrolment is pending", `UPDATE auth.totp SET secret = NULL, enabled_at = NULL, pending = secret,
			pending_at = now(), updated_at = now() WHERE user_id = $1`},
		{"enrolment row gone", `DELETE FROM auth.totp WHERE user_id = $1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFixture(t, domain.Config{})
			u, pw := f.register(t)
			secret := f.enrol(t, caller(u, f.login(t, u.Email, pw)))
			ticket := f.password(t, u.Email, pw)
			if tag, err := f.db.Exec(ctx, tt.reset, u.ID); err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("reset MFA: %v rows, %v; want 1 row", tag.RowsAffected(), err)
			}
			families := len(userFamilies(t, f, u.ID))
			got, err := f.svc.LoginMFA(ctx, domain.LoginMFAInput{Ticket: ticket, Code: f.code(secret, 0), ClientIP: f.ip})
			if !errors.Is(err, domain.ErrInvalidCredentials) || got.Access.Raw != "" || got.Refresh != "" {
				t.Errorf("LoginMFA(ticket from before the MFA reset) = access %q, refresh given %v, %v; want no tokens and ErrInvalidCredentials",
					got.Access.Raw, got.Refresh != "", err)
			}
			if n := len(userFamilies(t, f, u.ID)); n != families {
				t.Errorf("LoginMFA(ticket from before the MFA reset) started %d sessions, want none", n-families)
			}
			if n := f.ctr.get("login_failed:mfa_off"); n != 1 {
				t.Errorf("login_failed:mfa_off counted %d times, want 1 (counters %v)", n, f.ctr.events)
			}
			if events := auditEvents(t, u.ID); !slices.Contains(events, "auth.login_failed:failure:mfa_off") {
				t.Errorf("audit trail %v lacks the refusal auth.login_failed:failure:mfa_off", events)
			}
		})
	}
}

// userFamilies returns the ids of the refresh families of user id.
func userFamilies(t *testing.T, f *fixture, id string) []string {
	t.Helper()
	rows, err := f.db.Query(context.Background(), `SELECT id::text FROM auth.refresh_families WHERE user_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
