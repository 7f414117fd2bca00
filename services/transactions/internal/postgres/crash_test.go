package postgres_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// TestCrashMidStreamMovesMoneyOnce cuts the service's database connections
// (pg_terminate_backend, as a crash or network cut would) again and again
// while a stream of idempotent transfers runs. Clients retry every failed
// transfer with its key until it answers. Afterwards each key moved money
// exactly once: one transfer per key, the response every client finally got
// names that transfer, and the balances add up.
func TestCrashMidStreamMovesMoneyOnce(t *testing.T) {
	t.Parallel()
	const (
		transfers = 300
		workers   = 8
	)
	app := "ledger-crash-" + uuid.NewString()[:8]
	e := newEnv(t, withAppName(app), withConns(8), withLimits(domain.Limits{ApprovalThreshold: 1 << 50, MaxTransfer: 1 << 50, DailyLimit: 1 << 50}))
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a, transfers*transfers, "EUR")

	stop := make(chan struct{})
	var kills atomic.Int64
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		killer(t, app, stop, &kills)
	}()

	keys := make([]string, transfers)
	got := make([]string, transfers)
	var failures, replayedAfterFailure atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < transfers; i = int(next.Add(1) - 1) {
				keys[i] = fmt.Sprintf("crash-%d", i)
				req := domain.TransferRequest{From: a, To: b, Amount: int64(i + 1), Currency: "EUR", IdempotencyKey: keys[i]}
				failed := false
				for attempt := 1; ; attempt++ {
					out, err := e.svc.Transfer(context.Background(), alice, req)
					if err == nil {
						got[i] = out.Transfer.ID
						if failed && out.Replayed {
							replayedAfterFailure.Add(1)
						}
						break
					}
					if k := errs.KindOf(err); (k != errs.Unavailable && k != errs.Conflict) || attempt == 100 {
						t.Errorf("Transfer(key %s) attempt %d = %v (kind %v), want success or a retryable error", keys[i], attempt, err, k)
						return
					}
					failed = true
					failures.Add(1)
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-killerDone
	t.Logf("%d connections killed, %d failed attempts retried, %d retries answered by a replay of a transfer that had committed",
		kills.Load(), failures.Load(), replayedAfterFailure.Load())
	if failures.Load() == 0 {
		t.Fatalf("no attempt failed: the kills did not hit a transfer, so the test proved nothing")
	}

	rows, err := e.pool.Query(context.Background(), `SELECT k.key, k.transfer_id::text, t.amount FROM ledger.idempotency_keys k
		JOIN ledger.transfers t ON t.id = k.transfer_id WHERE k.user_id = $1`, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]string{}
	var key, id string
	var amount int64
	if _, err := pgx.ForEachRow(rows, []any{&key, &id, &amount}, func() error { stored[key] = id; return nil }); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if stored[k] == "" || stored[k] != got[i] {
			t.Errorf("key %s: stored transfer %q, client got %q; want the same one", k, stored[k], got[i])
		}
	}
	if n := e.count(`SELECT count(*) FROM ledger.transfers WHERE from_account_id = $1`, a); n != transfers {
		t.Errorf("transfers from the source = %d, want %d (one per key)", n, transfers)
	}
	want := int64(transfers * (transfers + 1) / 2)
	if m := e.money(b); m.Balance != want {
		t.Errorf("target balance = %d, want %d (each key moved once)", m.Balance, want)
	}
	if m := e.money(a); m.Balance != transfers*transfers-want {
		t.Errorf("source balance = %d, want %d", m.Balance, transfers*transfers-want)
	}
}

// killer terminates every busy backend of app, 30 times ("crashes") a few
// milliseconds apart, or until stop.
func killer(t *testing.T, app string, stop <-chan struct{}, kills *atomic.Int64) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close(ctx)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for crashes := 0; crashes < 30; {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		var n int64
		err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1 AND state <> 'idle'`, app).Scan(&n)
		if err != nil {
			t.Error(err)
			return
		}
		if n > 0 {
			kills.Add(n)
			crashes++
		}
	}
}

// TestLostCommitReplyIsReplayed covers the narrowest window of a crash: the
// database commits the transfer, then the connection dies before the client
// hears so. The client sees a failure, retries with its key, and must get the
// committed transfer back (replayed), never a second one.
func TestLostCommitReplyIsReplayed(t *testing.T) {
	t.Parallel()
	proxy := newCommitCutter(t)
	e := newEnv(t, withProxy(proxy.addr))
	alice, bob := user(), user()
	a, b := e.open(alice, "EUR"), e.open(bob, "EUR")
	e.fund(a, 1_000, "EUR")
	req := domain.TransferRequest{From: a, To: b, Amount: 250, Currency: "EUR", IdempotencyKey: "lost-reply"}

	proxy.cutNextCommit.Store(true)
	_, err := e.svc.Transfer(context.Background(), alice, req)
	if !isKind(err, errs.Unavailable) {
		t.Fatalf("Transfer(commit reply lost) = %v (kind %v), want Unavailable", err, errs.KindOf(err))
	}
	if m := e.money(b); m.Balance != 250 {
		t.Fatalf("target after the lost reply = %d, want 250: the commit should have happened", m.Balance)
	}
	out, err := e.svc.Transfer(context.Background(), alice, req)
	if err != nil || !out.Replayed {
		t.Fatalf("Transfer(retry) = %+v, %v, want a replay of the committed transfer", out, err)
	}
	if m := e.money(b); m.Balance != 250 {
		t.Errorf("target after the retry = %d, want 250 (moved once)", m.Balance)
	}
	if n := e.count(`SELECT count(*) FROM ledger.transfers WHERE from_account_id = $1`, a); n != 1 {
		t.Errorf("transfers = %d, want 1", n)
	}
}

// commitCutter is a TCP proxy in front of Postgres that, when armed, drops
// the connection instead of forwarding the server's "COMMIT" completion.
type commitCutter struct {
	addr          string
	cutNextCommit atomic.Bool
}

func newCommitCutter(t *testing.T) *commitCutter {
	t.Helper()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	upstream := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	c := &commitCutter{addr: lis.Addr().String()}
	go func() {
		for {
			client, err := lis.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", upstream)
			if err != nil {
				client.Close()
				continue
			}
			go func() { io.Copy(server, client); server.Close() }()
			go func() { c.relay(client, server); client.Close(); server.Close() }()
		}
	}()
	return c
}

// relay copies server messages to the client one by one, cutting both
// connections at an armed COMMIT completion.
func (c *commitCutter) relay(client, server net.Conn) {
	r := bufio.NewReader(server)
	hdr := make([]byte, 5)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[1:])-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if hdr[0] == 'C' && string(body) == "COMMIT\x00" && c.cutNextCommit.CompareAndSwap(true, false) {
			return
		}
		if _, err := client.Write(append(hdr, body...)); err != nil {
			return
		}
	}
}
