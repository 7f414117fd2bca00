package apidoc

import (
	"net/http"

	"github.com/bastion-bank/bastion/gateway/internal/edge"
)

// problemCodes are the values of a problem's code: one per error kind of
// platform/errs, plus the refusals HTTP itself makes (edge.Code*).
// TestProblemCodesAreTheRenderersCodes holds the list to the renderer.
var problemCodes = []any{
	"INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND", "ALREADY_EXISTS",
	"FAILED_PRECONDITION", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL",
	edge.CodeMethodNotAllowed, edge.CodeTooLarge, edge.CodeMediaType,
}

// problemSchemas are the error body of every route (edge.Problem, RFC 9457).
func problemSchemas() map[string]*Schema {
	str := func(desc string) *Schema { return &Schema{Type: "string", Description: desc} }
	return map[string]*Schema{
		"Problem": {
			Type:        "object",
			Description: "An RFC 9457 problem: the body of every error answer. It never carries a stack trace, SQL, an internal host name or an upstream's error text.",
			Properties: map[string]*Schema{
				"type":      {Type: "string", Format: "uri", Description: "urn:bastion:problem: and a stable reason, e.g. insufficient-funds, separation-of-duties, or the code in lower case."},
				"title":     str("The HTTP status text."),
				"status":    {Type: "integer", Format: "int32", Description: "The HTTP status code.", Minimum: "400", Maximum: "599"},
				"detail":    str("What went wrong, safe to show."),
				"code":      {Type: "string", Enum: problemCodes, Description: "The error's kind."},
				"requestId": str("The X-Request-Id of the request, for support."),
				"violations": {
					Type:        "array",
					Description: "Present on input errors (400) only: each field that broke a rule.",
					Items:       ref("Violation"),
				},
			},
			Required: []string{"type", "title", "status", "detail", "code", "requestId"},
		},
		"Violation": {
			Type:        "object",
			Description: "One field that broke an input rule.",
			Properties: map[string]*Schema{
				"field":   str("The field's path in lowerCamelCase (e.g. amount, roles[1]), or a query parameter's name."),
				"message": str("The rule it broke."),
			},
			Required: []string{"field", "message"},
		},
	}
}

// Names of the shared response headers (components.headers).
const (
	hdrRequestID       = "X-Request-Id"
	hdrRateLimitPolicy = "RateLimit-Policy"
	hdrRateLimit       = "RateLimit"
	hdrRetryAfter      = "Retry-After"
	hdrAuthenticate    = "WWW-Authenticate"
	hdrReplayed        = "Idempotent-Replayed"
)

// headers are the response headers the document refers to.
func headers() map[string]*Header {
	str := func(desc string, required bool) *Header {
		return &Header{Description: desc, Required: required, Schema: &Schema{Type: "string"}}
	}
	return map[string]*Header{
		hdrRequestID:       str("The request's id: the client's own X-Request-Id if well formed, else a generated one.", true),
		hdrRateLimitPolicy: str(`The budget that applied (IETF RateLimit fields): "name";q=requests;w=window seconds.`, false),
		hdrRateLimit:       str(`What is left of it: "name";r=remaining;t=seconds until it refills.`, false),
		hdrRetryAfter: {Description: "Seconds to wait before trying again.", Required: true,
			Schema: &Schema{Type: "integer", Format: "int32", Minimum: "1"}},
		hdrAuthenticate: str(`Bearer, with error="invalid_token" when a token was presented (RFC 6750).`, true),
		hdrReplayed: {Description: "true when this is the stored answer to an earlier request with the same Idempotency-Key and body; no money moved this time.",
			Schema: &Schema{Type: "string", Enum: []any{"true"}}},
	}
}

func headerRef(name string) *Header { return &Header{Ref: "#/components/headers/" + name} }

// problemResponse is one error status of an operation.
func problemResponse(status int, when string) *Response {
	h := map[string]*Header{hdrRequestID: headerRef(hdrRequestID)}
	switch status {
	case http.StatusUnauthorized:
		h[hdrAuthenticate] = headerRef(hdrAuthenticate)
	case http.StatusTooManyRequests:
		h[hdrRetryAfter] = headerRef(hdrRetryAfter)
		h[hdrRateLimitPolicy] = headerRef(hdrRateLimitPolicy)
		h[hdrRateLimit] = headerRef(hdrRateLimit)
	case http.StatusServiceUnavailable:
		// Only a busy ledger says when to come back; other 503s carry no
		// Retry-After, so the header is optional here.
		h[hdrRetryAfter] = &Header{
			Description: "Present when the ledger was too busy to queue a transfer or deposit: seconds to wait before sending it again with the same Idempotency-Key.",
			Schema:      &Schema{Type: "integer", Format: "int32", Minimum: "1"},
		}
	}
	return &Response{
		Description: http.StatusText(status) + ": " + when + ".",
		Headers:     h,
		Content:     map[string]MediaType{edge.ProblemContentType: {Schema: ref("Problem")}},
	}
}
