// Package bank knows Bastion's public REST contract (docs/api.md) from the
// client's side: how each call the load scenarios make is spelled, and a
// small client that performs the set-up calls whose answers a scenario needs.
package bank

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/bastion-bank/bastion/loadtest/internal/load"
)

// Endpoint labels: route templates, so reports group by route, not by id.
const (
	EndpointRegister    = "POST /v1/auth/register"
	EndpointLogin       = "POST /v1/auth/login"
	EndpointLoginMFA    = "POST /v1/auth/login/mfa"
	EndpointMe          = "GET /v1/users/me"
	EndpointOpenAccount = "POST /v1/accounts"
	EndpointListAccount = "GET /v1/accounts"
	EndpointGetAccount  = "GET /v1/accounts/{id}"
	EndpointHistory     = "GET /v1/accounts/{id}/transactions"
	EndpointDeposit     = "POST /v1/accounts/{id}/deposits"
	EndpointTransfer    = "POST /v1/transfers"
)

// ContentTypeJSON is the only media type the JSON routes accept.
const ContentTypeJSON = "application/json"

// Header returns the headers of a call: JSON content type when it has a
// body, a bearer token when token is not empty, an Idempotency-Key when key
// is not empty.
func Header(token, key string, hasBody bool) http.Header {
	h := http.Header{"Accept": {"application/json"}}
	if hasBody {
		h.Set("Content-Type", ContentTypeJSON)
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		h.Set("Idempotency-Key", key)
	}
	return h
}

// call builds a request with a JSON body (nil for none). The bodies here are
// maps and structs of strings, which always marshal.
func call(endpoint, method, path, token, key string, body any) load.Request {
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	return load.Request{Endpoint: endpoint, Method: method, Path: path, Header: Header(token, key, body != nil), Body: b}
}

// Register is POST /v1/auth/register.
func Register(email, password, displayName string) load.Request {
	return call(EndpointRegister, http.MethodPost, "/v1/auth/register", "", "",
		map[string]string{"email": email, "password": password, "displayName": displayName})
}

// Login is POST /v1/auth/login.
func Login(email, password string) load.Request {
	return call(EndpointLogin, http.MethodPost, "/v1/auth/login", "", "",
		map[string]string{"email": email, "password": password})
}

// LoginMFA is POST /v1/auth/login/mfa: the second step of a login with MFA
// on, with the ticket the first step answered and a one-time code.
func LoginMFA(ticket, code string) load.Request {
	return call(EndpointLoginMFA, http.MethodPost, "/v1/auth/login/mfa", "", "",
		map[string]string{"mfaToken": ticket, "code": code})
}

// Me is GET /v1/users/me.
func Me(token string) load.Request {
	return call(EndpointMe, http.MethodGet, "/v1/users/me", token, "", nil)
}

// OpenAccount is POST /v1/accounts.
func OpenAccount(token, currency, displayName string) load.Request {
	return call(EndpointOpenAccount, http.MethodPost, "/v1/accounts", token, "",
		map[string]string{"currency": currency, "displayName": displayName})
}

// ListAccounts is GET /v1/accounts.
func ListAccounts(token string) load.Request {
	return call(EndpointListAccount, http.MethodGet, "/v1/accounts", token, "", nil)
}

// GetAccount is GET /v1/accounts/{id}: the balance read.
func GetAccount(token, accountID string) load.Request {
	return call(EndpointGetAccount, http.MethodGet, "/v1/accounts/"+url.PathEscape(accountID), token, "", nil)
}

// History is GET /v1/accounts/{id}/transactions, newest first.
func History(token, accountID string, pageSize int) load.Request {
	path := "/v1/accounts/" + url.PathEscape(accountID) + "/transactions?pageSize=" + strconv.Itoa(pageSize)
	return call(EndpointHistory, http.MethodGet, path, token, "", nil)
}

// TransferBody is the body of POST /v1/transfers. Amount is in minor units.
type TransferBody struct {
	From, To    string
	Amount      int64
	Currency    string
	Description string
}

// Transfer is POST /v1/transfers with its required Idempotency-Key.
func Transfer(token, key string, t TransferBody) load.Request {
	return call(EndpointTransfer, http.MethodPost, "/v1/transfers", token, key, map[string]string{
		"fromAccountId": t.From, "toAccountId": t.To,
		// protojson writes 64-bit integers as strings; docs/api.md accepts both.
		"amount": strconv.FormatInt(t.Amount, 10), "currency": t.Currency, "description": t.Description,
	})
}

// Deposit is POST /v1/accounts/{id}/deposits (managers and admins only).
func Deposit(token, key, accountID string, amount int64, currency, reference string) load.Request {
	return call(EndpointDeposit, http.MethodPost, "/v1/accounts/"+url.PathEscape(accountID)+"/deposits", token, key,
		map[string]string{"amount": strconv.FormatInt(amount, 10), "currency": currency, "reference": reference})
}
