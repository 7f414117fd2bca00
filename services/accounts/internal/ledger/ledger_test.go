package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc"

	"github.com/bastion-bank/bastion/platform/errs"
	transactionsv1 "github.com/bastion-bank/bastion/proto/bank/transactions/v1"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
	"github.com/bastion-bank/bastion/services/accounts/internal/ledger"
)

// stub is a LedgerServiceClient that records requests and answers with err.
type stub struct {
	err      error
	opens    []*transactionsv1.OpenLedgerAccountRequest
	statuses []*transactionsv1.SetLedgerAccountStatusRequest
	batches  [][]string
}

func (s *stub) OpenLedgerAccount(_ context.Context, in *transactionsv1.OpenLedgerAccountRequest, _ ...grpc.CallOption) (*transactionsv1.OpenLedgerAccountResponse, error) {
	s.opens = append(s.opens, in)
	return &transactionsv1.OpenLedgerAccountResponse{}, s.err
}

func (s *stub) SetLedgerAccountStatus(_ context.Context, in *transactionsv1.SetLedgerAccountStatusRequest, _ ...grpc.CallOption) (*transactionsv1.SetLedgerAccountStatusResponse, error) {
	s.statuses = append(s.statuses, in)
	return &transactionsv1.SetLedgerAccountStatusResponse{}, s.err
}

func (s *stub) GetBalances(_ context.Context, in *transactionsv1.GetBalancesRequest, _ ...grpc.CallOption) (*transactionsv1.GetBalancesResponse, error) {
	s.batches = append(s.batches, in.GetAccountIds())
	if s.err != nil {
		return nil, s.err
	}
	resp := &transactionsv1.GetBalancesResponse{}
	for i, id := range in.GetAccountIds() {
		if i%2 == 0 { // the ledger knows every other account
			resp.Balances = append(resp.Balances, &transactionsv1.Balance{AccountId: id, Currency: "EUR", Balance: int64(i * 100), Held: int64(i)})
		}
	}
	return resp, nil
}

func TestRequestsCarryTheAccountFacts(t *testing.T) {
	t.Parallel()
	s := &stub{}
	l := ledger.New(s)
	a := domain.Account{ID: uuid.NewString(), OwnerID: uuid.NewString(), Currency: "CHF"}
	if err := l.OpenAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if err := l.SetStatus(context.Background(), a.ID, domain.StatusFrozen); err != nil {
		t.Fatal(err)
	}
	if o := s.opens[0]; o.GetAccountId() != a.ID || o.GetOwnerId() != a.OwnerID || o.GetCurrency() != "CHF" {
		t.Errorf("OpenLedgerAccount request = %v, want the account's facts", o)
	}
	if st := s.statuses[0]; st.GetAccountId() != a.ID || st.GetStatus() != "FROZEN" {
		t.Errorf("SetLedgerAccountStatus request = %v, want FROZEN for %s", st, a.ID)
	}
}

func TestBalancesBatches(t *testing.T) {
	t.Parallel()
	tests := []struct{ n, wantCalls int }{{1, 1}, {100, 1}, {101, 2}, {250, 3}}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			t.Parallel()
			s := &stub{}
			ids := make([]string, tt.n)
			for i := range ids {
				ids[i] = uuid.NewString()
			}
			got, err := ledger.New(s).Balances(context.Background(), ids)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.batches) != tt.wantCalls {
				t.Errorf("Balances(%d ids) made %d calls, want %d", tt.n, len(s.batches), tt.wantCalls)
			}
			if b, ok := got[ids[0]]; !ok || b.Booked != 0 || b.Held != 0 {
				t.Errorf("Balances()[first] = %+v, %v; want known, zero", b, ok)
			}
			if tt.n > 2 {
				if b := got[ids[2]]; b.Booked != 200 || b.Held != 2 {
					t.Errorf("Balances()[2] = %+v, want booked 200 held 2", b)
				}
				if _, ok := got[ids[1]]; ok {
					t.Errorf("Balances() has an entry for an id the ledger does not know")
				}
			}
		})
	}
}

// Whatever the ledger answers, the caller sees either "try again" or a
// generic internal error: never the ledger's own refusal or text.
func TestErrorsAreTranslated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want errs.Kind
	}{
		{"unavailable", errs.New(errs.Unavailable, "upstream unavailable"), errs.Unavailable},
		{"rate limited", errs.New(errs.RateLimited, "slow down"), errs.Unavailable},
		{"permission", errs.New(errs.Permission, "permission denied"), errs.Internal},
		{"invalid", errs.InvalidField("accountId", "must be a UUID"), errs.Internal},
		{"not found", errs.New(errs.NotFound, "ledger account 42 not found"), errs.Internal},
		{"plain", errors.New("socket: secret detail"), errs.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := ledger.New(&stub{err: tt.err})
			calls := map[string]error{
				"OpenAccount": l.OpenAccount(context.Background(), domain.Account{}),
				"SetStatus":   l.SetStatus(context.Background(), "x", domain.StatusActive),
			}
			_, calls["Balances"] = l.Balances(context.Background(), []string{"x"})
			for name, err := range calls {
				if errs.KindOf(err) != tt.want {
					t.Errorf("%s(ledger says %v) kind = %v, want %v", name, tt.err, errs.KindOf(err), tt.want)
				}
				if e, _ := errs.As(err); e != nil && len(e.Violations) > 0 {
					t.Errorf("%s(ledger says %v) leaked violations %v", name, tt.err, e.Violations)
				}
				if msg := errs.SafeMessage(err); msg != "internal error" && msg != "ledger unavailable, try again" {
					t.Errorf("%s(ledger says %v) safe message = %q", name, tt.err, msg)
				}
			}
		})
	}
}
