package rpc_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// TestUnknownEmailAndWrongPasswordLookTheSame compares the whole status a
// client receives: code, message and every detail.
func TestUnknownEmailAndWrongPasswordLookTheSame(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{})
	email, _, _ := s.user(t)
	_, errWrong := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: email, Password: "not the password"})
	_, errUnknown := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: "nobody-" + email, Password: "not the password"})
	wrong, unknown := status.Convert(errWrong).Proto(), status.Convert(errUnknown).Proto()
	if status.Code(errWrong) != codes.Unauthenticated {
		t.Fatalf("Login(wrong password) = %v, want Unauthenticated", errWrong)
	}
	if !proto.Equal(wrong, unknown) {
		t.Errorf("wrong password gives %v\nunknown email gives %v\nwant identical statuses", wrong, unknown)
	}
}

func retryAfter(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

func TestThrottlingAndItsWindow(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{cfg: domain.Config{MaxFailures: 5, Window: 15 * time.Minute}})
	email, pw, _ := s.user(t)
	for i := range 5 {
		_, err := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: email, Password: "wrong password"})
		wantCode(t, "Login(wrong)", err, codes.Unauthenticated)
		if i == 0 {
			s.clock.Advance(5 * time.Minute) // the window started at the first failure
		}
	}
	_, err := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: email, Password: pw})
	wantCode(t, "Login(right password, over the threshold)", err, codes.ResourceExhausted)
	if got := retryAfter(err); got != 10*time.Minute {
		t.Errorf("retry delay = %v, want 10m (what is left of the window)", got)
	}
	s.clock.Advance(10 * time.Minute)
	if _, err := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: email, Password: pw}); err != nil {
		t.Errorf("Login(after the window) = %v, want success", err)
	}
}

func TestOverlongPasswordRefused(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{})
	email, _, _ := s.user(t)
	_, err := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: email, Password: strings.Repeat("x", 129)})
	wantCode(t, "Login(129-char password)", err, codes.InvalidArgument)
	_, err = s.auth.Register(s.ctx(), &authv1.RegisterRequest{Email: "x" + email, Password: strings.Repeat("x", 129), DisplayName: "X"})
	wantCode(t, "Register(129-char password)", err, codes.InvalidArgument)
}

func TestConcurrentRefreshOverGRPC(t *testing.T) {
	t.Parallel()
	s := newStack(t, options{})
	_, _, tok := s.user(t)
	const n = 50
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[codes.Code]int{}
		start = make(chan struct{})
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := s.auth.Refresh(s.ctx(), &authv1.RefreshRequest{RefreshToken: tok.GetRefreshToken()})
			mu.Lock()
			codes[status.Code(err)]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if codes[0] != 1 || codes[16] != n-1 {
		t.Errorf("results by code = %v, want exactly 1 OK and %d Unauthenticated", codes, n-1)
	}
}

// TestConcurrentLoginsAndRefreshes mixes logins and refreshes of one family
// under the race detector.
func TestConcurrentLoginsAndRefreshes(t *testing.T) {
	t.Parallel()
	// Attempts in flight count against the threshold (see domain's doc), so
	// this many simultaneous logins to one account need a higher one.
	s := newStack(t, options{cfg: domain.Config{MaxFailures: 50}})
	email, pw, tok := s.user(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				if _, err := s.auth.Login(s.ctx(), &authv1.LoginRequest{Email: email, Password: pw}); err != nil {
					t.Errorf("Login(concurrent) = %v", err)
				}
				return
			}
			if _, err := s.auth.Refresh(s.ctx(), &authv1.RefreshRequest{RefreshToken: tok.GetRefreshToken()}); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d refreshes of one token won, want 1", wins)
	}
}
