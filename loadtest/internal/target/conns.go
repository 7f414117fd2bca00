package target

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"sync"
	"time"
)

// MaxCallerPools bounds how many callers PerCaller gives a connection pool
// of their own; callers past it share one. Well above the users a scenario
// runs (scenario.MaxUsers), so in practice every user has their own.
const MaxCallerPools = 4096

// PerCaller is an http.RoundTripper that gives each caller, told apart by
// the request's Authorization header, connections of its own, as each
// user's device has in real traffic. One shared HTTP/2 transport would put
// every simulated user on one connection (Go opens another only when the
// server's stream limit is reached): all their requests would be read by
// the gateway's one goroutine for that connection, and each request's
// bearer token (about 600 bytes) would evict the others from the 4 KiB
// HPACK table both ends keep per connection, so the server would decode
// every token in full on every request. A real client sends its token once
// per connection and an index afterwards; measuring the shared-connection
// case would charge the gateway for a load generator's shortcut.
//
// Requests without an Authorization header (log-in, health probes) share
// one pool. New makes each pool; every transport it returns must enforce
// the same dial checks (Dialer).
type PerCaller struct {
	New func() *http.Transport

	mu     sync.RWMutex
	pools  map[string]*http.Transport
	shared *http.Transport
}

// RoundTrip sends r on its caller's connections.
func (p *PerCaller) RoundTrip(r *http.Request) (*http.Response, error) {
	return p.pool(r.Header.Get("Authorization")).RoundTrip(r)
}

// pool returns caller's transport, making it on first use. The shared
// pool (no caller, or past MaxCallerPools) is looked up under the write
// lock: only log-ins and probes use it.
func (p *PerCaller) pool(caller string) *http.Transport {
	p.mu.RLock()
	t, ok := p.pools[caller]
	p.mu.RUnlock()
	if ok {
		return t
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.pools[caller]; ok {
		return t
	}
	if p.shared == nil {
		p.shared = p.New()
	}
	if caller == "" || len(p.pools) >= MaxCallerPools {
		return p.shared
	}
	if p.pools == nil {
		p.pools = map[string]*http.Transport{}
	}
	t = p.New()
	p.pools[caller] = t
	return t
}

// CloseIdleConnections closes the idle connections of every pool; an
// http.Client's CloseIdleConnections calls it.
func (p *PerCaller) CloseIdleConnections() {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.shared != nil {
		p.shared.CloseIdleConnections()
	}
	for _, t := range p.pools {
		t.CloseIdleConnections()
	}
}

// Callers reports how many callers have a pool of their own.
func (p *PerCaller) Callers() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.pools)
}

// NewPerCaller returns the PerCaller bankload and bench-e2e send with: each
// caller's transport trusts only roots, uses no proxy from the environment
// (it would carry the traffic off this host), checks every connection with
// Dialer(allowRemote), and keeps up to idle connections.
func NewPerCaller(roots *x509.CertPool, allowRemote bool, idle int) *PerCaller {
	return &PerCaller{New: func() *http.Transport {
		return &http.Transport{
			Proxy:               nil,
			DialContext:         Dialer(&net.Dialer{Timeout: 5 * time.Second}, allowRemote),
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 5 * time.Second,
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        idle,
			MaxIdleConnsPerHost: idle,
			IdleConnTimeout:     30 * time.Second,
		}
	}}
}
