package bank

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/load"
)

// Client performs the set-up calls of a scenario one at a time and decodes
// their answers. Set-up is not measured, so it waits out rate limits (429
// with Retry-After) instead of failing, within bounds.
type Client struct {
	HTTP *http.Client
	Base *url.URL // scheme://host[:port]
	// Retries is how many times a 429 is waited out and retried (0: none).
	Retries int
	// MaxWait caps one Retry-After wait, so a server asking for an hour
	// does not hang the generator.
	MaxWait time.Duration
}

// StatusError is a set-up call that got an unexpected status.
type StatusError struct {
	Endpoint string
	Status   int
	Code     string // the problem+json "code", if any
	Title    string // the problem+json "title", if any
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: status %d %s %s", e.Endpoint, e.Status, e.Code, e.Title)
}

// Do sends req and decodes a 2xx JSON body into out (nil to ignore it).
// Any other status is a *StatusError.
func (c *Client) Do(ctx context.Context, req load.Request, out any) error {
	for attempt := 0; ; attempt++ {
		resp, err := load.Send(ctx, c.HTTP, c.Base, req)
		if err != nil {
			return fmt.Errorf("%s: %w", req.Endpoint, err)
		}
		if resp.Status == http.StatusTooManyRequests && attempt < c.Retries {
			if err := sleep(ctx, min(RetryAfter(resp.Header), c.MaxWait)); err != nil {
				return err
			}
			continue
		}
		if resp.Status < 200 || resp.Status > 299 {
			var p struct{ Code, Title string }
			_ = json.Unmarshal(resp.Body, &p)
			return &StatusError{Endpoint: req.Endpoint, Status: resp.Status, Code: p.Code, Title: p.Title}
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(resp.Body, out); err != nil {
			return fmt.Errorf("%s: decode response: %w", req.Endpoint, err)
		}
		return nil
	}
}

// RetryAfter reads a Retry-After of delta-seconds, defaulting to one second
// when it is missing or malformed.
func RetryAfter(h http.Header) time.Duration {
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || n < 1 {
		return time.Second
	}
	return time.Duration(n) * time.Second
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Register creates a user and returns its id.
func (c *Client) Register(ctx context.Context, email, password, displayName string) (string, error) {
	var out struct{ User struct{ ID string } }
	if err := c.Do(ctx, Register(email, password, displayName), &out); err != nil {
		return "", err
	}
	return out.User.ID, nil
}

// ErrMFARequired says the user's MFA is on: the login needs a one-time code.
var ErrMFARequired = errors.New("the login needs a one-time code: this user's MFA is on")

// Login returns an access token. A user whose MFA is on gets
// ErrMFARequired; LoginWithCode logs them in.
func (c *Client) Login(ctx context.Context, email, password string) (string, error) {
	return c.LoginWithCode(ctx, email, password, "")
}

// LoginWithCode logs in as Login does and, when the user's MFA is on,
// completes the login with code, their authenticator's current one-time
// code: the token then carries the second factor staff operations need.
// Without a code such a login is ErrMFARequired.
func (c *Client) LoginWithCode(ctx context.Context, email, password, code string) (string, error) {
	var out struct {
		AccessToken string
		MFARequired bool   `json:"mfaRequired"`
		MFAToken    string `json:"mfaToken"`
	}
	if err := c.Do(ctx, Login(email, password), &out); err != nil {
		return "", err
	}
	if out.MFARequired {
		if code == "" {
			return "", ErrMFARequired
		}
		out.AccessToken = ""
		if err := c.Do(ctx, LoginMFA(out.MFAToken, code), &out); err != nil {
			return "", err
		}
	}
	if out.AccessToken == "" {
		return "", errors.New("login answered without an access token")
	}
	return out.AccessToken, nil
}

// OpenAccount opens an account and returns its id.
func (c *Client) OpenAccount(ctx context.Context, token, currency, displayName string) (string, error) {
	var out struct{ Account struct{ ID string } }
	if err := c.Do(ctx, OpenAccount(token, currency, displayName), &out); err != nil {
		return "", err
	}
	if out.Account.ID == "" {
		return "", errors.New("open account answered without an id")
	}
	return out.Account.ID, nil
}

// ErrDepositHeld says a deposit is waiting for a second manager's approval
// (its amount reached the approval threshold), so no money arrived.
var ErrDepositHeld = errors.New("the deposit is held for a second manager's approval")

// Deposit credits an account of someone else's (the caller must be a
// manager or admin). A deposit the bank holds for approval is
// ErrDepositHeld.
func (c *Client) Deposit(ctx context.Context, token, key, accountID string, amount int64, currency, reference string) error {
	var out struct{ Transfer struct{ Status string } }
	if err := c.Do(ctx, Deposit(token, key, accountID, amount, currency, reference), &out); err != nil {
		return err
	}
	if out.Transfer.Status == "PENDING_APPROVAL" {
		return ErrDepositHeld
	}
	return nil
}
