package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	authv1 "github.com/bastion-bank/bastion/proto/bank/auth/v1"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/refusal"
)

// RefreshCookie is the cookie that carries the refresh token between the
// browser and the session routes. The __Secure- prefix makes a browser
// refuse it unless it is Secure and set over HTTPS; it cannot take the
// stricter __Host- prefix, which demands Path=/, because its path is
// scoped to the session routes: no other request of the origin carries it.
const RefreshCookie = "__Secure-bastion-refresh"

// CookiePath is the only path the refresh cookie is sent to.
const CookiePath = Prefix + "session/"

// CSRFHeader must be on every session request. A page of another origin
// cannot add a custom header to a request without a CORS preflight, which
// the gateway answers only for configured origins; the Origin check below
// refuses those too.
const CSRFHeader = "X-Bastion-Console"

// sessions is the backend-for-frontend: the four routes that turn the
// API's token pair into an access token for the page and a cookie the
// page cannot read.
type sessions struct {
	auth     authv1.AuthServiceClient
	rd       *edge.Renderer
	counters refusal.Counters
	notFound http.Handler
}

func newSessions(cfg Config) *sessions {
	counters := cfg.Counters
	if counters == nil {
		counters = refusal.Nop
	}
	return &sessions{auth: cfg.Auth, rd: cfg.Renderer, counters: counters, notFound: cfg.NotFound}
}

// tokenAnswer is what the page gets: the access token and its lifetime,
// never the refresh token. A login of a user with MFA on answers the
// ticket instead, as the API does.
type tokenAnswer struct {
	AccessToken string `json:"accessToken,omitempty"`
	TokenType   string `json:"tokenType,omitempty"`
	ExpiresIn   int32  `json:"expiresIn"`
	MFARequired bool   `json:"mfaRequired,omitempty"`
	MFAToken    string `json:"mfaToken,omitempty"`
}

// pair is the part of the API's login, MFA-login and refresh answers the
// session routes use.
type pair interface {
	GetAccessToken() string
	GetRefreshToken() string
	GetExpiresIn() int32
}

func (s *sessions) serve(w http.ResponseWriter, r *http.Request, route string) {
	var h func(http.ResponseWriter, *http.Request) error
	switch route {
	case "login":
		h = s.login
	case "mfa":
		h = s.loginMFA
	case "refresh":
		h = s.refresh
	case "logout":
		h = s.logout
	default:
		s.notFound.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.rd.Status(w, r, http.StatusMethodNotAllowed, edge.CodeMethodNotAllowed, "method not allowed on this route")
		return
	}
	if !sameOrigin(r) {
		s.counters.AuthzDenied(r.Context(), "console_cross_site")
		s.rd.Error(w, r, errs.New(errs.Permission, "the console's session routes answer only the console itself"))
		return
	}
	if err := h(w, r); err != nil {
		s.rd.Error(w, r, err)
	}
}

// sameOrigin is the CSRF defence of the session routes, in three layers:
// the custom header (no cross-site form or simple request can send one),
// an Origin header naming exactly this server (browsers send it on every
// POST), and, where the browser sends Fetch Metadata, "same-origin". The
// cookie's SameSite=Strict is a fourth, kept by the browser.
//
// Each header must be there once, and the Origin in the one form a browser
// serializes it (RFC 6454: scheme "://" host [":" port], nothing else), so
// no parser's leniency (a query, a fragment, user info, a second value
// read past by Header.Get) stands between what was checked and what was
// sent.
func sameOrigin(r *http.Request) bool {
	if r.Host == "" || !only(r.Header, CSRFHeader, "1") || !only(r.Header, "Origin", "https://"+r.Host) {
		return false
	}
	site := r.Header.Values("Sec-Fetch-Site")
	return len(site) == 0 || only(r.Header, "Sec-Fetch-Site", "same-origin")
}

// only reports whether h carries key exactly once, with value want.
func only(h http.Header, key, want string) bool {
	v := h.Values(key)
	return len(v) == 1 && v[0] == want
}

// decode reads the JSON body into v, refusing unknown fields as the API does.
func decode(r *http.Request, v any) error {
	const detail = "malformed request: the body must be one JSON object with only this operation's fields"
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errs.Wrap(errs.Invalid, detail, err)
	}
	if dec.More() {
		return errs.New(errs.Invalid, detail)
	}
	return nil
}

func (s *sessions) login(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	resp, err := s.auth.Login(r.Context(), &authv1.LoginRequest{Email: in.Email, Password: in.Password})
	if err != nil {
		return err
	}
	if resp.GetMfaRequired() {
		return writeJSON(w, tokenAnswer{MFARequired: true, MFAToken: resp.GetMfaToken(), ExpiresIn: resp.GetExpiresIn()})
	}
	return issue(w, resp)
}

func (s *sessions) loginMFA(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		MFAToken string `json:"mfaToken"`
		Code     string `json:"code"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	resp, err := s.auth.LoginMFA(r.Context(), &authv1.LoginMFARequest{MfaToken: in.MFAToken, Code: in.Code})
	if err != nil {
		return err
	}
	return issue(w, resp)
}

// refresh spends the cookie's refresh token and rotates the cookie. A
// refused token (spent, revoked, expired) is 401 and also clears the
// cookie, so a dead session does not linger in the browser. No cookie at
// all is not a failed authentication but the state of every signed-out
// visitor, whose page asks on each load: that is 200 with no token, so it
// neither spends the network's failed-authentication budget nor shows as
// an error in the browser's console.
func (s *sessions) refresh(w http.ResponseWriter, r *http.Request) error {
	if err := decode(r, &struct{}{}); err != nil {
		return err
	}
	c, err := r.Cookie(RefreshCookie)
	if err != nil || c.Value == "" {
		return writeJSON(w, struct{}{})
	}
	resp, err := s.auth.Refresh(r.Context(), &authv1.RefreshRequest{RefreshToken: c.Value})
	if err != nil {
		if errs.KindOf(err) == errs.Unauthenticated {
			http.SetCookie(w, refreshCookie("", -1))
		}
		return err
	}
	return issue(w, resp)
}

// logout ends the session of the access token in the Authorization header
// and of the cookie's refresh token (the API's logout), then clears the
// cookie. Without a live access token it ends the session through the
// cookie (logoutByRefresh). The cookie is cleared even when the API refuses: the browser's
// session is over either way.
func (s *sessions) logout(w http.ResponseWriter, r *http.Request) error {
	if err := decode(r, &struct{}{}); err != nil {
		return err
	}
	http.SetCookie(w, refreshCookie("", -1))
	c, err := r.Cookie(RefreshCookie)
	if err != nil || c.Value == "" {
		return errs.New(errs.Unauthenticated, "no console session")
	}
	_, err = s.auth.Logout(r.Context(), &authv1.LogoutRequest{RefreshToken: c.Value})
	if errs.KindOf(err) == errs.Unauthenticated {
		// The page's access token has expired, or the page lost it on a
		// reload: the cookie still proves the session, and clearing the
		// cookie alone would leave its refresh token alive at the auth
		// service until it expires.
		err = s.logoutByRefresh(r.Context(), c.Value)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, struct{}{})
}

// logoutByRefresh ends the session of refresh without a live access token:
// it spends refresh for a fresh pair (a spent, revoked or expired token is
// refused there, the session being over already) and calls the API's
// logout with that pair, as the page would have.
func (s *sessions) logoutByRefresh(ctx context.Context, refresh string) error {
	p, err := s.auth.Refresh(ctx, &authv1.RefreshRequest{RefreshToken: refresh})
	if err != nil {
		return err
	}
	st, ok := edge.StateFrom(ctx)
	if !ok {
		return errs.Wrap(errs.Internal, "", errors.New("console: logout outside the edge middleware"))
	}
	fresh := &edge.State{
		RequestID:     st.RequestID,
		ClientIP:      st.ClientIP,
		Authorization: []string{"Bearer " + p.GetAccessToken()},
	}
	_, err = s.auth.Logout(edge.WithState(ctx, fresh), &authv1.LogoutRequest{RefreshToken: p.GetRefreshToken()})
	return err
}

// issue sets the refresh cookie and answers the access token.
func issue(w http.ResponseWriter, p pair) error {
	if p.GetAccessToken() == "" || p.GetRefreshToken() == "" {
		return errs.Wrap(errs.Internal, "", errors.New("console: the auth service answered no token pair"))
	}
	http.SetCookie(w, refreshCookie(p.GetRefreshToken(), 0))
	return writeJSON(w, tokenAnswer{AccessToken: p.GetAccessToken(), TokenType: "Bearer", ExpiresIn: p.GetExpiresIn()})
}

// refreshCookie is the refresh cookie with value; maxAge < 0 deletes it.
// It is a session cookie (no expiry): closing the browser ends the
// console session, while the refresh token itself lives on at the auth
// service until it is used, revoked or expires.
func refreshCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     RefreshCookie,
		Value:    value,
		Path:     CookiePath,
		MaxAge:   maxAge,
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	}
}

func writeJSON(w http.ResponseWriter, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return errs.Wrap(errs.Internal, "", err)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	return nil
}
