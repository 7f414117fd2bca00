package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
)

// Admin server limits. Only a scraper talks to this port, so they are tight:
// a slow or hostile client cannot hold connections open.
const (
	adminReadHeaderTimeout = 5 * time.Second
	adminReadTimeout       = 10 * time.Second
	adminWriteTimeout      = 30 * time.Second
	adminIdleTimeout       = 60 * time.Second
	adminMaxHeaderBytes    = 16 << 10
)

// StartAdmin binds Config.MetricsAddr and serves GET /metrics on it in the
// background until ctx ends or Shutdown is called. Binding happens before it
// returns, so a taken port fails start-up instead of going unnoticed. With no
// MetricsAddr it does nothing. An address beyond loopback is allowed (a
// Kubernetes scraper needs the pod address) but logged as a warning.
func (t *Telemetry) StartAdmin(ctx context.Context) error {
	if t.cfg.MetricsAddr == "" {
		t.logger.Info("metrics listener off: no metrics address")
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.admin != nil {
		return errs.New(errs.Conflict, "telemetry: admin server already started or shut down")
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", t.cfg.MetricsAddr)
	if err != nil {
		return errs.Wrap(errs.Unavailable, "telemetry: listen on metrics address", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", t.metrics)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: adminReadHeaderTimeout,
		ReadTimeout:       adminReadTimeout,
		WriteTimeout:      adminWriteTimeout,
		IdleTimeout:       adminIdleTimeout,
		MaxHeaderBytes:    adminMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(t.logger.Handler(), slog.LevelWarn),
	}
	t.admin, t.adminAddr = srv, ln.Addr().String()
	if !isLoopback(ln.Addr()) {
		t.logger.Warn("metrics endpoint is reachable beyond loopback", slog.String("addr", t.adminAddr))
	} else {
		t.logger.Info("metrics endpoint listening", slog.String("addr", t.adminAddr))
	}
	go t.serveAdmin(ctx, srv, ln)
	return nil
}

// serveAdmin runs srv until it is shut down, by Shutdown or by ctx ending.
func (t *Telemetry) serveAdmin(ctx context.Context, srv *http.Server, ln net.Listener) {
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.logger.Error("metrics server stopped", slog.Any("error", err))
	}
}

// AdminAddr returns the address the admin server is bound to (useful with
// port 0 in tests), or "" before StartAdmin.
func (t *Telemetry) AdminAddr() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.adminAddr
}

// isLoopback reports whether addr only accepts local connections.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
