package console

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/platform/errs"
)

// brokenAuth is an auth service that fails every call with an internal
// error (whose cause no client may see), or answers a refresh with half a
// token pair.
type brokenAuth struct {
	authv1.AuthServiceClient
	halfPair bool
}

func (b brokenAuth) Refresh(context.Context, *authv1.RefreshRequest, ...grpc.CallOption) (*authv1.RefreshResponse, error) {
	if b.halfPair {
		return &authv1.RefreshResponse{AccessToken: "access-x"}, nil
	}
	return nil, errs.Wrap(errs.Internal, "", errors.New("pq: relation auth.sessions at db-7.internal:5432"))
}

func (b brokenAuth) Logout(context.Context, *authv1.LogoutRequest, ...grpc.CallOption) (*authv1.LogoutResponse, error) {
	return nil, errs.Wrap(errs.Internal, "", errors.New("pq: relation auth.sessions at db-7.internal:5432"))
}

// TestRefreshTokenNeverShown: the browser's refresh token, on every path of
// the session routes (rotated, spent, refused cross-site, malformed body,
// the auth service failing or answering half a pair), appears in no answer
// body and in no line the console's renderer logs; an internal failure's
// cause stays in the log and out of the answer, and leaves the cookie alone.
func TestRefreshTokenNeverShown(t *testing.T) {
	t.Parallel()
	const secret = "refresh-secret-0123456789"
	var logs bytes.Buffer
	handler := func(auth authv1.AuthServiceClient) http.Handler {
		h, err := Handler(Config{
			Auth:     auth,
			Renderer: &edge.Renderer{Logger: slog.New(slog.NewJSONHandler(&logs, nil))},
			NotFound: http.NotFoundHandler(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	good := handler(&fakeAuth{issued: secret})
	broken := handler(brokenAuth{})
	half := handler(brokenAuth{halfPair: true})
	tests := []struct {
		name  string
		h     http.Handler
		route string
		body  string
		edit  func(*http.Request)
		want  int
	}{
		{"refresh", good, "refresh", `{}`, nil, http.StatusOK},
		{"spent refresh", good, "refresh", `{}`, nil, http.StatusUnauthorized},
		{"cross-site refresh", good, "refresh", `{}`, func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, http.StatusForbidden},
		{"malformed refresh", good, "refresh", `{"refreshToken":"` + secret + `"}`, nil, http.StatusBadRequest},
		{"auth failing on refresh", broken, "refresh", `{}`, nil, http.StatusInternalServerError},
		{"auth answering half a pair", half, "refresh", `{}`, nil, http.StatusInternalServerError},
		{"auth failing on logout", broken, "logout", `{}`, nil, http.StatusInternalServerError},
	}
	for _, tt := range tests {
		rec := post(tt.h, tt.route, tt.body, secret, tt.edit)
		if rec.Code != tt.want {
			t.Errorf("%s = %d %s, want %d", tt.name, rec.Code, rec.Body, tt.want)
		}
		if strings.Contains(rec.Body.String(), secret) {
			t.Errorf("%s answer %s carries the refresh token", tt.name, rec.Body)
		}
		for _, leak := range []string{"pq:", "db-7", "token pair"} {
			if strings.Contains(rec.Body.String(), leak) {
				t.Errorf("%s answer %s leaks %q", tt.name, rec.Body, leak)
			}
		}
		if c := refreshCookieOf(t, rec); tt.want == http.StatusInternalServerError && tt.route == "refresh" && c != nil {
			t.Errorf("%s set cookie %v; an outage must not end the browser's session", tt.name, c)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the renderer logged the refresh token:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "db-7.internal") {
		t.Errorf("the internal failure's cause was not logged for the operator:\n%s", logs.String())
	}
}
