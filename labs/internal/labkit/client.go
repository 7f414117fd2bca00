package labkit

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"strings"
	"time"
)

// Client is one caller of the lab's public API: a client network of its
// own (sent as X-Forwarded-For, which the lab's gateway trusts from
// loopback only) and, once logged in, a session.
type Client struct {
	base     string
	http     *http.Client
	IP       string
	Token    string
	Refresh  string
	UserID   string
	Email    string
	Password string
}

// Response is a decoded answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// Str walks the JSON body along keys and returns the value there as text.
func (r Response) Str(keys ...string) string {
	var v any = r.JSON
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

// Problem is the problem document's type and status, for evidence.
func (r Response) Problem() string {
	if t := r.Str("type"); t != "" {
		return fmt.Sprintf("%d %s", r.Status, strings.TrimPrefix(t, "urn:bastion:problem:"))
	}
	return fmt.Sprint(r.Status)
}

// NewClient returns a client of st's gateway from a random client network
// in 198.18.0.0/15 (RFC 2544's benchmarking range), trusting only the
// lab's CA.
func NewClient(st State) (*Client, error) {
	pem, err := os.ReadFile(st.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", st.CAFile)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true,
		MaxIdleConnsPerHost: 64}
	n, _ := rand.Int(rand.Reader, big.NewInt(2*256*254))
	i := n.Int64()
	ip := fmt.Sprintf("198.%d.%d.%d", 18+i/(256*254), (i/254)%256, i%254+1)
	return &Client{base: "https://" + st.Gateway, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, IP: ip}, nil
}

// Clone returns a client from the same network with no session.
func (c *Client) Clone() *Client { return &Client{base: c.base, http: c.http, IP: c.IP} }

// Do sends a request. body may be nil, a string sent as is, or a value sent
// as JSON; hdr holds extra header name/value pairs.
func (c *Client) Do(ctx context.Context, method, path string, body any, hdr ...string) (Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return Response{}, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return Response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Forwarded-For", c.IP)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	out := Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	_ = json.Unmarshal(raw, &out.JSON)
	return out, nil
}

// Must sends a request like Do and returns an error unless the answer has
// status want; what names the step.
func (c *Client) Must(ctx context.Context, want int, what, method, path string, body any, hdr ...string) (Response, error) {
	r, err := c.Do(ctx, method, path, body, hdr...)
	if err != nil {
		return r, fmt.Errorf("%s: %w", what, err)
	}
	if r.Status != want {
		return r, fmt.Errorf("%s: status %d, want %d: %s", what, r.Status, want, r.Body)
	}
	return r, nil
}

// NewKey returns a fresh Idempotency-Key.
func NewKey() string { return "lab-" + strings.ToLower(rand.Text()) }

// Register creates a customer with a random email and password, from a new
// client network, and logs them in.
func Register(ctx context.Context, st State, prefix string) (*Client, error) {
	c, err := NewClient(st)
	if err != nil {
		return nil, err
	}
	c.Email = fmt.Sprintf("%s.%s@lab.example", prefix, strings.ToLower(rand.Text()[:8]))
	c.Password = "lab-" + rand.Text()
	r, err := c.Must(ctx, 200, "register "+prefix, "POST", "/v1/auth/register", map[string]any{"email": c.Email, "password": c.Password, "displayName": prefix})
	if err != nil {
		return nil, err
	}
	c.UserID = r.Str("user", "id")
	return c, c.Login(ctx)
}

// Login logs c in with its email and password.
func (c *Client) Login(ctx context.Context) error {
	r, err := c.Must(ctx, 200, "login "+c.Email, "POST", "/v1/auth/login", map[string]any{"email": c.Email, "password": c.Password})
	if err != nil {
		return err
	}
	if r.Str("accessToken") == "" {
		return fmt.Errorf("login %s: no access token (is BANK_STAFF_MFA off in the lab?): %s", c.Email, r.Body)
	}
	c.Token, c.Refresh = r.Str("accessToken"), r.Str("refreshToken")
	return nil
}

// Admin logs in the lab's bootstrap admin (staff MFA is off in lab stacks).
func Admin(ctx context.Context, st State) (*Client, error) {
	c, err := NewClient(st)
	if err != nil {
		return nil, err
	}
	c.Email, c.Password = st.AdminEmail, st.AdminPass
	if err := c.Login(ctx); err != nil {
		return nil, err
	}
	r, err := c.Must(ctx, 200, "admin me", "GET", "/v1/users/me", nil)
	if err != nil {
		return nil, err
	}
	c.UserID = r.Str("user", "id")
	return c, nil
}

// Manager registers a user, has admin make them a manager and logs them in
// again, so that their token carries the role.
func Manager(ctx context.Context, st State, admin *Client, prefix string) (*Client, error) {
	m, err := Register(ctx, st, prefix)
	if err != nil {
		return nil, err
	}
	if _, err := admin.Must(ctx, 200, "grant manager", "PUT", "/v1/users/"+m.UserID+"/roles", map[string]any{"roles": []string{"user", "manager"}}); err != nil {
		return nil, err
	}
	return m, m.Login(ctx)
}

// OpenAccount opens an account in currency for c.
func (c *Client) OpenAccount(ctx context.Context, currency string) (string, error) {
	r, err := c.Must(ctx, 200, "open account", "POST", "/v1/accounts", map[string]any{"currency": currency, "displayName": "lab"})
	return r.Str("account", "id"), err
}

// Deposit deposits amount minor units into account as c (staff).
func (c *Client) Deposit(ctx context.Context, account string, amount int64, currency string) (Response, error) {
	return c.Do(ctx, "POST", "/v1/accounts/"+account+"/deposits",
		map[string]any{"amount": fmt.Sprint(amount), "currency": currency, "reference": "lab deposit"}, "Idempotency-Key", NewKey())
}

// Transfer sends amount from one account to another with the given key.
func (c *Client) Transfer(ctx context.Context, key, from, to string, amount int64, currency string) (Response, error) {
	return c.Do(ctx, "POST", "/v1/transfers",
		map[string]any{"fromAccountId": from, "toAccountId": to, "amount": fmt.Sprint(amount), "currency": currency, "description": "lab"},
		"Idempotency-Key", key)
}

// Balance returns an account's booked balance as the API shows it to c.
func (c *Client) Balance(ctx context.Context, account string) (string, error) {
	r, err := c.Must(ctx, 200, "get account", "GET", "/v1/accounts/"+account, nil)
	if err != nil {
		return "", err
	}
	if b := r.Str("account", "balance", "amount"); b != "" {
		return b, nil
	}
	return "0", nil
}
