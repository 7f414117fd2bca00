package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Timeouts bound what one client can hold. A client that trickles its
// headers (slowloris) is cut off at ReadHeader, one that trickles its body
// at Read, and an idle keep-alive connection at Idle. Write must exceed the
// upstream deadline so that a slow service still gets its 503 out.
type Timeouts struct {
	ReadHeader     time.Duration
	Read           time.Duration
	Write          time.Duration
	Idle           time.Duration
	MaxHeaderBytes int
	Shutdown       time.Duration // graceful-stop budget
}

// DefaultTimeouts returns the gateway's limits for an upstream deadline.
func DefaultTimeouts(upstream time.Duration) Timeouts {
	return Timeouts{
		ReadHeader:     5 * time.Second,
		Read:           15 * time.Second,
		Write:          upstream + 10*time.Second,
		Idle:           60 * time.Second,
		MaxHeaderBytes: 32 << 10,
		Shutdown:       10 * time.Second,
	}
}

// NewHTTPServer returns a server for h that speaks only TLS with tlsCfg
// (platform/mtls PublicServerConfig: TLS 1.2 minimum, h2 and http/1.1).
func NewHTTPServer(h http.Handler, tlsCfg *tls.Config, t Timeouts, logger *slog.Logger) (*http.Server, error) {
	if tlsCfg == nil || (tlsCfg.GetCertificate == nil && len(tlsCfg.Certificates) == 0) {
		return nil, errors.New("server: a TLS configuration with a certificate is required: the gateway serves HTTPS only")
	}
	if tlsCfg.MinVersion < tls.VersionTLS12 {
		return nil, errors.New("server: TLS 1.2 is the minimum version")
	}
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    t.MaxHeaderBytes,
		// Handshake failures from scanners and plain-HTTP probes are routine
		// at an edge; they are logged at Info, not as warnings.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelInfo),
	}, nil
}

// Serve serves srv over TLS on lis until ctx ends, then shuts down
// gracefully within stop and returns. A plaintext request on lis gets no
// service: Go's server answers it with a bare 400 and closes.
func Serve(ctx context.Context, srv *http.Server, lis net.Listener, stop time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(lis, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stop)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
