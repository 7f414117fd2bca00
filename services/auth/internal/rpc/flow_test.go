package rpc_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bastion-bank/bastion/platform/authclient"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/platform/token"
)

// follower is a verifier in another process (the gateway, say): it fetches
// the JWKS and follows WatchRevocations over mTLS, as production does.
type follower struct {
	verifier *token.Verifier
	keys     *token.KeySet
	synced   chan struct{}
}

func (s *stack) follower(t *testing.T, as string) *follower {
	t.Helper()
	conn := s.dial(t, as)
	list := token.NewRevocationList()
	f := &follower{synced: make(chan struct{}, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	fl := &authclient.Follower{Client: authv1.NewRevocationServiceClient(conn), List: list,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Synced: func() { f.synced <- struct{}{} }}
	go func() { fl.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	f.keys = token.NewKeySet(authclient.KeySource(authv1.NewAuthServiceClient(conn)), token.KeySetConfig{})
	f.verifier = token.NewVerifier(f.keys, token.VerifierConfig{Issuer: grpctest.Issuer, Audience: grpctest.Audience}, list)
	select {
	case <-f.synced:
	case <-time.After(5 * time.Second):
		t.Fatal("the follower never received a snapshot")
	}
	return f
}

// refusedWithin polls until the follower refuses raw, and fails if that takes
// longer than d.
func (f *follower) refusedWithin(t *testing.T, raw string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, err := f.verifier.Verify(context.Background(), raw)
		if e, ok := errs.As(err); ok && e.Reason == token.ReasonRevoked {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("the follower still accepts the token %v after revocation (last error %v)", d, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("%s = %v, want %v", what, err, want)
	}
}

// TestSessionLifecycle walks issue 4's acceptance path end to end.
func TestSessionLifecycle(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{})
	f := s.follower(t, "gateway")
	email, pw, first := s.user(t)
	if first.GetTokenType() != "Bearer" || first.GetExpiresIn() != 900 {
		t.Errorf("Login() = type %q expires in %d, want Bearer and 900", first.GetTokenType(), first.GetExpiresIn())
	}
	if _, err := f.verifier.Verify(context.Background(), first.GetAccessToken()); err != nil {
		t.Fatalf("a verifier in another process refuses a fresh token: %v", err)
	}

	me, err := s.auth.GetMe(s.as(first.GetAccessToken()), &authv1.GetMeRequest{})
	if err != nil || me.GetUser().GetEmail() != email || me.GetUser().GetRoles()[0] != "user" {
		t.Fatalf("GetMe() = %v, %v; want %s with role user", me, err, email)
	}

	second, err := s.auth.Refresh(s.ctx(), &authv1.RefreshRequest{RefreshToken: first.GetRefreshToken()})
	if err != nil {
		t.Fatalf("Refresh(first) = %v", err)
	}
	// Reusing the spent token: 401, and the family is dead.
	_, err = s.auth.Refresh(s.ctx(), &authv1.RefreshRequest{RefreshToken: first.GetRefreshToken()})
	wantCode(t, "Refresh(reused)", err, codes.Unauthenticated)
	_, err = s.auth.Refresh(s.ctx(), &authv1.RefreshRequest{RefreshToken: second.GetRefreshToken()})
	wantCode(t, "Refresh(newest of a dead family)", err, codes.Unauthenticated)
	_, err = s.auth.GetMe(s.as(second.GetAccessToken()), &authv1.GetMeRequest{})
	wantCode(t, "GetMe(access token of a dead family)", err, codes.Unauthenticated)
	f.refusedWithin(t, second.GetAccessToken(), time.Second)

	// A fresh login, then logout: that access token is refused everywhere.
	third, err := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: strings.ToUpper(email), Password: pw})
	if err != nil {
		t.Fatalf("Login(again) = %v", err)
	}
	if _, err := s.auth.Logout(s.as(third.GetAccessToken()), &authv1.LogoutRequest{RefreshToken: third.GetRefreshToken()}); err != nil {
		t.Fatalf("Logout = %v", err)
	}
	took := f.refusedWithin(t, third.GetAccessToken(), time.Second)
	t.Logf("a logged-out token was refused by another verifier %v after Logout returned", took)
	_, err = s.auth.GetMe(s.as(third.GetAccessToken()), &authv1.GetMeRequest{})
	wantCode(t, "GetMe(after logout)", err, codes.Unauthenticated)
	_, err = s.auth.Refresh(s.ctx(), &authv1.RefreshRequest{RefreshToken: third.GetRefreshToken()})
	wantCode(t, "Refresh(after logout)", err, codes.Unauthenticated)
}

// TestLogoutEndsTheCallersSession: whatever refresh token a logout sends,
// the session its access token belongs to ends; a refresh token of another
// of the caller's sessions ends that one too.
func TestLogoutEndsTheCallersSession(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{})
	email, pw, mine := s.user(t)
	login := func() *authv1.LoginResponse {
		tok, err := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: email, Password: pw})
		if err != nil {
			t.Fatalf("Login = %v", err)
		}
		return tok
	}
	sibling, bystander := login(), login()

	// A garbage refresh token: the caller's session ends, no other.
	if _, err := s.auth.Logout(s.as(mine.GetAccessToken()), &authv1.LogoutRequest{RefreshToken: "garbage"}); err != nil {
		t.Fatalf("Logout(garbage refresh token) = %v, want success", err)
	}
	_, err := s.auth.Refresh(s.ctx(), &authv1.RefreshRequest{RefreshToken: mine.GetRefreshToken()})
	wantCode(t, "Refresh(the logged-out session)", err, codes.Unauthenticated)
	_, err = s.auth.GetMe(s.as(mine.GetAccessToken()), &authv1.GetMeRequest{})
	wantCode(t, "GetMe(the logged-out access token)", err, codes.Unauthenticated)

	// Another own session's refresh token: both sessions end.
	other := login()
	if _, err := s.auth.Logout(s.as(other.GetAccessToken()), &authv1.LogoutRequest{RefreshToken: sibling.GetRefreshToken()}); err != nil {
		t.Fatalf("Logout(another session's refresh token) = %v", err)
	}
	for name, tok := range map[string]*authv1.LoginResponse{"caller's": other, "named": sibling} {
		_, err := s.auth.Refresh(s.ctx(), &authv1.RefreshRequest{RefreshToken: tok.GetRefreshToken()})
		wantCode(t, "Refresh(the "+name+" session)", err, codes.Unauthenticated)
		_, err = s.auth.GetMe(s.as(tok.GetAccessToken()), &authv1.GetMeRequest{})
		wantCode(t, "GetMe(the "+name+" session's access token)", err, codes.Unauthenticated)
	}

	// A login that took no part is untouched.
	if _, err := s.auth.GetMe(s.as(bystander.GetAccessToken()), &authv1.GetMeRequest{}); err != nil {
		t.Errorf("GetMe(another login) = %v, want success", err)
	}
	if _, err := s.auth.Refresh(s.ctx(), &authv1.RefreshRequest{RefreshToken: bystander.GetRefreshToken()}); err != nil {
		t.Errorf("Refresh(another login) = %v, want success", err)
	}
}

// TestReconnectingFollowerResyncs: a verifier that connects after the fact
// gets every revocation still in force in its snapshot.
func TestReconnectingFollowerResyncs(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{})
	_, _, tok := s.user(t)
	if _, err := s.auth.Logout(s.as(tok.GetAccessToken()), &authv1.LogoutRequest{RefreshToken: tok.GetRefreshToken()}); err != nil {
		t.Fatal(err)
	}
	late := s.follower(t, "accounts")
	if _, err := late.verifier.Verify(context.Background(), tok.GetAccessToken()); errs.KindOf(err) != errs.Unauthenticated {
		t.Errorf("a verifier that joined after the logout accepts the token: %v", err)
	}
}

func TestRegisterDuplicateIsConflict(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{})
	email, _, _ := s.user(t)
	for _, e := range []string{email, strings.ToUpper(email), strings.ToUpper(email[:1]) + email[1:]} {
		_, err := s.auth.Register(s.ctx(), &authv1.RegisterRequest{Email: e, Password: "another password", DisplayName: "Dup"})
		wantCode(t, "Register("+e+")", err, codes.AlreadyExists)
	}
}

func TestUserNeverCarriesSecrets(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{})
	_, pw, tok := s.user(t)
	me, err := s.auth.GetMe(s.as(tok.GetAccessToken()), &authv1.GetMeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	text := me.String()
	for _, secret := range []string{pw, "argon2", tok.GetRefreshToken(), tok.GetAccessToken()} {
		if strings.Contains(text, secret) {
			t.Errorf("GetMe() response %s contains a secret", text)
		}
	}
}
