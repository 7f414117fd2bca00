package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/deploy/devstack"
)

// TestBannerCommandsWork pastes the "Try it" commands of the `make run`
// banner into bash against this stack, as a newcomer would, and checks that
// the deposit and the transfer both complete: the quick start stays true
// under the separation of duties (the admin deposits into a customer's
// account, never their own) and staff MFA (the admin logs in with a code
// from deploy/cmd/totp, as the banner says).
//
// The admin is one of its own, with MFA enrolled through the API and its
// secret in a file as `make run` keeps the bootstrap admin's: each code is
// accepted once, and the bootstrap admin's codes belong to the other tests.
func TestBannerCommandsWork(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	adm := register(t, "banner-admin")
	admin(t).do("PUT", "/v1/users/"+adm.userID+"/roles", map[string]any{"roles": []string{"admin", "user"}}).must(t, 200, "make an admin")
	adm.login("correct horse battery")
	adm.enrolTOTP()
	secretFile := filepath.Join(t.TempDir(), devstack.AdminTOTPFile)
	// The step the enrolment spent: the command prints a later one.
	usedSteps.Lock()
	spent := usedSteps.last[adm.otp]
	usedSteps.Unlock()
	if err := os.WriteFile(secretFile, []byte(adm.otp+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretFile+".last-step", []byte(strconv.FormatInt(spent, 10)), 0o600); err != nil {
		t.Fatal(err)
	}
	totpCmd, err := filepath.Abs(filepath.Join("..", "cmd", "totp"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	err = devstack.WriteBanner(&b, devstack.BannerInfo{Addrs: bank.addrs, CAFile: bank.caFile, LogDir: bank.logDir,
		AdminEmail: adm.email, AdminPassword: "correct horse battery", AdminTOTPFile: secretFile,
		TOTPCommand: "go run " + totpCmd + " " + secretFile})
	if err != nil {
		t.Fatal(err)
	}
	_, script, ok := strings.Cut(b.String(), "Try it (copy and paste, in this order):")
	if !ok {
		t.Fatalf("banner has no commands to try:\n%s", b.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-eu", "-o", "pipefail", "-c", script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the banner's commands failed: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	// register → {user}; "A B"; deposit → {transfer}; transfer → {transfer}.
	if len(lines) != 4 {
		t.Fatalf("the banner's commands printed %d lines, want 4:\n%s", len(lines), out)
	}
	for i, want := range map[int]string{2: `"kind":"DEPOSIT"`, 3: `"kind":"TRANSFER"`} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], `"status":"COMPLETED"`) {
			t.Errorf("banner step %d printed %s, want a COMPLETED %s", i+1, lines[i], want)
		}
	}
}
