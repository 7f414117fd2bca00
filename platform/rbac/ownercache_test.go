package rbac_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	accountsv1 "github.com/bastion-bank/bastion/proto/bank/accounts/v1"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/rbac"
)

// answer is one reply of a scripted resolver.
type answer struct {
	owners []string
	err    error
}

// scripted is an OwnerResolver that gives, for each resource and id, the
// next of its answers (NotFound once they run out), and counts the calls.
type scripted struct {
	mu      sync.Mutex
	answers map[string][]answer // "resource/id" → replies, in order
	calls   int
}

func (s *scripted) Owners(_ context.Context, resource, id string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	k := resource + "/" + id
	q := s.answers[k]
	if len(q) == 0 {
		return nil, errs.New(errs.NotFound, resource+" not found")
	}
	s.answers[k] = q[1:]
	return q[0].owners, q[0].err
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func TestCacheOwners(t *testing.T) {
	t.Parallel()
	const acctB = "aaaaaaaa-0000-4000-8000-000000000002"
	down := errors.New("db down")
	notFound := errs.New(errs.NotFound, "account not found")
	owns := func(ids ...string) answer { return answer{owners: ids} }
	type step struct {
		resource, id string
		want         []string
		wantErr      error // compared with errors.Is
		asked        bool  // whether the wrapped resolver is called
	}
	tests := []struct {
		name      string
		size      int
		immutable []string
		answers   map[string][]answer
		steps     []step
	}{
		{"an answer is served without asking again", 10, []string{"account"},
			map[string][]answer{"account/" + acct: {owns(owner), owns(stranger)}},
			[]step{{"account", acct, []string{owner}, nil, true}, {"account", acct, []string{owner}, nil, false}, {"account", acct, []string{owner}, nil, false}}},
		{"another id is another entry", 10, []string{"account"},
			map[string][]answer{"account/" + acct: {owns(owner)}, "account/" + acctB: {owns(stranger)}},
			[]step{{"account", acct, []string{owner}, nil, true}, {"account", acctB, []string{stranger}, nil, true},
				{"account", acct, []string{owner}, nil, false}, {"account", acctB, []string{stranger}, nil, false}}},
		{"the same id under another resource is another entry", 10, []string{"account", "transfer"},
			map[string][]answer{"account/" + acct: {owns(owner)}, "transfer/" + acct: {owns(stranger, owner)}},
			[]step{{"account", acct, []string{owner}, nil, true}, {"transfer", acct, []string{stranger, owner}, nil, true},
				{"account", acct, []string{owner}, nil, false}, {"transfer", acct, []string{stranger, owner}, nil, false}}},
		{"not found is asked again, and an account that appears later is found", 10, []string{"account"},
			map[string][]answer{"account/" + acct: {{err: notFound}, {err: notFound}, owns(owner)}},
			[]step{{"account", acct, nil, notFound, true}, {"account", acct, nil, notFound, true},
				{"account", acct, []string{owner}, nil, true}, {"account", acct, []string{owner}, nil, false}}},
		{"an error is asked again", 10, []string{"account"},
			map[string][]answer{"account/" + acct: {{err: down}, owns(owner)}},
			[]step{{"account", acct, nil, down, true}, {"account", acct, []string{owner}, nil, true}, {"account", acct, []string{owner}, nil, false}}},
		{"an error with owners is not remembered either", 10, []string{"account"},
			map[string][]answer{"account/" + acct: {{owners: []string{stranger}, err: down}, owns(owner)}},
			[]step{{"account", acct, []string{stranger}, down, true}, {"account", acct, []string{owner}, nil, true}}},
		{"a resource not declared immutable is asked every time", 10, []string{"account"},
			map[string][]answer{"transfer/" + acct: {owns(owner), owns(stranger)}},
			[]step{{"transfer", acct, []string{owner}, nil, true}, {"transfer", acct, []string{stranger}, nil, true}}},
		{"size 0 turns the cache off", 0, []string{"account"},
			map[string][]answer{"account/" + acct: {owns(owner), owns(stranger)}},
			[]step{{"account", acct, []string{owner}, nil, true}, {"account", acct, []string{stranger}, nil, true}}},
		{"no immutable resource turns the cache off", 10, nil,
			map[string][]answer{"account/" + acct: {owns(owner), owns(stranger)}},
			[]step{{"account", acct, []string{owner}, nil, true}, {"account", acct, []string{stranger}, nil, true}}},
		{"no owner is an answer too", 10, []string{"transfer"},
			map[string][]answer{"transfer/" + acct: {owns(), owns(stranger)}},
			[]step{{"transfer", acct, []string{}, nil, true}, {"transfer", acct, []string{}, nil, false}}},
		{"size 1: a new answer replaces the old one", 1, []string{"account"},
			map[string][]answer{"account/" + acct: {owns(owner), owns(owner)}, "account/" + acctB: {owns(stranger)}},
			[]step{{"account", acct, []string{owner}, nil, true}, {"account", acctB, []string{stranger}, nil, true},
				{"account", acctB, []string{stranger}, nil, false}, {"account", acct, []string{owner}, nil, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next := &scripted{answers: tt.answers}
			c := rbac.CacheOwners(next, tt.size, tt.immutable...)
			for i, s := range tt.steps {
				before := next.count()
				got, err := c.Owners(context.Background(), s.resource, s.id)
				if !slices.Equal(got, s.want) || !errors.Is(err, s.wantErr) || (err == nil) != (s.wantErr == nil) {
					t.Errorf("step %d: Owners(%s, %s) = %v, %v; want %v, %v", i, s.resource, s.id, got, err, s.want, s.wantErr)
				}
				if asked := next.count() > before; asked != s.asked {
					t.Errorf("step %d: Owners(%s, %s) asked the resolver: %v, want %v", i, s.resource, s.id, asked, s.asked)
				}
			}
		})
	}
}

// A caller that edits the slice it got, or a resolver that reuses its own,
// changes nobody else's answer.
func TestCacheOwnersAnswersAreCopies(t *testing.T) {
	t.Parallel()
	shared := []string{owner}
	next := rbac.OwnerFunc(func(context.Context, string, string) ([]string, error) { return shared, nil })
	c := rbac.CacheOwners(next, 10, "account")
	tests := []struct {
		name   string
		tamper func(got []string)
	}{
		{"the resolver's slice is edited after the answer", func([]string) { shared[0] = stranger }},
		{"a caller edits a missed answer", func(got []string) { got[0] = stranger }},
		{"a caller edits a cached answer", func(got []string) { got[0] = stranger }},
		{"a caller appends to a cached answer", func(got []string) { _ = append(got[:0], stranger) }},
	}
	for _, tt := range tests {
		got, err := c.Owners(context.Background(), "account", acct)
		if err != nil {
			t.Fatal(err)
		}
		tt.tamper(got)
		if got, _ := c.Owners(context.Background(), "account", acct); !slices.Equal(got, []string{owner}) {
			t.Errorf("%s: Owners = %v, want [%s]", tt.name, got, owner)
		}
	}
}

// However many distinct ids are asked for, the cache holds at most size
// answers, and the newest is among them.
func TestCacheOwnersBound(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, 2, 100, 1000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			t.Parallel()
			var calls int
			next := rbac.OwnerFunc(func(_ context.Context, _, id string) ([]string, error) {
				calls++
				return []string{"owner of " + id}, nil
			})
			c := rbac.CacheOwners(next, size, "account")
			const ids = 20_000
			for i := range ids {
				if _, err := c.Owners(context.Background(), "account", fmt.Sprint(i)); err != nil {
					t.Fatal(err)
				}
				if n := rbac.OwnerCacheLen(c); n > size {
					t.Fatalf("after %d ids the cache holds %d answers, want at most %d", i+1, n, size)
				}
			}
			if n := rbac.OwnerCacheLen(c); n != size {
				t.Errorf("after %d ids the cache holds %d answers, want %d (full)", ids, n, size)
			}
			before := calls
			if got, _ := c.Owners(context.Background(), "account", fmt.Sprint(ids-1)); calls != before || !slices.Equal(got, []string{fmt.Sprint("owner of ", ids-1)}) {
				t.Errorf("the newest id: Owners = %v after %d more calls, want a cached answer", got, calls-before)
			}
		})
	}
}

// Random ids that resolve to nothing (an attacker probing) take no room.
func TestCacheOwnersKeepsNoRefusals(t *testing.T) {
	t.Parallel()
	c := rbac.CacheOwners(&scripted{}, 100, "account", "transfer")
	for i := range 10_000 {
		if _, err := c.Owners(context.Background(), []string{"account", "transfer"}[i%2], fmt.Sprint(i)); errs.KindOf(err) != errs.NotFound {
			t.Fatalf("Owners(%d) = %v, want NotFound", i, err)
		}
	}
	if n := rbac.OwnerCacheLen(c); n != 0 {
		t.Errorf("after 10000 unknown ids the cache holds %d answers, want 0", n)
	}
}

// Concurrent callers (run with -race) on a cache small enough to evict all
// the time each get the right owner, and NotFound for what does not exist.
func TestCacheOwnersConcurrent(t *testing.T) {
	t.Parallel()
	next := rbac.OwnerFunc(func(_ context.Context, _, id string) ([]string, error) {
		if id[0] == 'x' {
			return nil, errs.New(errs.NotFound, "account not found")
		}
		return []string{"owner of " + id}, nil
	})
	c := rbac.CacheOwners(next, 16, "account")
	workers := 2 * runtime.GOMAXPROCS(0)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range 2_000 {
				id := fmt.Sprint((i*7 + w) % 40)
				if i%5 == 0 {
					id = "x" + id
				}
				got, err := c.Owners(context.Background(), "account", id)
				if id[0] == 'x' {
					if errs.KindOf(err) != errs.NotFound {
						errc <- fmt.Errorf("Owners(%s) = %v, %v; want NotFound", id, got, err)
						return
					}
					continue
				}
				if err != nil || !slices.Equal(got, []string{"owner of " + id}) {
					errc <- fmt.Errorf("Owners(%s) = %v, %v; want [owner of %s]", id, got, err, id)
					return
				}
				got[0] = "tampered" // a caller's own copy
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if n := rbac.OwnerCacheLen(c); n > 16 {
		t.Errorf("the cache holds %d answers, want at most 16", n)
	}
}

// The cache only remembers who owns a resource; CheckOwner still compares
// the caller with the owners on every call: a stranger asking right after
// the owner, whose answer is cached, is refused as before.
func TestCheckOwnerThroughTheCache(t *testing.T) {
	t.Parallel()
	const (
		transfer = "bbbbbbbb-0000-4000-8000-000000000001"
		payee    = "cccccccc-0000-4000-8000-000000000001"
	)
	next := &scripted{answers: map[string][]answer{
		"account/" + acct:      {{owners: []string{owner}}},
		"transfer/" + transfer: {{owners: []string{payee, owner}}},
	}}
	owners := rbac.CacheOwners(next, 10, "account", "transfer")
	get := mustRule(t, "/bank.accounts.v1.AccountsService/GetAccount")
	xfer := mustRule(t, "/bank.transactions.v1.TransactionsService/CreateTransfer")
	getTransfer := mustRule(t, "/bank.transactions.v1.TransactionsService/GetTransfer")
	user := func(id string, roles ...string) identity.User { return identity.User{ID: id, Roles: roles} }
	getAcct := &accountsv1.GetAccountRequest{AccountId: acct}
	moveAcct := &transactionsv1.CreateTransferRequest{FromAccountId: acct}
	getXfer := &transactionsv1.GetTransferRequest{TransferId: transfer}
	steps := []struct {
		name string
		rule rbac.Rule
		u    identity.User
		req  proto.Message
		want errs.Kind
	}{
		{"the owner, first: asked and allowed", get, user(owner, "user"), getAcct, errs.Other},
		{"a stranger on the cached answer: not found", get, user(stranger, "user"), getAcct, errs.NotFound},
		{"a stranger moving the owner's money: not found", xfer, user(stranger, "user"), moveAcct, errs.NotFound},
		{"a manager moving the owner's money: not found", xfer, user(stranger, "manager"), moveAcct, errs.NotFound},
		{"a manager reading the account: bypass, not asked", get, user(stranger, "manager"), getAcct, errs.Other},
		{"the owner moving their money: allowed", xfer, user(owner, "user"), moveAcct, errs.Other},
		{"the transfer's sender, first: asked and allowed", getTransfer, user(owner, "user"), getXfer, errs.Other},
		{"a stranger on the cached transfer: not found", getTransfer, user(stranger, "user"), getXfer, errs.NotFound},
		{"the transfer's payee: allowed", getTransfer, user(payee, "user"), getXfer, errs.Other},
	}
	for _, s := range steps {
		err := s.rule.CheckOwner(context.Background(), s.u, s.req, owners)
		if got := errs.KindOf(err); got != s.want {
			t.Errorf("%s: CheckOwner = %v, want kind %v", s.name, err, s.want)
		}
	}
	if n := next.count(); n != 2 {
		t.Errorf("the resolver was asked %d times, want 2 (once per resource)", n)
	}
}
