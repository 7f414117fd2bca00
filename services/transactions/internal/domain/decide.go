package domain

import (
	"context"

	"github.com/bastion-bank/bastion/platform/identity"
)

// Approve posts a transfer that was held for approval: both entries are
// written and the hold released, provided both accounts are still ACTIVE.
// Whatever their roles, nobody approves a transfer or deposit they
// initiated, or one whose source or destination account they own.
func (s *Service) Approve(ctx context.Context, user identity.User, transferID string) (Transfer, error) {
	return s.decide(ctx, user, transferID, "transfer.approved", "transfer.approve_refused", func(st *DecideState) (*Posting, error) {
		t := st.Transfer
		from, to := st.Accounts[t.From], st.Accounts[t.To]
		if from.Status != AccountActive || to.Status != AccountActive {
			return nil, ErrAccountNotActive
		}
		now := s.clock()
		t.Status, t.DecidedBy, t.DecidedAt = StatusCompleted, user.ID, now
		return &Posting{
			Transfer: t,
			Entries:  postingEntries(t, from, to, now),
			Holds:    []Hold{{AccountID: t.From, Delta: -t.Amount}},
		}, nil
	})
}

// Reject releases a held transfer's hold and gives its amount back to the
// initiator's total of the day (the outgoing limit, or a depositor's cap),
// since the money never moved. The separation of duties applies as to
// Approve.
func (s *Service) Reject(ctx context.Context, user identity.User, transferID, reason string) (Transfer, error) {
	return s.decide(ctx, user, transferID, "transfer.rejected", "transfer.reject_refused", func(st *DecideState) (*Posting, error) {
		t := st.Transfer
		t.Status, t.DecidedBy, t.DecidedAt, t.Reason = StatusRejected, user.ID, s.clock(), reason
		return &Posting{
			Transfer:   t,
			Holds:      []Hold{{AccountID: t.From, Delta: -t.Amount}},
			UsageDelta: -t.Amount,
		}, nil
	})
}

// decide runs the rules every decision shares, then apply, in one
// transaction, and audits the outcome either way.
func (s *Service) decide(ctx context.Context, user identity.User, transferID, action, refusal string,
	apply func(*DecideState) (*Posting, error)) (Transfer, error) {
	if user.ID == "" {
		return Transfer{}, ErrNotAuthenticated
	}
	id, ok := identity.CanonicalID(transferID)
	if !ok {
		return Transfer{}, ErrTransferNotFound
	}
	var out Transfer
	err := s.store.Decide(ctx, id, func(st *DecideState) (*Posting, error) {
		if err := checkDecision(user.ID, st); err != nil {
			return nil, err
		}
		p, err := apply(st)
		if err != nil {
			return nil, err
		}
		p.Event = transferEvent(action, user.ID, p.Transfer)
		if p.Transfer.Reason != "" {
			p.Event.Detail["reason"] = p.Transfer.Reason
		}
		out = p.Transfer
		return p, nil
	})
	if err != nil {
		return Transfer{}, s.refused(ctx, err, refusal, user.ID, "transfer/"+id, nil)
	}
	return out, nil
}
