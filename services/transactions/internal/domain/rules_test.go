package domain

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/duties"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
)

const (
	alice = "00000000-0000-4000-8000-00000000000a"
	bob   = "00000000-0000-4000-8000-00000000000b"
	acctA = "10000000-0000-4000-8000-00000000000a"
	acctB = "10000000-0000-4000-8000-00000000000b"
)

var testLimits = Limits{ApprovalThreshold: 1000, MaxTransfer: 5000, DailyLimit: 8000,
	ApprovalDailyThreshold: 2500, DepositDailyLimit: 9000}

func state(mods ...func(*MoveState)) *MoveState {
	st := &MoveState{Usage: 0, Accounts: map[string]Account{
		acctA: {ID: acctA, OwnerID: alice, Currency: "EUR", Status: AccountActive, Kind: AccountCustomer, Balance: 6000, Held: 500},
		acctB: {ID: acctB, OwnerID: bob, Currency: "EUR", Status: AccountActive, Kind: AccountCustomer, Balance: 10},
	}}
	for _, m := range mods {
		m(st)
	}
	return st
}

func edit(id string, f func(*Account)) func(*MoveState) {
	return func(st *MoveState) {
		a := st.Accounts[id]
		f(&a)
		st.Accounts[id] = a
	}
}

func TestCheckTransfer(t *testing.T) {
	t.Parallel()
	req := TransferRequest{From: acctA, To: acctB, Amount: 100, Currency: "EUR"}
	usage := func(n int64) func(*MoveState) { return func(st *MoveState) { st.Usage = n } }
	tests := []struct {
		name string
		user string
		req  func(*TransferRequest)
		st   *MoveState
		hold HoldReason
		err  error
	}{
		{name: "small posts", st: state(), hold: HoldNone},
		{name: "below threshold posts", req: func(r *TransferRequest) { r.Amount = 999 }, st: state(), hold: HoldNone},
		{name: "at threshold is held", req: func(r *TransferRequest) { r.Amount = 1000 }, st: state(), hold: HoldAmount},
		{name: "exactly the maximum is held, not refused", req: func(r *TransferRequest) { r.Amount = 5000 }, st: state(), hold: HoldAmount},
		{name: "exactly the available funds", req: func(r *TransferRequest) { r.Amount = 2500 }, st: state(edit(acctA, func(a *Account) { a.Balance = 3000 })), hold: HoldAmount},
		// The cumulative threshold: the day's total with this transfer.
		{name: "day's total just below the daily threshold posts", req: func(r *TransferRequest) { r.Amount = 999 }, st: state(usage(1500)), hold: HoldNone},
		{name: "day's total reaching the daily threshold is held", req: func(r *TransferRequest) { r.Amount = 999 }, st: state(usage(1501)), hold: HoldDailyTotal},
		{name: "day's total past the daily threshold is held", st: state(usage(2450)), hold: HoldDailyTotal},
		{name: "the amount wins when both apply", req: func(r *TransferRequest) { r.Amount = 1000 }, st: state(usage(2000)), hold: HoldAmount},
		{name: "someone else's source", user: bob, st: state(), err: ErrAccountNotFound},
		{name: "missing source", st: state(func(st *MoveState) { delete(st.Accounts, acctA) }), err: ErrAccountNotFound},
		{name: "missing target", st: state(func(st *MoveState) { delete(st.Accounts, acctB) }), err: ErrAccountNotFound},
		{name: "settlement target", st: state(edit(acctB, func(a *Account) { a.Kind = AccountSettlement })), err: ErrAccountNotFound},
		{name: "settlement source", st: state(edit(acctA, func(a *Account) { a.Kind = AccountSettlement })), err: ErrAccountNotFound},
		{name: "frozen source", st: state(edit(acctA, func(a *Account) { a.Status = AccountFrozen })), err: ErrAccountNotActive},
		{name: "closed target", st: state(edit(acctB, func(a *Account) { a.Status = AccountClosed })), err: ErrAccountNotActive},
		{name: "request currency differs", req: func(r *TransferRequest) { r.Currency = "USD" }, st: state(), err: ErrCurrencyMismatch},
		{name: "target currency differs", st: state(edit(acctB, func(a *Account) { a.Currency = "USD" })), err: ErrCurrencyMismatch},
		{name: "over maximum", req: func(r *TransferRequest) { r.Amount = 5001 }, st: state(), err: ErrOverMaximum},
		{name: "daily limit reached", st: state(usage(7901)), err: ErrDailyLimit},
		{name: "daily limit exactly (held: past the daily threshold)", st: state(usage(7900)), hold: HoldDailyTotal},
		{name: "daily limit near overflow", st: state(usage(math.MaxInt64)), err: ErrDailyLimit},
		{name: "held money is not available", req: func(r *TransferRequest) { r.Amount = 2501 }, st: state(edit(acctA, func(a *Account) { a.Balance = 3000 })), err: ErrInsufficientFunds},
		{name: "overdraft", req: func(r *TransferRequest) { r.Amount = 20 }, st: state(edit(acctA, func(a *Account) { a.Balance, a.Held = 10, 0 })), err: ErrInsufficientFunds},
		{name: "target would overflow", st: state(edit(acctB, func(a *Account) { a.Balance = math.MaxInt64 - 99 })), err: ErrBalanceLimit},
		{name: "target exactly at the largest balance", st: state(edit(acctB, func(a *Account) { a.Balance = math.MaxInt64 - 100 })), hold: HoldNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := req
			if tt.req != nil {
				tt.req(&r)
			}
			user := alice
			if tt.user != "" {
				user = tt.user
			}
			got, err := checkTransfer(testLimits, user, r, tt.st)
			if !errors.Is(err, tt.err) || got != tt.hold {
				t.Errorf("checkTransfer(%+v) = %q, %v, want %q, %v", r, got, err, tt.hold, tt.err)
			}
		})
	}
}

func TestCheckDeposit(t *testing.T) {
	t.Parallel()
	const manager = "00000000-0000-4000-8000-0000000000ff"
	customer := Account{ID: acctB, OwnerID: bob, Currency: "EUR", Status: AccountActive, Kind: AccountCustomer, Balance: 10}
	settlement := Account{ID: SettlementAccountID("EUR"), Currency: "EUR", Status: AccountActive, Kind: AccountSettlement, Balance: -10}
	tests := []struct {
		name  string
		user  string
		req   DepositRequest
		usage int64
		to    func(*Account)
		s     func(*Account)
		found bool
		hold  HoldReason
		want  error
	}{
		{name: "ok", req: DepositRequest{Amount: 999, Currency: "EUR"}, found: true},
		{name: "at the threshold is held", req: DepositRequest{Amount: 1000, Currency: "EUR"}, found: true, hold: HoldAmount},
		{name: "exactly the maximum is held", req: DepositRequest{Amount: 5000, Currency: "EUR"}, found: true, hold: HoldAmount},
		// The cap bounds a depositor's day; the cumulative approval
		// threshold is for transfers.
		{name: "the day's deposits past the daily approval threshold", req: DepositRequest{Amount: 500, Currency: "EUR"}, usage: 2500, found: true},
		{name: "exactly the deposit cap", req: DepositRequest{Amount: 500, Currency: "EUR"}, usage: 8500, found: true},
		{name: "past the deposit cap", req: DepositRequest{Amount: 501, Currency: "EUR"}, usage: 8500, found: true, want: ErrDepositLimit},
		{name: "deposit cap near overflow", req: DepositRequest{Amount: 1, Currency: "EUR"}, usage: math.MaxInt64, found: true, want: ErrDepositLimit},
		{name: "into the depositor's own account", user: bob, req: DepositRequest{Amount: 1, Currency: "EUR"}, found: true, want: duties.Refusal(duties.OwnAccount)},
		{name: "into the depositor's own frozen account: duties first", user: bob, req: DepositRequest{Amount: 1, Currency: "EUR"}, found: true, to: func(a *Account) { a.Status = AccountFrozen }, want: duties.Refusal(duties.OwnAccount)},
		{name: "missing", req: DepositRequest{Amount: 1, Currency: "EUR"}, found: false, want: ErrAccountNotFound},
		{name: "into a settlement account", req: DepositRequest{Amount: 1, Currency: "EUR"}, found: true, to: func(a *Account) { a.Kind, a.OwnerID = AccountSettlement, "" }, want: ErrAccountNotFound},
		{name: "frozen", req: DepositRequest{Amount: 1, Currency: "EUR"}, found: true, to: func(a *Account) { a.Status = AccountFrozen }, want: ErrAccountNotActive},
		{name: "other currency", req: DepositRequest{Amount: 1, Currency: "CHF"}, found: true, want: ErrCurrencyMismatch},
		{name: "over maximum", req: DepositRequest{Amount: 5001, Currency: "EUR"}, found: true, want: ErrOverMaximum},
		{name: "customer overflow", req: DepositRequest{Amount: 11, Currency: "EUR"}, found: true, to: func(a *Account) { a.Balance = math.MaxInt64 - 10 }, want: ErrBalanceLimit},
		{name: "settlement overflow", req: DepositRequest{Amount: 11, Currency: "EUR"}, found: true, s: func(a *Account) { a.Balance = math.MinInt64 + 10 }, want: ErrBalanceLimit},
		// The closest cases that must pass: each side ends exactly at the
		// largest (smallest) balance an int64 holds.
		{name: "customer exactly at the largest balance", req: DepositRequest{Amount: 11, Currency: "EUR"}, found: true, to: func(a *Account) { a.Balance = math.MaxInt64 - 11 }},
		{name: "settlement exactly at the smallest balance", req: DepositRequest{Amount: 11, Currency: "EUR"}, found: true, s: func(a *Account) { a.Balance = math.MinInt64 + 11 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			to, s := customer, settlement
			if tt.to != nil {
				tt.to(&to)
			}
			if tt.s != nil {
				tt.s(&s)
			}
			user := manager
			if tt.user != "" {
				user = tt.user
			}
			hold, err := checkDeposit(testLimits, user, tt.req, tt.usage, s, to, tt.found)
			if !errors.Is(err, tt.want) || hold != tt.hold {
				t.Errorf("checkDeposit(%+v, usage %d) = %q, %v, want %q, %v", tt.req, tt.usage, hold, err, tt.hold, tt.want)
			}
		})
	}
}

func TestCheckDecision(t *testing.T) {
	t.Parallel()
	const carol = "00000000-0000-4000-8000-00000000000c" // a manager with no stake
	initiator, own, notPending := duties.Refusal(duties.Initiator), duties.Refusal(duties.OwnAccount), ErrNotPending
	tests := []struct {
		name               string
		user               string
		fromOwner, toOwner string
		status             Status
		want               error
	}{
		{name: "a manager with no stake decides a pending transfer", user: carol, status: StatusPendingApproval},
		{name: "initiator", user: alice, status: StatusPendingApproval, want: initiator},
		{name: "initiator of a completed transfer still gets permission denied", user: alice, status: StatusCompleted, want: initiator},
		{name: "owner of the destination", user: bob, status: StatusPendingApproval, want: own},
		{name: "owner of the destination of a completed transfer", user: bob, status: StatusCompleted, want: own},
		{name: "owner of the source, initiated by someone else", user: carol, fromOwner: carol, status: StatusPendingApproval, want: own},
		{name: "a deposit's settlement side has no owner", user: carol, fromOwner: "-", status: StatusPendingApproval},
		{name: "no user", user: "", fromOwner: "-", status: StatusPendingApproval, want: ErrNotAuthenticated},
		{name: "completed", user: carol, status: StatusCompleted, want: notPending},
		{name: "rejected", user: carol, status: StatusRejected, want: notPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			from, to := alice, bob
			if tt.fromOwner == "-" {
				from = ""
			} else if tt.fromOwner != "" {
				from = tt.fromOwner
			}
			if tt.toOwner != "" {
				to = tt.toOwner
			}
			st := &DecideState{
				Transfer: Transfer{From: acctA, To: acctB, InitiatedBy: alice, Status: tt.status},
				Accounts: map[string]Account{acctA: {ID: acctA, OwnerID: from}, acctB: {ID: acctB, OwnerID: to}},
			}
			err := checkDecision(tt.user, st)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("checkDecision(%q, %q) = %v, want %v", tt.user, tt.status, err, tt.want)
			}
		})
	}
}

func TestFingerprintSeparatesFields(t *testing.T) {
	t.Parallel()
	base := TransferRequest{From: acctA, To: acctB, Amount: 12, Currency: "EUR", Description: "rent"}
	tests := []struct {
		name string
		mod  func(*TransferRequest)
	}{
		{name: "amount", mod: func(r *TransferRequest) { r.Amount = 13 }},
		{name: "target", mod: func(r *TransferRequest) { r.To = acctA }},
		{name: "currency", mod: func(r *TransferRequest) { r.Currency = "USD" }},
		{name: "description", mod: func(r *TransferRequest) { r.Description = "rent!" }},
		// Moving text between fields must not collide: length prefixes.
		{name: "shifted text", mod: func(r *TransferRequest) { r.Currency, r.Description = "EURr", "ent" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := base
			tt.mod(&r)
			if r.fingerprint() == base.fingerprint() {
				t.Errorf("fingerprint(%+v) = fingerprint(%+v), want different", r, base)
			}
		})
	}
	again := base
	again.IdempotencyKey = "the key is not part of the request"
	if again.fingerprint() != base.fingerprint() {
		t.Errorf("fingerprint changed with the idempotency key, want the same")
	}
	dep := DepositRequest{AccountID: acctA, Amount: 12, Currency: "EUR", Reference: "rent"}
	if dep.fingerprint() == fingerprint("transfer", acctA, "12", "EUR", "rent") {
		t.Errorf("a deposit and a transfer share a fingerprint, want the operation to separate them")
	}
}

func TestCanonicalID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{in: acctA, want: acctA, ok: true},
		{in: strings.ToUpper(acctA), want: acctA, ok: true},
		{in: "{" + acctA + "}", ok: false},
		{in: "urn:uuid:" + acctA, ok: false},
		{in: "1' OR '1'='1", ok: false},
		{in: "", ok: false},
	}
	for _, tt := range tests {
		got, ok := identity.CanonicalID(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("identity.CanonicalID(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestUsageDayIsUTC(t *testing.T) {
	t.Parallel()
	berlin := time.FixedZone("CET", 3600)
	at := time.Date(2030, 1, 2, 0, 30, 0, 0, berlin) // 1 Jan 23:30 UTC
	if got, want := UsageDay(at), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("UsageDay(%v) = %v, want %v", at, got, want)
	}
}

func TestSettlementAccountIDIsStable(t *testing.T) {
	t.Parallel()
	first, again := SettlementAccountID("EUR"), SettlementAccountID("EUR")
	if first != again || first == SettlementAccountID("USD") {
		t.Errorf("SettlementAccountID is not a stable per-currency id")
	}
	if _, ok := identity.CanonicalID(SettlementAccountID("EUR")); !ok {
		t.Errorf("SettlementAccountID(EUR) = %q, want a canonical UUID", SettlementAccountID("EUR"))
	}
}

// TestViolationsNameJSONFields: a field the domain refuses is named as the
// client sent it (lowerCamelCase, like every protovalidate violation), not
// by its proto spelling. "TO" and "to" of one account pass the proto rule
// and reach ErrSameAccount, so its name is what a client sees.
func TestViolationsNameJSONFields(t *testing.T) {
	for want, err := range map[string]*errs.Error{"toAccountId": ErrSameAccount, "idempotencyKey": ErrMissingKey} {
		if len(err.Violations) != 1 || err.Violations[0].Field != want {
			t.Errorf("%v: violations %+v, want one on %q", err, err.Violations, want)
		}
	}
}

// TestPostingEntries: a posting is two entries that sum to zero, money out
// of the source and into the target, each naming the other side and the
// balance its account is left with.
func TestPostingEntries(t *testing.T) {
	t.Parallel()
	at := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	tr := Transfer{ID: "t", From: acctA, To: acctB, Amount: 70, Description: "rent"}
	from, to := Account{ID: acctA, Balance: 100}, Account{ID: acctB, Balance: -5}
	want := []Entry{
		{TransferID: "t", AccountID: acctA, Counterparty: acctB, Amount: -70, BalanceAfter: 30, Description: "rent", CreatedAt: at},
		{TransferID: "t", AccountID: acctB, Counterparty: acctA, Amount: 70, BalanceAfter: 65, Description: "rent", CreatedAt: at},
	}
	got := postingEntries(tr, from, to, at)
	if len(got) != len(want) {
		t.Fatalf("postingEntries(%d from %d to %d) = %+v, want %+v", tr.Amount, from.Balance, to.Balance, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("postingEntries(%d from %d to %d) entry %d = %+v, want %+v", tr.Amount, from.Balance, to.Balance, i, got[i], want[i])
		}
	}
}
