package load_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/bank"
	"github.com/bastion-bank/bastion/loadtest/internal/load"
	"github.com/bastion-bank/bastion/loadtest/internal/report"
)

// The generator's own code on the request path, without the network: a
// request built as bench-e2e builds it, sent through an http.Client set up
// as bankload's (timeout, no redirects) to a RoundTripper that answers at
// once as the gateway does, its body read and the outcome recorded. What
// HTTP/2, TLS and the kernel cost is left out: BenchmarkLoadgen* in
// cmd/benche2e measures the whole loop over HTTPS.
//
//	go test -run '^$' -bench BenchmarkRequestPath -benchmem -count 6 -cpu 2 ./loadtest/internal/load/

// gatewayAnswer answers every request with status and body, with the
// gateway's security headers.
type gatewayAnswer struct {
	status int
	body   []byte
}

func (a gatewayAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	h := http.Header{"Content-Type": {"application/json"}, "X-Content-Type-Options": {"nosniff"},
		"Strict-Transport-Security": {"max-age=63072000; includeSubDomains"}, "Cache-Control": {"no-store"},
		"Referrer-Policy": {"no-referrer"}, "X-Frame-Options": {"DENY"}, "Cross-Origin-Resource-Policy": {"same-origin"},
		"Content-Security-Policy": {"default-src 'none'; frame-ancestors 'none'"}}
	return &http.Response{StatusCode: a.status, Header: h, Body: io.NopCloser(bytes.NewReader(a.body)), ContentLength: int64(len(a.body)), Request: r}, nil
}

func benchmarkRequestPath(b *testing.B, answer gatewayAnswer, next func(i int) load.Request) {
	client := &http.Client{Transport: answer, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := &url.URL{Scheme: "https", Host: "127.0.0.1:8443"}
	rec := report.NewRecorder()
	ctx := b.Context()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rec.Record(load.Measure(ctx, client, base, next(i)))
	}
	if s := rec.Summarize(time.Second); s.Unexpected != 0 || s.TransportErrors != 0 {
		b.Fatalf("report %+v, want every answer expected", s)
	}
}

var (
	pathToken = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0." + strings.Repeat("eyJzdWIiOiIz", 30) + ".c2lnbmF0dXJl"
	pathFrom  = "5f0e8a52-1c3b-4d7e-8f6a-9b2c4d1e3f50"
	pathTo    = "8d2a6c14-7e9f-4b3a-a5c1-2e4f6d8b0a93"
)

func BenchmarkRequestPathTransfer(b *testing.B) {
	answer := gatewayAnswer{http.StatusOK, []byte(`{"transfer":{"id":"0b5c2f7e-6a0d-4f1e-9a43-3c1f5d8e2b71","kind":"TRANSFER","fromAccountId":"` + pathFrom +
		`","toAccountId":"` + pathTo + `","amount":"17","currency":"EUR","description":"bench-e2e","status":"COMPLETED",` +
		`"initiatedBy":"3e7b9d21-4a6c-48f0-b2d5-7c9e1f3a5b60","createdAt":"2026-12-07T15:55:42.123456Z"}}`)}
	benchmarkRequestPath(b, answer, func(i int) load.Request {
		return bank.Transfer(pathToken, "bench-abcd1234-r1-"+strconv.Itoa(i), bank.TransferBody{
			From: pathFrom, To: pathTo, Amount: int64(1 + i%100), Currency: "EUR", Description: "bench-e2e"})
	})
}

func BenchmarkRequestPathRead(b *testing.B) {
	answer := gatewayAnswer{http.StatusOK, []byte(`{"account":{"id":"` + pathFrom + `","ownerId":"3e7b9d21-4a6c-48f0-b2d5-7c9e1f3a5b60",` +
		`"currency":"EUR","displayName":"Load 0","status":"ACTIVE","balance":{"currency":"EUR","amount":"999982"},` +
		`"availableBalance":{"currency":"EUR","amount":"999982"},"createdAt":"2026-12-07T15:55:40.654321Z"}}`)}
	benchmarkRequestPath(b, answer, func(int) load.Request { return bank.GetAccount(pathToken, pathFrom) })
}
