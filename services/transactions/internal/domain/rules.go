package domain

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/duties"
)

// checkTransfer applies the transfer rules to the locked state and says
// whether the transfer posts now or waits for approval, and why. The order
// matters only for which refusal a request with several faults gets:
// existence and ownership first (so a stranger's account is
// indistinguishable from a missing one), then status, currency, the limits
// and the funds.
func checkTransfer(l Limits, userID string, req TransferRequest, st *MoveState) (HoldReason, error) {
	from, ok := st.Accounts[req.From]
	if !ok || from.Kind != AccountCustomer || from.OwnerID != userID {
		return "", ErrAccountNotFound
	}
	to, ok := st.Accounts[req.To]
	if !ok || to.Kind != AccountCustomer {
		return "", ErrAccountNotFound
	}
	if from.Status != AccountActive || to.Status != AccountActive {
		return "", ErrAccountNotActive
	}
	if from.Currency != req.Currency || to.Currency != req.Currency {
		return "", ErrCurrencyMismatch
	}
	if req.Amount > l.MaxTransfer {
		return "", ErrOverMaximum
	}
	if st.Usage > l.DailyLimit-req.Amount {
		return "", ErrDailyLimit
	}
	if req.Amount > from.Available() {
		return "", ErrInsufficientFunds
	}
	if to.Balance > math.MaxInt64-req.Amount {
		return "", ErrBalanceLimit
	}
	return holdFor(l, st.Usage, req.Amount), nil
}

// holdFor says whether an amount waits for a second person: when it reaches
// the approval threshold on its own, or when the initiator's total of the
// day (usage, before this amount) reaches the daily threshold with it. Both
// comparisons are written so that they cannot overflow.
func holdFor(l Limits, usage, amount int64) HoldReason {
	switch {
	case amount >= l.ApprovalThreshold:
		return HoldAmount
	case usage >= l.ApprovalDailyThreshold-amount:
		return HoldDailyTotal
	}
	return HoldNone
}

// checkDeposit applies the deposit rules: the target is an active customer
// account in the request's currency that the depositor does not own, the
// amount within the per-transfer maximum and the depositor's cap of the day
// (usage, before this deposit), and neither side's balance overflows. Like a
// transfer, a deposit at or above the approval threshold waits for a second
// person. The cumulative threshold is for transfers: a depositor's day is
// bounded by the cap instead.
func checkDeposit(l Limits, userID string, req DepositRequest, usage int64, settlement, to Account, found bool) (HoldReason, error) {
	if !found || to.Kind != AccountCustomer {
		return "", ErrAccountNotFound
	}
	if err := duties.Check(duties.Action{Actor: userID, Owners: []string{to.OwnerID}}); err != nil {
		return "", err
	}
	switch {
	case to.Status != AccountActive:
		return "", ErrAccountNotActive
	case to.Currency != req.Currency:
		return "", ErrCurrencyMismatch
	case req.Amount > l.MaxTransfer:
		return "", ErrOverMaximum
	case usage > l.DepositDailyLimit-req.Amount:
		return "", ErrDepositLimit
	case to.Balance > math.MaxInt64-req.Amount || settlement.Balance < math.MinInt64+req.Amount:
		return "", ErrBalanceLimit
	}
	if req.Amount >= l.ApprovalThreshold {
		return HoldAmount, nil
	}
	return HoldNone, nil
}

// checkDecision applies the rules every decision shares: nobody decides a
// request they initiated or one that moves money of theirs (checked first,
// so such a person learns nothing about its state), and only a transfer
// awaiting approval can be decided.
func checkDecision(userID string, st *DecideState) error {
	t := st.Transfer
	err := duties.Check(duties.Action{Actor: userID, Initiator: t.InitiatedBy,
		Owners: []string{st.Accounts[t.From].OwnerID, st.Accounts[t.To].OwnerID}})
	if err != nil {
		return err
	}
	if t.Status != StatusPendingApproval {
		return ErrNotPending
	}
	return nil
}

// postingEntries returns the two entries that post t against the locked
// accounts: money out of from, into to.
func postingEntries(t Transfer, from, to Account, at time.Time) []Entry {
	return []Entry{
		{TransferID: t.ID, AccountID: from.ID, Counterparty: to.ID, Amount: -t.Amount,
			BalanceAfter: from.Balance - t.Amount, Description: t.Description, CreatedAt: at},
		{TransferID: t.ID, AccountID: to.ID, Counterparty: from.ID, Amount: t.Amount,
			BalanceAfter: to.Balance + t.Amount, Description: t.Description, CreatedAt: at},
	}
}

// fingerprint hashes a request canonically: the operation name and each
// field, every one prefixed by its length, so that no two different
// requests share an encoding.
func fingerprint(op string, fields ...string) [32]byte {
	h := sha256.New()
	var n [4]byte
	for _, f := range append([]string{op}, fields...) {
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

func (r TransferRequest) fingerprint() [32]byte {
	return fingerprint("transfer", r.From, r.To, strconv.FormatInt(r.Amount, 10), r.Currency, r.Description)
}

func (r DepositRequest) fingerprint() [32]byte {
	return fingerprint("deposit", r.AccountID, strconv.FormatInt(r.Amount, 10), r.Currency, r.Reference)
}

// settlementNamespace roots the settlement account ids, which are derived
// from the currency so that a deposit knows which row to lock without
// looking it up first.
var settlementNamespace = uuid.MustParse("6f1b7a52-2a36-4a4f-9b7e-5e7c1d0b8a41")

// SettlementAccountID returns the id of the settlement account of currency.
func SettlementAccountID(currency string) string {
	return uuid.NewSHA1(settlementNamespace, []byte("settlement:"+currency)).String()
}

// UsageDay returns the UTC day a moment counts towards for the daily limit.
func UsageDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
