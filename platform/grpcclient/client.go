// Package grpcclient dials other Bastion services: mutual TLS that checks the
// server's identity (not just the CA), a deadline on every call, trace
// propagation, and errors turned back into error kinds (platform/grpcerr) so a
// service can act on them without ever parsing remote text.
package grpcclient

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/stats"

	"github.com/bastion-bank/bastion/platform/grpcerr"
)

// DefaultTimeout bounds every call that arrives without a deadline of its own.
const DefaultTimeout = 5 * time.Second

// Options configures a connection.
type Options struct {
	Timeout      time.Duration                 // default deadline per call; DefaultTimeout if zero
	StatsHandler stats.Handler                 // optional (otelgrpc.NewClientHandler)
	Unary        []grpc.UnaryClientInterceptor // run inside the deadline and error mapping
}

// serviceConfig balances calls round robin over every address the target
// resolves to. With one address (a ClusterIP Service, a Compose name) it
// behaves like the default pick_first; with one address per replica (a
// headless Service) each call goes to the next ready replica instead of every
// call of a client sticking to one replica for the connection's life.
const serviceConfig = `{"loadBalancingConfig": [{"round_robin": {}}]}`

// reconnect is how a connection retries a service that went away. gRPC's
// default backoff grows to 120 s, so after a 45 s outage the first attempt
// that could succeed came up to 30 s after the service was back, and every
// call failed meanwhile. Attempts start 250 ms apart and the gap never
// grows past MaxReconnectDelay (plus 20 % jitter), so a service that comes
// back is used again within about that long, however long it was gone; the
// cost is one failed TCP connect per gap per client while it is down.
var reconnect = grpc.ConnectParams{
	Backoff: backoff.Config{
		BaseDelay:  250 * time.Millisecond,
		Multiplier: 1.6,
		Jitter:     0.2,
		MaxDelay:   MaxReconnectDelay,
	},
	MinConnectTimeout: 5 * time.Second,
}

// MaxReconnectDelay is the longest gap between attempts to reach a service
// that is down.
const MaxReconnectDelay = 3 * time.Second

// Dial returns a lazily connecting client for target. creds must be the mTLS
// client credentials for the named server (platform/mtls ClientCredentials).
func Dial(target string, creds credentials.TransportCredentials, opts Options) (*grpc.ClientConn, error) {
	if creds == nil {
		return nil, errors.New("grpcclient: credentials are required: calls between services use mTLS only")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	unary := append([]grpc.UnaryClientInterceptor{deadline(opts.Timeout), mapErrors}, opts.Unary...)
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithChainUnaryInterceptor(unary...),
		grpc.WithChainStreamInterceptor(mapStreamErrors),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithConnectParams(reconnect),
	}
	if opts.StatsHandler != nil {
		dial = append(dial, grpc.WithStatsHandler(opts.StatsHandler))
	}
	return grpc.NewClient(target, dial...)
}

func deadline(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

func mapErrors(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return grpcerr.FromError(invoker(ctx, method, req, reply, cc, opts...))
}

func mapStreamErrors(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, grpcerr.FromError(err)
	}
	return s, nil
}
