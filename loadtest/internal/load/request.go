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
	u, err := url.Parse(req.Path)
	// Only a path: a generator must not be able to aim a request anywhere but the target.
	if err != nil || u.IsAbs() || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") {
		return nil, fmt.Errorf("request path %q must be an absolute path", req.Path)
	}
	u.Scheme, u.Host = base.Scheme, base.Host
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, vs := range req.Header {
		hr.Header[k] = append([]string(nil), vs...)
	}
	if hr.Header.Get("User-Agent") == "" {
		hr.Header.Set("User-Agent", UserAgent)
	}
	resp, err := client.Do(hr)
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
