package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bastion-bank/bastion/platform/grpcclient"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/mtls"
	"github.com/bastion-bank/bastion/platform/pki"
	"github.com/bastion-bank/bastion/platform/service/servicetest"
	"github.com/bastion-bank/bastion/platform/wire"
	"github.com/bastion-bank/bastion/services/auth/internal/password"
)

// totpKeyFile writes a key for BANK_TOTP_KEY_FILE.
func totpKeyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "totp.key")
	if err := os.WriteFile(path, []byte(strings.Repeat("0123456789abcdef", 4)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigProblemsReportedTogether(t *testing.T) {
	t.Parallel()
	serve := []string{"auth"}
	servicetest.RejectsBadConfiguration(t, run, []servicetest.BadConfiguration{
		{Name: "nothing set", Args: serve, Vars: map[string]string{}, Want: []string{"BANK_DATABASE_URL", "BANK_PKI_DIR", "BANK_KEYS_DIR", "BANK_TOTP_KEY_FILE"}},
		{Name: "an admin TOTP secret without an admin", Args: serve, Vars: map[string]string{"BANK_ADMIN_TOTP_SECRET_FILE": "x"}, Want: []string{"BANK_ADMIN_TOTP_SECRET_FILE"}},
		{Name: "half an admin", Args: serve, Vars: map[string]string{"BANK_ADMIN_EMAIL": "a@example.com"}, Want: []string{"BANK_ADMIN_PASSWORD"}},
		{Name: "long access tokens", Args: serve, Vars: map[string]string{"BANK_ACCESS_TOKEN_TTL": "24h"}, Want: []string{"BANK_ACCESS_TOKEN_TTL"}},
		{Name: "bad numbers", Args: serve, Vars: map[string]string{"BANK_LOGIN_MAX_FAILURES": "-1", "BANK_LOGIN_WINDOW": "soon", "BANK_LOGIN_ACCOUNT_MAX_FAILURES": "0"},
			Want: []string{"BANK_LOGIN_MAX_FAILURES", "BANK_LOGIN_WINDOW", "BANK_LOGIN_ACCOUNT_MAX_FAILURES"}},
		{Name: "a ceiling below the per-client limit", Args: serve, Vars: map[string]string{"BANK_LOGIN_MAX_FAILURES": "10", "BANK_LOGIN_ACCOUNT_MAX_FAILURES": "9"},
			Want: []string{"BANK_LOGIN_ACCOUNT_MAX_FAILURES"}},
	})
}

func TestSecretsNeverInConfigErrors(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"auth"}, servicetest.Env(map[string]string{
		"BANK_ADMIN_PASSWORD": "hunter2-hunter2", "BANK_DATABASE_URL": "postgres://u:s3cret@db/x"}), io.Discard, io.Discard)
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("run() = %v, want an error that shows no secret", err)
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"auth", "nonsense"}, servicetest.Env(nil), &out, io.Discard); err == nil {
		t.Error(`run("nonsense") = nil, want an error`)
	}
	if err := run(context.Background(), []string{"auth", "help"}, servicetest.Env(nil), &out, io.Discard); err != nil || !strings.Contains(out.String(), "rotate-keys") {
		t.Errorf(`run("help") = %v, %q; want usage`, err, out.String())
	}
	dir := filepath.Join(t.TempDir(), "keys")
	out.Reset()
	if err := run(context.Background(), []string{"auth", "rotate-keys"}, servicetest.Env(map[string]string{"BANK_KEYS_DIR": dir}), &out, io.Discard); err != nil {
		t.Fatalf(`run("rotate-keys") = %v`, err)
	}
	kid := strings.TrimSpace(strings.TrimPrefix(out.String(), "new signing key"))
	info, err := os.Stat(filepath.Join(dir, kid+".key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("rotated key %q: %v, mode %v; want a 0600 file", kid, err, info.Mode().Perm())
	}
}

// TestRunServes starts the real program through run, waits for health, and
// uses it as the gateway would.
func TestRunServes(t *testing.T) {
	t.Parallel()
	pkiDir := t.TempDir()
	if err := pki.Ensure(pkiDir, []string{"auth", "gateway"}, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	addr, metrics := grpctest.FreeAddr(t), grpctest.FreeAddr(t)
	env := map[string]string{
		"BANK_DATABASE_URL":       migratedDatabase(t),
		"BANK_PKI_DIR":            pkiDir,
		"BANK_KEYS_DIR":           filepath.Join(t.TempDir(), "keys"),
		"BANK_TOTP_KEY_FILE":      totpKeyFile(t),
		"BANK_AUTH_ADDR":          addr,
		"BANK_METRICS_ADDR":       metrics,
		"BANK_ADMIN_EMAIL":        "Root@Example.com",
		"BANK_ADMIN_PASSWORD":     "bootstrap password",
		"BANK_LOG_LEVEL":          "warn",
		"BANK_LOGIN_MAX_FAILURES": "3",
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() { done <- run(ctx, []string{"auth"}, servicetest.Env(env), io.Discard, &logs) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cancel()
			// WaitServing takes run's result if run ends early: do not
			// wait for a second one for ever.
			select {
			case <-done:
			case <-time.After(15 * time.Second):
			}
		}
	})

	src, err := mtls.NewSource(mtls.FilesIn(pkiDir, "gateway"), "bastion.local")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpcclient.Dial(addr, src.ClientCredentials("auth"), grpcclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	grpctest.WaitServing(t, conn, done)

	auth := authv1.NewAuthServiceClient(conn)
	gw := metadata.AppendToOutgoingContext(context.Background(), wire.ClientIP, "198.51.100.7")
	tok, err := auth.Login(gw, &authv1.LoginRequest{Email: "root@example.com", Password: "bootstrap password"})
	if err != nil {
		t.Fatalf("Login(bootstrapped admin) = %v", err)
	}
	me, err := auth.GetMe(metadata.AppendToOutgoingContext(gw, "authorization", "Bearer "+tok.GetAccessToken()), &authv1.GetMeRequest{})
	if err != nil || !contains(me.GetUser().GetRoles(), "admin") {
		t.Fatalf("GetMe(admin) = %v, %v; want the admin role", me, err)
	}
	if _, err := auth.Login(gw, &authv1.LoginRequest{Email: "nobody@example.com", Password: "wrong password"}); err == nil {
		t.Fatal("Login(unknown) succeeded")
	}
	wantRoleDenialAudited(t, auth, gw, env["BANK_DATABASE_URL"])
	servicetest.WaitAuditSealed(t, env["BANK_DATABASE_URL"], "auth")
	body := get(t, "http://"+metrics+"/metrics")
	if !strings.Contains(body, `bank_login_failures_total{`) || !strings.Contains(body, `reason="unknown_email"`) {
		t.Errorf("metrics do not count the failed login:\n%s", grep(body, "bank_"))
	}
	for _, secret := range []string{"bootstrap password", tok.GetAccessToken(), tok.GetRefreshToken()} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the logs contain a secret")
		}
	}

	cancel()
	stopped = true
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run() after cancel = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop within 15 s of cancellation")
	}
}

// wantRoleDenialAudited has a plain user call the admin-only SetUserRoles
// (to make themselves admin) and checks that the refusal is in auth's audit
// trail, under the one action name every service uses for a denial.
func wantRoleDenialAudited(t *testing.T, auth authv1.AuthServiceClient, gw context.Context, dbURL string) {
	t.Helper()
	const email, pw = "plain@example.com", "a plain user's password"
	if _, err := auth.Register(gw, &authv1.RegisterRequest{Email: email, Password: pw, DisplayName: "Plain"}); err != nil {
		t.Fatalf("Register = %v", err)
	}
	tok, err := auth.Login(gw, &authv1.LoginRequest{Email: email, Password: pw})
	if err != nil {
		t.Fatalf("Login(plain user) = %v", err)
	}
	asPlain := metadata.AppendToOutgoingContext(gw, "authorization", "Bearer "+tok.GetAccessToken())
	me, err := auth.GetMe(asPlain, &authv1.GetMeRequest{})
	if err != nil {
		t.Fatalf("GetMe(plain user) = %v", err)
	}
	id := me.GetUser().GetId()
	_, err = auth.SetUserRoles(asPlain, &authv1.SetUserRolesRequest{UserId: id, Roles: []string{"admin"}})
	if status.Code(errors.Unwrap(err)) != codes.PermissionDenied {
		t.Fatalf("SetUserRoles(as a plain user) = %v, want PermissionDenied", err)
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT action || ' ' || outcome || ' ' || reason || ' ' ||
		coalesce(detail->>'operation', '') || ' ' || client_ip FROM auth.audit_events WHERE actor = $1 AND outcome = 'denied'`, id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := "authz.denied denied role /bank.auth.v1.AuthService/SetUserRoles 198.51.100.7"
	if len(got) != 1 || got[0] != want {
		t.Errorf("denials audited for the plain user = %q, want [%q]", got, want)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grep(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestLoginCeilingDefault: the account-wide ceiling is 50 unless set, and
// follows a per-client limit raised above it rather than undercutting it.
func TestLoginCeilingDefault(t *testing.T) {
	t.Parallel()
	base := map[string]string{"BANK_DATABASE_URL": "postgres://db/x", "BANK_PKI_DIR": "p", "BANK_KEYS_DIR": "k", "BANK_TOTP_KEY_FILE": "t"}
	for _, tc := range []struct {
		env  map[string]string
		want int
	}{
		{map[string]string{}, 50},
		{map[string]string{"BANK_LOGIN_MAX_FAILURES": "100000"}, 100000},
		{map[string]string{"BANK_LOGIN_ACCOUNT_MAX_FAILURES": "7", "BANK_LOGIN_MAX_FAILURES": "3"}, 7},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range tc.env {
			env[k] = v
		}
		s, _, err := readSettings(servicetest.Env(env))
		if err != nil || s.AccountMax != tc.want {
			t.Errorf("readSettings(%v) ceiling = %d, %v; want %d", tc.env, s.AccountMax, err, tc.want)
		}
	}
}

// TestAdminErrorNamesTheVariable: a bootstrap password the policy refuses
// stops the start with the variable and the rule, not "invalid request".
func TestAdminErrorNamesTheVariable(t *testing.T) {
	t.Parallel()
	pol, err := password.NewPolicy()
	if err != nil {
		t.Fatal(err)
	}
	_, err = pol.Check("Password1234")
	got := adminError(err).Error()
	if !strings.Contains(got, "BANK_ADMIN_PASSWORD") || !strings.Contains(got, "too common") {
		t.Errorf("adminError(common password) = %q, want it to name BANK_ADMIN_PASSWORD and the rule", got)
	}
}
