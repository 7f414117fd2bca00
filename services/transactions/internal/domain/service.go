package domain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/bastion-bank/bastion/platform/duties"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/pagetoken"
)

// Config configures a Service.
type Config struct {
	Limits  Limits
	Now     func() time.Time // the clock; time.Now when nil
	NewID   func() string    // transfer ids; random UUIDs when nil
	Metrics Metrics          // security counters; none when nil

	PageTokens *pagetoken.Codec // required: mints and checks list page tokens (pages.go)
}

// Metrics counts the security events of the ledger: refusals under the
// separation of duties and transfers held for a second person, each with a
// reason. platform/telemetry.Security satisfies it.
type Metrics interface {
	Event(ctx context.Context, event, reason string)
}

type nopMetrics struct{}

func (nopMetrics) Event(context.Context, string, string) {}

// The security events the ledger counts.
const (
	EventDuties       = "separation_of_duties" // reason: the rule broken (duties.Rule)
	EventTransferHeld = "transfer_held"        // reason: the HoldReason
	EventDepositHeld  = "deposit_held"         // reason: the HoldReason
)

// Service applies the ledger's rules. Its methods take the verified user
// explicitly; authorization by role and ownership has already happened in
// the platform's interceptors, and the service adds the rules only it can
// judge (funds, limits, the initiator never deciding their own transfer).
type Service struct {
	store   Store
	limits  Limits
	now     func() time.Time
	newID   func() string
	metrics Metrics
	pages   *pagetoken.Codec
}

// New returns a service over store. The limits must be positive (the two
// that default from others may be zero).
func New(store Store, cfg Config) (*Service, error) {
	l := cfg.Limits.withDefaults()
	if l.ApprovalThreshold <= 0 || l.MaxTransfer <= 0 || l.DailyLimit <= 0 ||
		l.ApprovalDailyThreshold <= 0 || l.DepositDailyLimit <= 0 {
		return nil, fmt.Errorf("domain: limits must be positive: %+v", l)
	}
	if cfg.PageTokens == nil {
		return nil, errors.New("domain: a page token codec is required")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopMetrics{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = uuid.NewString
	}
	return &Service{store: store, limits: l, now: cfg.Now, newID: cfg.NewID, metrics: cfg.Metrics, pages: cfg.PageTokens}, nil
}

// clock returns now in UTC at the database's microsecond precision, so that
// a stored first response and a later read of the same transfer agree.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// TransferRequest asks to move Amount from one of the caller's accounts.
type TransferRequest struct {
	From, To       string
	Amount         int64
	Currency       string
	Description    string
	IdempotencyKey string
}

// DepositRequest asks to credit an account from the settlement account.
type DepositRequest struct {
	AccountID      string
	Amount         int64
	Currency       string
	Reference      string
	IdempotencyKey string
}

// Outcome is the result of a money-moving request.
type Outcome struct {
	Transfer Transfer
	Replayed bool // the stored first response of an earlier identical request
}

// Transfer moves money between two accounts, or holds it when the amount
// needs approval. A request repeating an earlier one's idempotency key gets
// the earlier response back and moves nothing.
func (s *Service) Transfer(ctx context.Context, user identity.User, req TransferRequest) (Outcome, error) {
	if err := s.normaliseTransfer(user, &req); err != nil {
		return Outcome{}, err
	}
	now := s.clock()
	claim := Claim{UserID: user.ID, Key: req.IdempotencyKey, Fingerprint: req.fingerprint()}
	locks := MoveLocks{Claim: claim, UsageUser: user.ID, UsageKind: KindTransfer, Day: UsageDay(now),
		Accounts: []string{req.From, req.To}}
	var out Outcome
	err := s.store.Move(ctx, locks, func(st *MoveState) (*Posting, error) {
		if st.Stored != nil {
			return nil, replay(st.Stored, claim, &out)
		}
		hold, err := checkTransfer(s.limits, user.ID, req, st)
		if err != nil {
			return nil, err
		}
		t := Transfer{ID: s.newID(), From: req.From, To: req.To, Amount: req.Amount, Currency: req.Currency,
			Description: req.Description, Kind: KindTransfer, InitiatedBy: user.ID, CreatedAt: now}
		p := post(t, hold, st.Accounts[t.From], st.Accounts[t.To], "transfer")
		out = Outcome{Transfer: p.Transfer}
		p.Response, err = encodeResponse(p.Transfer)
		return p, err
	})
	if err != nil {
		return Outcome{}, s.refused(ctx, err, "transfer.refused", user.ID, "account/"+req.From,
			map[string]string{"to": req.To, "amount": strconv.FormatInt(req.Amount, 10), "currency": req.Currency})
	}
	s.countHold(ctx, EventTransferHeld, out)
	return out, nil
}

// post returns what a new transfer or deposit writes: its two entries when
// it posts at once, else a hold of its amount on the debited side (for a
// deposit, the settlement account) until someone decides. Either way the
// amount counts towards the initiator's usage of the day. noun names the
// audit actions: "<noun>.posted" or "<noun>.held".
func post(t Transfer, hold HoldReason, from, to Account, noun string) *Posting {
	t.Status, t.HoldReason = StatusCompleted, hold
	action := noun + ".posted"
	if hold != HoldNone {
		t.Status, action = StatusPendingApproval, noun+".held"
	}
	p := &Posting{Transfer: t, UsageDelta: t.Amount, Event: transferEvent(action, t.InitiatedBy, t)}
	if hold != HoldNone {
		p.Holds = []Hold{{AccountID: t.From, Delta: t.Amount}}
	} else {
		p.Entries = postingEntries(t, from, to, t.CreatedAt)
	}
	return p
}

// countHold counts a new (not replayed) held transfer or deposit by why it
// was held, so that an alert can see a manager's or a user's payments
// stacking up against the cumulative threshold.
func (s *Service) countHold(ctx context.Context, event string, out Outcome) {
	if !out.Replayed && out.Transfer.HoldReason != HoldNone && out.Transfer.Status == StatusPendingApproval {
		s.metrics.Event(ctx, event, string(out.Transfer.HoldReason))
	}
}

func (s *Service) normaliseTransfer(user identity.User, req *TransferRequest) error {
	if user.ID == "" {
		return ErrNotAuthenticated
	}
	if req.IdempotencyKey == "" {
		return ErrMissingKey
	}
	if req.Amount <= 0 {
		return errs.InvalidField("amount", "must be greater than zero")
	}
	from, okFrom := identity.CanonicalID(req.From)
	to, okTo := identity.CanonicalID(req.To)
	if !okFrom || !okTo {
		return ErrAccountNotFound
	}
	if from == to {
		return ErrSameAccount
	}
	req.From, req.To = from, to
	return nil
}

// Deposit credits an account from the settlement account of its currency.
// Deposits are made by managers and admins, never into an account of their
// own, within a cap per depositor and UTC day (held ones included), and one
// at or above the approval threshold waits for a second person like a
// transfer.
func (s *Service) Deposit(ctx context.Context, user identity.User, req DepositRequest) (Outcome, error) {
	id, ok := identity.CanonicalID(req.AccountID)
	switch {
	case user.ID == "":
		return Outcome{}, ErrNotAuthenticated
	case req.IdempotencyKey == "":
		return Outcome{}, ErrMissingKey
	case req.Amount <= 0:
		return Outcome{}, errs.InvalidField("amount", "must be greater than zero")
	case strings.TrimSpace(req.Reference) == "":
		return Outcome{}, errs.InvalidField("reference", "a deposit needs a reference")
	case !ok:
		return Outcome{}, ErrAccountNotFound
	}
	req.AccountID = id
	now := s.clock()
	settlementID := SettlementAccountID(req.Currency)
	claim := Claim{UserID: user.ID, Key: req.IdempotencyKey, Fingerprint: req.fingerprint()}
	locks := MoveLocks{Claim: claim, UsageUser: user.ID, UsageKind: KindDeposit, Day: UsageDay(now),
		Accounts: []string{settlementID, req.AccountID}}
	var out Outcome
	err := s.store.Move(ctx, locks, func(st *MoveState) (*Posting, error) {
		if st.Stored != nil {
			return nil, replay(st.Stored, claim, &out)
		}
		to, found := st.Accounts[req.AccountID]
		settlement, ok := st.Accounts[settlementID]
		hold, err := checkDeposit(s.limits, user.ID, req, st.Usage, settlement, to, found)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errs.Wrap(errs.Internal, "", fmt.Errorf("no settlement account for %s", req.Currency))
		}
		t := Transfer{ID: s.newID(), From: settlementID, To: req.AccountID, Amount: req.Amount, Currency: req.Currency,
			Description: req.Reference, Kind: KindDeposit, InitiatedBy: user.ID, CreatedAt: now}
		p := post(t, hold, settlement, to, "deposit")
		out = Outcome{Transfer: p.Transfer}
		p.Response, err = encodeResponse(p.Transfer)
		return p, err
	})
	if err != nil {
		return Outcome{}, s.refused(ctx, err, "deposit.refused", user.ID, "account/"+req.AccountID,
			map[string]string{"amount": strconv.FormatInt(req.Amount, 10), "currency": req.Currency})
	}
	s.countHold(ctx, EventDepositHeld, out)
	return out, nil
}

// replay answers a request whose key was used before: the stored response if
// the request is the same, ErrKeyReused if it is not.
func replay(st *Stored, claim Claim, out *Outcome) error {
	if st.Fingerprint != claim.Fingerprint {
		return ErrKeyReused
	}
	t, err := decodeResponse(st.Response)
	if err != nil {
		return err
	}
	*out = Outcome{Transfer: t, Replayed: true}
	return nil
}

// storedResponse is the shape of a stored first response. Version guards
// against reading records written by a later shape.
type storedResponse struct {
	Version  int      `json:"v"`
	Transfer Transfer `json:"transfer"`
}

func encodeResponse(t Transfer) ([]byte, error) {
	b, err := json.Marshal(storedResponse{Version: 1, Transfer: t})
	if err != nil {
		return nil, errs.Wrap(errs.Internal, "", fmt.Errorf("encode stored response: %w", err))
	}
	return b, nil
}

func decodeResponse(b []byte) (Transfer, error) {
	var r storedResponse
	if err := json.Unmarshal(b, &r); err != nil || r.Version != 1 {
		return Transfer{}, errs.Wrap(errs.Internal, "", fmt.Errorf("decode stored response (version %d): %w", r.Version, err))
	}
	return r.Transfer, nil
}

// audited reports whether a refusal of this kind is written to the audit
// chain: the business rules and authorization decisions a reviewer wants to
// see. An in-flight retry (Conflict) or a database failure is not a refusal.
func audited(k errs.Kind) bool {
	return k == errs.Refused || k == errs.Permission || k == errs.NotFound
}

// refused audits a refusal in a transaction of its own and returns err. If
// the audit cannot be written the caller gets an error that says so, because
// a refusal nobody can review must not pass silently.
func (s *Service) refused(ctx context.Context, err error, action, actor, resource string, detail map[string]string) error {
	e, ok := errs.As(err)
	if !ok || !audited(e.Kind) {
		return err
	}
	if rule, ok := duties.RuleOf(err); ok {
		s.metrics.Event(ctx, EventDuties, string(rule))
		detail = maps.Clone(detail)
		if detail == nil {
			detail = map[string]string{}
		}
		detail["rule"] = string(rule)
	}
	ev := Event{Action: action, Actor: actor, Resource: resource, Outcome: "refused", Reason: e.Reason, Detail: detail}
	if e.Kind != errs.Refused {
		ev.Outcome = "denied"
	}
	if ev.Reason == "" {
		ev.Reason = e.Kind.String()
	}
	if aerr := s.store.Audit(ctx, ev); aerr != nil {
		return errs.Wrap(errs.KindOf(aerr), "", errors.Join(fmt.Errorf("audit refusal: %w", aerr), err))
	}
	return err
}

func transferEvent(action, actor string, t Transfer) Event {
	return Event{Action: action, Actor: actor, Resource: "transfer/" + t.ID, Outcome: "success", Detail: map[string]string{
		"from": t.From, "to": t.To, "amount": strconv.FormatInt(t.Amount, 10), "currency": t.Currency,
		"status": string(t.Status), "hold_reason": string(t.HoldReason), "kind": string(t.Kind),
	}}
}

// RecordDenial records that the platform refused a call before it reached
// the service (a calling service not allowed, a missing role, someone
// else's account), so the audit chain shows who was refused what
// (platform/grpcserver.DenialRecorder): under d.Action, by d.Actor, with
// d.Reason, the resource being the refused method. The platform bounds the
// write and keeps it going after the caller has gone.
func (s *Service) RecordDenial(ctx context.Context, d identity.Denial) error {
	return s.store.Audit(ctx, Event{Action: d.Action, Actor: d.Actor, Resource: "rpc/" + d.Method,
		Outcome: "denied", Reason: d.Reason})
}
