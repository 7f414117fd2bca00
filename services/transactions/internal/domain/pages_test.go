package domain

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/pagetoken"
)

// testPages mints the page tokens of every test service in this package.
var testPages = func() *pagetoken.Codec {
	c, err := pagetoken.New(make([]byte, pagetoken.MinKeySize))
	if err != nil {
		panic(err)
	}
	return c
}()

func TestNewRequiresAPageTokenCodec(t *testing.T) {
	t.Parallel()
	if _, err := New(&stubStore{}, Config{Limits: testLimits}); err == nil {
		t.Fatal("New without PageTokens = nil error, want a refusal: list tokens could not be checked")
	}
}

// TestPageTokensAreTheCallersOwn: a page token of the approval queue or of
// an account's history works only for the user (and account) it was minted
// for; any other use, or a token altered by one character, is refused as
// invalid, never read as a cursor.
func TestPageTokensAreTheCallersOwn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	st := &stubStore{
		pending: []Transfer{{ID: heldID, CreatedAt: now}, {ID: "20000000-0000-4000-8000-000000000002", CreatedAt: now}},
		entries: []Entry{{Seq: 9}, {Seq: 8}},
		move: MoveState{Accounts: map[string]Account{
			acctA: {ID: acctA, OwnerID: alice, Kind: AccountCustomer},
			acctB: {ID: acctB, OwnerID: bob, Kind: AccountCustomer},
		}},
	}
	s := newService(t, st)
	mgr, other := identity.User{ID: manager}, identity.User{ID: bob}

	queue, err := s.TransferQueue(ctx, mgr, "", 1)
	if err != nil || len(queue.Transfers) != 1 || queue.NextPageToken == "" {
		t.Fatalf("TransferQueue first page = %+v, %v; want one transfer and a next token", queue, err)
	}
	if _, err := s.TransferQueue(ctx, mgr, queue.NextPageToken, 1); err != nil {
		t.Errorf("TransferQueue with its own token = %v, want the next page", err)
	}
	history, err := s.History(ctx, identity.User{ID: alice}, acctA, "", 1)
	if err != nil || len(history.Entries) != 1 || history.NextPageToken == "" {
		t.Fatalf("History first page = %+v, %v; want one entry and a next token", history, err)
	}
	if _, err := s.History(ctx, identity.User{ID: alice}, acctA, history.NextPageToken, 1); err != nil {
		t.Errorf("History with its own token = %v, want the next page", err)
	}

	tampered := []byte(history.NextPageToken)
	tampered[len(tampered)/2] ^= 1
	refused := []struct {
		name string
		call func() error
	}{
		{"queue token of another manager", func() error { _, err := s.TransferQueue(ctx, other, queue.NextPageToken, 1); return err }},
		{"history token as a queue token", func() error { _, err := s.TransferQueue(ctx, mgr, history.NextPageToken, 1); return err }},
		{"history token of another user", func() error {
			_, err := s.History(ctx, identity.User{ID: bob}, acctA, history.NextPageToken, 1)
			return err
		}},
		{"history token for another account", func() error {
			_, err := s.History(ctx, identity.User{ID: alice}, acctB, history.NextPageToken, 1)
			return err
		}},
		{"queue token as a history token", func() error {
			_, err := s.History(ctx, identity.User{ID: alice}, acctA, queue.NextPageToken, 1)
			return err
		}},
		{"altered history token", func() error {
			_, err := s.History(ctx, identity.User{ID: alice}, acctA, string(tampered), 1)
			return err
		}},
	}
	for _, tt := range refused {
		err := tt.call()
		if err == nil || (!errors.Is(err, pagetoken.ErrInvalid) && errs.KindOf(err) != errs.Invalid) {
			t.Errorf("%s = %v, want the invalid page token refusal", tt.name, err)
		}
	}
}

// TestMalformedCursorsAreRefused: a page token carries its cursor signed, so
// only a cursor this service minted should ever be read back; one that
// decodes to anything the service never mints (a cursor of another shape,
// left by an older release or a key shared by mistake) is refused as an
// invalid token, never read as "from the start" or as another position.
// And the history is never read from below a negative position.
func TestMalformedCursorsAreRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &stubStore{
		pending: []Transfer{{ID: heldID, CreatedAt: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}},
		entries: []Entry{{Seq: 9}, {Seq: 8}},
		move:    MoveState{Accounts: map[string]Account{acctA: {ID: acctA, OwnerID: alice, Kind: AccountCustomer}}},
	}
	s := newService(t, st)
	mgr, owner := identity.User{ID: manager}, identity.User{ID: alice}
	// Each returns how many items the page served.
	queue := func(cursor string) (int, error) {
		page, err := s.TransferQueue(ctx, mgr, testPages.Encode("transfers.queue|"+mgr.ID, []byte(cursor)), 1)
		return len(page.Transfers), err
	}
	history := func(cursor string) (int, error) {
		page, err := s.History(ctx, owner, acctA, testPages.Encode("transactions.list|"+owner.ID+"|"+acctA, []byte(cursor)), 1)
		return len(page.Entries), err
	}
	tests := []struct {
		name string
		call func(string) (int, error)
		cur  string
		want error // nil: a page of one is served
	}{
		{"queue: a cursor as minted", queue, "1765101600000000000|" + heldID, nil},
		{"queue: no separator", queue, "1765101600000000000", pagetoken.ErrInvalid},
		{"queue: a time that is not a number", queue, "x|" + heldID, pagetoken.ErrInvalid},
		{"history: a position as minted", history, "9", nil},
		{"history: position zero", history, "0", pagetoken.ErrInvalid},
		{"history: a negative position", history, "-5", pagetoken.ErrInvalid},
		{"history: not a number", history, "x", pagetoken.ErrInvalid},
	}
	for _, tt := range tests {
		n, err := tt.call(tt.cur)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) || (tt.want == nil && n != 1) {
			t.Errorf("%s (cursor %q) = a page of %d, %v, want %v (a page of one when served)", tt.name, tt.cur, n, err, tt.want)
		}
	}
	for _, before := range []int64{-1, math.MinInt64} {
		if page, err := s.ListEntries(ctx, acctA, before, 1); !errors.Is(err, ErrAccountNotFound) {
			t.Errorf("ListEntries(before %d) = %+v, %v, want %v", before, page, err, ErrAccountNotFound)
		}
	}
}
