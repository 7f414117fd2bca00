package postgres_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// roundTrips counts network round trips: a read that follows a write.
type roundTrips struct{ n atomic.Int64 }

type countingConn struct {
	net.Conn
	rt      *roundTrips
	written atomic.Bool
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.written.Store(true)
	return c.Conn.Write(b)
}

func (c *countingConn) Read(b []byte) (int, error) {
	if c.written.Swap(false) {
		c.rt.n.Add(1)
	}
	return c.Conn.Read(b)
}

func withRoundTrips(rt *roundTrips) envOption {
	return func(c *envConfig) {
		c.pool.MaxConns = 1 // one connection, one statement cache, warmed once
		c.pool.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, rt: rt}, nil
		}
	}
}

// TestRoundTripsPerTransfer pins how many times one transfer waits for the
// database, once statements are cached: the lock batch (BEGIN rides in
// it: postgres.InBatchTx), the write batch and COMMIT: three. The audit insert (a pending row: no lock, no read
// of the chain) rides in the write batch; as its own round trip it kept the
// accounts locked while the client turned around, which the wait-event
// sampling in docs/security-controls.md measured.
func TestRoundTripsPerTransfer(t *testing.T) {
	t.Parallel()
	rt := &roundTrips{}
	e := newEnv(t, withRoundTrips(rt), withLimits(domain.Limits{ApprovalThreshold: 10_000, MaxTransfer: 50_000, DailyLimit: 1 << 50}))
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a, 50_000, "EUR")
	e.fund(a, 50_000, "EUR")
	e.fund(a, 50_000, "EUR")
	send := func(amount int64) {
		if _, err := e.svc.Transfer(context.Background(), alice, domain.TransferRequest{
			From: a, To: b, Amount: amount, Currency: "EUR", IdempotencyKey: uuid.NewString()}); err != nil {
			t.Fatal(err)
		}
	}
	send(1) // warm the statement cache
	send(2)
	tests := []struct {
		name   string
		amount int64
		want   int64
	}{
		{"posted", 3, 3},
		{"held for approval", 10_000, 3},
	}
	for _, tt := range tests {
		start := rt.n.Load()
		const n = 10
		for range n {
			send(tt.amount)
		}
		per := (rt.n.Load() - start) / n
		t.Logf("%s transfer: %d database round trips", tt.name, per)
		if per != tt.want {
			t.Errorf("round trips per %s transfer = %d, want %d", tt.name, per, tt.want)
		}
	}
}
