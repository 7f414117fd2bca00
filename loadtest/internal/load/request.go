// Package load drives an open-model load test: requests leave at a constant
// arrival rate whatever the server's latency, the way independent clients
// arrive, so a slow server shows up as queueing and drops instead of
// quietly slowing the generator down (the coordinated-omission trap of
// closed-loop tools). Every run is bounded in requests and in time.
package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Request is one HTTP call of a scenario.
type Request struct {
	Endpoint string      // report label: a route template, never a concrete id
	Method   string      // GET, POST …
	Path     string      // absolute path with optional query, e.g. "/v1/accounts?pageSize=10"
	Header   http.Header // sent as is; Send adds User-Agent when absent
	Body     []byte      // nil for none
	Expect   []int       // the statuses the scenario expects; empty means any 2xx
}

// Response is what Send read back: enough to decode a JSON body and to
// honour Retry-After, bounded in size so a hostile or broken server cannot
// make the generator buffer without limit.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// UserAgent names the generator in the server's logs.
const UserAgent = "bastion-bankload/1"

// maxResponseBody bounds how much of a response body is kept; the rest is
// read and discarded so the connection can be reused.
const maxResponseBody = 1 << 20

// Send performs req against base (scheme and host; its path is ignored) and
// reads the whole response.
func Send(ctx context.Context, client *http.Client, base *url.URL, req Request) (*Response, error) {
	resp, err := do(ctx, client, base, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// do sends req and returns the response with its body unread. The URL is
// parsed once, from base and req.Path joined; req.Header is sent without a
// copy when it already names a User-Agent (the bank package's headers do),
// and is never written to.
func do(ctx context.Context, client *http.Client, base *url.URL, req Request) (*http.Response, error) {
	// Only a path: a generator must not be able to aim a request anywhere
	// but the target. A path that starts with one '/' and not two holds no
	// scheme, host or user, so joined to base it stays on base's host; the
	// parsed URL is checked again below all the same.
	if !strings.HasPrefix(req.Path, "/") || strings.HasPrefix(req.Path, "//") {
		return nil, fmt.Errorf("request path %q must be an absolute path", req.Path)
	}
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, base.Scheme+"://"+base.Host+req.Path, body)
	if err != nil {
		return nil, fmt.Errorf("request path %q must be an absolute path: %w", req.Path, err)
	}
	if u := hr.URL; u.Scheme != base.Scheme || u.Host != base.Host || u.User != nil || !strings.HasPrefix(u.Path, "/") {
		return nil, fmt.Errorf("request path %q must be an absolute path", req.Path)
	}
	if _, ok := req.Header["User-Agent"]; ok {
		hr.Header = req.Header
	} else {
		if req.Header != nil {
			hr.Header = req.Header.Clone()
		}
		hr.Header.Set("User-Agent", UserAgent)
	}
	return client.Do(hr)
}
