package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Bank speaks the gateway's public REST API (docs/api.md) for the campaign.
type Bank struct {
	HTTP *http.Client
	Base string // https://host:port of the gateway
}

// Call is one request of the API.
type Call struct {
	Label  string // the route, for messages: "POST /v1/transfers"
	Method string
	Path   string
	Token  string // bearer token; empty for none
	Key    string // Idempotency-Key; empty for none
	Body   any    // marshalled as JSON; nil for none
}

// Answer is what one attempt of a call got back.
type Answer struct {
	Status     int // 0: no HTTP answer (refused connection, reset, timeout)
	Err        error
	Replayed   bool // Idempotent-Replayed: true
	RetryAfter time.Duration
	Body       []byte
}

// maxBody bounds what is kept of an answer; a history page is far smaller.
const maxBody = 1 << 20

// Do sends one attempt of c and reads the whole answer.
func (b *Bank) Do(ctx context.Context, c Call) Answer {
	var body io.Reader
	if c.Body != nil {
		raw, err := json.Marshal(c.Body)
		if err != nil {
			return Answer{Err: err}
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, b.Base+c.Path, body)
	if err != nil {
		return Answer{Err: err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "bastion-chaos/1")
	if c.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.Key != "" {
		req.Header.Set("Idempotency-Key", c.Key)
	}
	resp, err := b.HTTP.Do(req)
	if err != nil {
		return Answer{Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return Answer{Err: fmt.Errorf("read the answer to %s: %w", c.Label, err)}
	}
	a := Answer{Status: resp.StatusCode, Replayed: resp.Header.Get("Idempotent-Replayed") == "true", Body: raw}
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 {
		a.RetryAfter = time.Duration(n) * time.Second
	}
	return a
}

// Final reports whether an answer ends a call's retries: a success, or a
// refusal the bank decided (a 4xx other than 409 "same key in flight" and
// 429 "slow down"). No answer, a 409, a 429 and any 5xx are retried with the
// same key.
func (a Answer) Final() bool {
	switch {
	case a.Status >= 200 && a.Status < 300:
		return true
	case a.Status == http.StatusConflict, a.Status == http.StatusTooManyRequests:
		return false
	}
	return a.Status >= 400 && a.Status < 500
}

// OK reports a 2xx answer.
func (a Answer) OK() bool { return a.Status >= 200 && a.Status < 300 }

// Decode unmarshals a 2xx answer's body into out.
func (a Answer) Decode(out any) error {
	if !a.OK() {
		return a.Error()
	}
	return json.Unmarshal(a.Body, out)
}

// Error describes an answer that is not a success.
func (a Answer) Error() error {
	if a.Status == 0 {
		return fmt.Errorf("no answer: %w", a.Err)
	}
	var p struct{ Code, Title, Detail string }
	_ = json.Unmarshal(a.Body, &p)
	return fmt.Errorf("status %d %s %s", a.Status, p.Code, p.Detail)
}

// TransferID returns the id of the transfer a 2xx transfer or deposit
// answer carries.
func (a Answer) TransferID() string {
	var out struct{ Transfer struct{ ID, Status string } }
	if a.Decode(&out) != nil || out.Transfer.Status != "COMPLETED" {
		return ""
	}
	return out.Transfer.ID
}

// The calls of the API the campaign makes.

// Register is POST /v1/auth/register.
func Register(email, password string) Call {
	return Call{Label: "POST /v1/auth/register", Method: http.MethodPost, Path: "/v1/auth/register",
		Body: map[string]string{"email": email, "password": password, "displayName": "Chaos campaign"}}
}

// Login is POST /v1/auth/login.
func Login(email, password string) Call {
	return Call{Label: "POST /v1/auth/login", Method: http.MethodPost, Path: "/v1/auth/login",
		Body: map[string]string{"email": email, "password": password}}
}

// OpenAccount is POST /v1/accounts, in EUR.
func OpenAccount(token string) Call {
	return Call{Label: "POST /v1/accounts", Method: http.MethodPost, Path: "/v1/accounts", Token: token,
		Body: map[string]string{"currency": "EUR", "displayName": "Chaos"}}
}

// GetAccount is GET /v1/accounts/{id}: the balance read.
func GetAccount(token, account string) Call {
	return Call{Label: "GET /v1/accounts/{id}", Method: http.MethodGet, Path: "/v1/accounts/" + url.PathEscape(account), Token: token}
}

// History is one page of GET /v1/accounts/{id}/transactions, newest first.
func History(token, account string, pageSize int, pageToken string) Call {
	q := url.Values{"pageSize": {strconv.Itoa(pageSize)}}
	if pageToken != "" {
		q.Set("pageToken", pageToken)
	}
	return Call{Label: "GET /v1/accounts/{id}/transactions", Method: http.MethodGet,
		Path: "/v1/accounts/" + url.PathEscape(account) + "/transactions?" + q.Encode(), Token: token}
}

// Transfer is POST /v1/transfers under key; the key is also the
// description, so that the books can be read back per key.
func Transfer(token, key, from, to string, amount int64) Call {
	return Call{Label: "POST /v1/transfers", Method: http.MethodPost, Path: "/v1/transfers", Token: token, Key: key,
		Body: map[string]string{"fromAccountId": from, "toAccountId": to, "amount": strconv.FormatInt(amount, 10),
			"currency": "EUR", "description": key}}
}

// Deposit is POST /v1/accounts/{id}/deposits under key, which is also the
// reference.
func Deposit(token, key, account string, amount int64) Call {
	return Call{Label: "POST /v1/accounts/{id}/deposits", Method: http.MethodPost,
		Path: "/v1/accounts/" + url.PathEscape(account) + "/deposits", Token: token, Key: key,
		Body: map[string]string{"amount": strconv.FormatInt(amount, 10), "currency": "EUR", "reference": key}}
}

// MustDo sends c until it is answered for good, for the set-up and the
// final reads, which run while nothing is broken: a transient answer is
// retried a few times, a refusal is an error.
func (b *Bank) MustDo(ctx context.Context, c Call, out any) error {
	var a Answer
	for attempt := range 20 {
		if a = b.Do(ctx, c); a.Final() {
			break
		}
		if err := sleep(ctx, time.Duration(attempt+1)*100*time.Millisecond); err != nil {
			return err
		}
	}
	if !a.OK() {
		return fmt.Errorf("%s: %w", c.Label, a.Error())
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(a.Body, out); err != nil {
		return fmt.Errorf("%s: decode the answer: %w", c.Label, err)
	}
	return nil
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
