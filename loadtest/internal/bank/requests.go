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

// The header values every call shares. Each is one slice that all
// requests share, where Header.Set would allocate a new one per header per
// request; nothing writes into a value slice in place (Set and Del replace
// it), so sharing is safe.
var (
	acceptJSON      = []string{ContentTypeJSON}
	contentTypeJSON = []string{ContentTypeJSON}
	userAgent       = []string{load.UserAgent}
)

// Header returns the headers of a call: JSON content type when it has a
// body, a bearer token when token is not empty, an Idempotency-Key when key
// is not empty, and bankload's User-Agent. Keys are written in canonical
// form, so none needs canonicalising.
func Header(token, key string, hasBody bool) http.Header {
	h := make(http.Header, 5)
	h["Accept"] = acceptJSON
	h["User-Agent"] = userAgent
	if hasBody {
		h["Content-Type"] = contentTypeJSON
	}
	if token != "" {
		h["Authorization"] = []string{"Bearer " + token}
	}
	if key != "" {
		h["Idempotency-Key"] = []string{key}
	}
	return h
}

// call builds a request with a JSON body (nil for none).
func call(endpoint, method, path, token, key string, body []byte) load.Request {
	return load.Request{Endpoint: endpoint, Method: method, Path: path, Header: Header(token, key, body != nil), Body: body}
}

// jsonObject encodes name/value pairs of strings as one JSON object, in the
// order given: what json.Marshal of a map[string]string decodes to, without
// the map, the reflection and the sorting, in one allocation.
func jsonObject(kv ...string) []byte {
	n := 2
	for _, s := range kv {
		n += len(s) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, kv[i])
		b = append(b, ':')
		b = appendJSONString(b, kv[i+1])
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Printable ASCII other than
// '"' and the backslash stands for itself; anything else (control characters,
// non-ASCII, invalid UTF-8) goes through encoding/json, which escapes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Register is POST /v1/auth/register.
func Register(email, password, displayName string) load.Request {
	return call(EndpointRegister, http.MethodPost, "/v1/auth/register", "", "",
		jsonObject("email", email, "password", password, "displayName", displayName))
}

// Login is POST /v1/auth/login.
func Login(email, password string) load.Request {
	return call(EndpointLogin, http.MethodPost, "/v1/auth/login", "", "",
		jsonObject("email", email, "password", password))
}

// LoginMFA is POST /v1/auth/login/mfa: the second step of a login with MFA
// on, with the ticket the first step answered and a one-time code.
func LoginMFA(ticket, code string) load.Request {
	return call(EndpointLoginMFA, http.MethodPost, "/v1/auth/login/mfa", "", "",
		jsonObject("mfaToken", ticket, "code", code))
}

// Me is GET /v1/users/me.
func Me(token string) load.Request {
	return call(EndpointMe, http.MethodGet, "/v1/users/me", token, "", nil)
}

// OpenAccount is POST /v1/accounts.
func OpenAccount(token, currency, displayName string) load.Request {
	return call(EndpointOpenAccount, http.MethodPost, "/v1/accounts", token, "",
		jsonObject("currency", currency, "displayName", displayName))
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
	return call(EndpointTransfer, http.MethodPost, "/v1/transfers", token, key, jsonObject(
		"fromAccountId", t.From, "toAccountId", t.To,
		// protojson writes 64-bit integers as strings; docs/api.md accepts both.
		"amount", strconv.FormatInt(t.Amount, 10), "currency", t.Currency, "description", t.Description,
	))
}

// Deposit is POST /v1/accounts/{id}/deposits (managers and admins only).
func Deposit(token, key, accountID string, amount int64, currency, reference string) load.Request {
	return call(EndpointDeposit, http.MethodPost, "/v1/accounts/"+url.PathEscape(accountID)+"/deposits", token, key,
		jsonObject("amount", strconv.FormatInt(amount, 10), "currency", currency, "reference", reference))
}
