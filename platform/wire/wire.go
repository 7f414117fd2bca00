// Package wire names what Bastion's processes say to each other beyond the
// protos: the gRPC metadata keys the gateway sends and every server reads,
// and the HTTP headers they come from or turn into. Both sides import these
// names from here, so neither needs the other's package to spell one.
package wire

// Metadata keys on calls between Bastion's processes.
const (
	// RequestID carries the edge's request id, for log correlation.
	RequestID = "x-request-id"
	// ClientIP carries the end client's IP address. A server believes it
	// only from the gateway.
	ClientIP = "x-bank-client-ip"
	// Authorization carries the end user's bearer token, "Bearer <token>".
	Authorization = "authorization"
	// Replayed is the header metadata a handler sets to "true" on the
	// stored first response of a repeated idempotent request; the gateway
	// forwards it to the client as ReplayedHeader.
	Replayed = "idempotent-replayed"
)

// HTTP headers of the public API (docs/api.md) that carry one of the above.
const (
	RequestIDHeader = "X-Request-Id"
	ReplayedHeader  = "Idempotent-Replayed"
)
