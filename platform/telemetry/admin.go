package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
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
	// pprofWriteTimeout replaces adminWriteTimeout when profiling is on:
	// a CPU profile or trace answers after the seconds it samples (30 by
	// default), and net/http/pprof refuses a duration the timeout would cut.
	pprofWriteTimeout = 2 * time.Minute
)

// StartAdmin binds Config.MetricsAddr and serves GET /metrics on it in the
// background until ctx ends or Shutdown is called. Binding happens before it
// returns, so a taken port fails start-up instead of going unnoticed. With no
// MetricsAddr it does nothing. An address beyond loopback is allowed (a
// Kubernetes scraper needs the pod address) but logged as a warning.
// With Config.Pprof on, it also serves the profiles of net/http/pprof
// (pprofRoutes), and refuses to start beyond loopback unless Pprof says so.
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
	loopback := isLoopback(ln.Addr())
	if t.cfg.Pprof == PprofLoopback && !loopback {
		ln.Close()
		return errs.New(errs.Invalid, "telemetry: BANK_PPROF=1 serves profiles on loopback only, and the metrics address is not loopback: "+
			"bind it to 127.0.0.1 or ::1, or set BANK_PPROF=any-address")
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", t.metrics)
	writeTimeout := adminWriteTimeout
	if pprofOn(t.cfg.Pprof) {
		pprofRoutes(mux)
		writeTimeout = pprofWriteTimeout
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: adminReadHeaderTimeout,
		ReadTimeout:       adminReadTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       adminIdleTimeout,
		MaxHeaderBytes:    adminMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(t.logger.Handler(), slog.LevelWarn),
	}
	t.admin, t.adminAddr = srv, ln.Addr().String()
	if !loopback {
		t.logger.Warn("metrics endpoint is reachable beyond loopback", slog.String("addr", t.adminAddr))
	} else {
		t.logger.Info("metrics endpoint listening", slog.String("addr", t.adminAddr))
	}
	switch {
	case !pprofOn(t.cfg.Pprof):
	case !loopback:
		t.logger.Warn("profiling endpoints ON beyond loopback: anyone who reaches the metrics address can take CPU profiles", slog.String("addr", t.adminAddr+"/debug/pprof/"))
	default:
		t.logger.Warn("profiling endpoints ON (BANK_PPROF): for diagnosis only", slog.String("addr", t.adminAddr+"/debug/pprof/"))
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

// The values of Config.Pprof.
const (
	PprofOff        = ""
	PprofLoopback   = "1"
	PprofAnyAddress = "any-address"
)

func pprofOn(v string) bool { return v == PprofLoopback || v == PprofAnyAddress }

// pprofRoutes adds net/http/pprof's handlers to mux, and only to mux: the
// package also registers them on http.DefaultServeMux when imported, which
// no Bastion server serves. The index serves every named profile (heap,
// goroutine, allocs, block, mutex …) under its name.
func pprofRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// isLoopback reports whether addr only accepts local connections.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
