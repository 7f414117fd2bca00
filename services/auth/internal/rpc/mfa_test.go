package rpc_test

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"google.golang.org/grpc/codes"

	"github.com/bastion-bank/bastion/services/auth/internal/mfa"
)

// amrOf reads the amr claim of a JWT without verifying anything.
func amrOf(t *testing.T, raw string) []string {
	t.Helper()
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AMR []string `json:"amr"`
	}
	if err := jsonUnmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.AMR
}

// TestMFAThroughTheChain enrols a user's TOTP and logs in with it through
// the real chain and signer, and checks that a staff operation refuses an
// admin token without a code.
func TestMFAThroughTheChain(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{})
	email, pw, tok := s.user(t)
	if got := amrOf(t, tok.GetAccessToken()); !slices.Equal(got, []string{"pwd"}) {
		t.Errorf("password login amr = %v, want [pwd]", got)
	}
	if tok.MfaRequired != nil || tok.MfaToken != nil {
		t.Errorf("a login without MFA carries MFA fields: %v", tok)
	}
	me := s.as(tok.GetAccessToken())
	_, err := s.auth.VerifyTOTP(me, &authv1.VerifyTOTPRequest{Code: "12345"})
	wantCode(t, "VerifyTOTP(five digits)", err, codes.InvalidArgument)
	_, err = s.auth.VerifyTOTP(me, &authv1.VerifyTOTPRequest{Code: "123456"})
	wantCode(t, "VerifyTOTP(no enrolment)", err, codes.FailedPrecondition)

	e, err := s.auth.EnrollTOTP(me, &authv1.EnrollTOTPRequest{})
	if err != nil || e.GetSecret() == "" || !strings.HasPrefix(e.GetOtpauthUri(), "otpauth://totp/") {
		t.Fatalf("EnrollTOTP() = %v, %v", e, err)
	}
	secret, err := mfa.ParseSecret(e.GetSecret())
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.auth.VerifyTOTP(me, &authv1.VerifyTOTPRequest{Code: secret.Code(mfa.Step(s.clock.Now()) - 1)})
	if err != nil || !v.GetUser().GetMfaEnabled() {
		t.Fatalf("VerifyTOTP() = %v, %v; want mfaEnabled", v, err)
	}
	full := s.loginMFA(t, email, pw, secret, 0)
	if got := amrOf(t, full.GetAccessToken()); !slices.Equal(got, []string{"pwd", "otp"}) {
		t.Errorf("MFA login amr = %v, want [pwd otp]", got)
	}
	refreshed, err := s.auth.Refresh(s.ctx(), &authv1.RefreshRequest{RefreshToken: full.GetRefreshToken()})
	if err != nil || !slices.Equal(amrOf(t, refreshed.GetAccessToken()), []string{"pwd", "otp"}) {
		t.Errorf("Refresh(MFA session) = %v; want amr [pwd otp] kept", err)
	}

	first, err := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: email, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.auth.LoginMFA(s.ctx(), &authv1.LoginMFARequest{MfaToken: first.GetMfaToken(), Code: secret.Code(mfa.Step(s.clock.Now()))})
	wantCode(t, "LoginMFA(replayed code)", err, codes.Unauthenticated)
	_, err = s.auth.LoginMFA(s.ctx(), &authv1.LoginMFARequest{MfaToken: first.GetMfaToken(), Code: secret.Code(mfa.Step(s.clock.Now()) + 1)})
	wantCode(t, "LoginMFA(spent ticket)", err, codes.Unauthenticated)
	_, err = s.auth.LoginMFA(s.ctx(), &authv1.LoginMFARequest{MfaToken: first.GetMfaToken(), Code: "abcdef"})
	wantCode(t, "LoginMFA(letters)", err, codes.InvalidArgument)
}
