package domain

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bastion-bank/bastion/platform/duties"
	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
)

// EventDuties is the security event counted when the separation of duties
// refuses a freeze or unfreeze; its reason is the rule (duties.Rule).
const EventDuties = "separation_of_duties"

// Freeze stops all money movement on the account. The ledger applies the
// freeze before Freeze returns, so the next transfer into or out of the
// account is refused. Freezing a frozen account succeeds and changes
// nothing but is still audited and counted, as an attempt by actor.
// A closed account gives ErrClosed, a missing one ErrNotFound.
//
// Nobody freezes or unfreezes an account they own: that is a
// separation-of-duties refusal (Permission), audited and counted.
//
// The platform has already checked that actor is a manager or an admin.
func (s *Service) Freeze(ctx context.Context, actor identity.User, id, reason string) (View, error) {
	return s.setStatus(ctx, actor, id, StatusFrozen, ActionFrozen, reason)
}

// Unfreeze lets money move again on a frozen account, with the same
// guarantees and rules as Freeze.
func (s *Service) Unfreeze(ctx context.Context, actor identity.User, id, reason string) (View, error) {
	return s.setStatus(ctx, actor, id, StatusActive, ActionUnfrozen, reason)
}

// restoreTimeout bounds the call that undoes a ledger status change.
const restoreTimeout = 5 * time.Second

// setStatus changes the account's status in one transaction that also
// writes the audit event and tells the ledger before committing. If the
// commit then fails, restoreLedger mends the ledger, so the two copies agree
// again on what the caller was told: nothing changed.
func (s *Service) setStatus(ctx context.Context, actor identity.User, id string, to Status, action, reason string) (View, error) {
	id, ok := identity.CanonicalID(id)
	if !ok {
		return View{}, ErrNotFound
	}
	if err := checkText("reason", reason, 1, MaxReasonLen); err != nil {
		return View{}, err
	}
	var from Status
	ledgerChanged := false
	change := func(a *Account) (*Event, error) {
		// Under the row lock, on the owner that is then written: nobody
		// freezes or unfreezes an account of their own (a manager frozen by
		// another would otherwise let themselves out).
		if err := duties.Check(duties.Action{Actor: actor.ID, Owners: []string{a.OwnerID}}); err != nil {
			return nil, err
		}
		if a.Status == StatusClosed {
			return nil, ErrClosed
		}
		from = a.Status
		if a.Status != to {
			a.Status, a.StatusReason, a.StatusChangedBy = to, reason, actor.ID
			a.UpdatedAt = s.now()
		}
		return &Event{
			Action: action, Actor: actor.ID, Resource: AccountResource(a.ID), Outcome: OutcomeSuccess,
			Detail: map[string]string{"from": string(from), "to": string(to), "reason": reason},
		}, nil
	}
	confirm := func(a Account) error {
		// Told even when the status did not change, which also mends a
		// ledger left behind by an earlier failure.
		if err := s.ledger.SetStatus(ctx, a.ID, to); err != nil {
			return err
		}
		ledgerChanged = from != to
		return nil
	}
	a, err := s.store.Update(ctx, id, change, confirm)
	if err != nil {
		if ledgerChanged {
			err = s.restoreLedger(ctx, id, from, err)
		}
		if rule, ok := duties.RuleOf(err); ok {
			err = s.refuseDuties(ctx, actor, id, action, string(rule), err)
		}
		return View{}, err
	}
	outcome := "changed"
	if from == to {
		outcome = "unchanged"
	}
	s.cfg.Metrics.Event(ctx, action, outcome)
	// If the balance read fails, the change is still committed and in force;
	// the caller sees the error and may repeat the call, which is harmless.
	views, err := s.withBalances(ctx, []Account{a})
	if err != nil {
		return View{}, err
	}
	return views[0], nil
}

// refuseDuties audits and counts a status change refused by the separation
// of duties, in a transaction of its own (the change's was rolled back), and
// returns cause. A refusal that cannot be audited is reported as the audit's
// failure, since an insider's attempt nobody can review must not pass
// silently.
func (s *Service) refuseDuties(ctx context.Context, actor identity.User, id, action, rule string, cause error) error {
	s.cfg.Metrics.Event(ctx, EventDuties, rule)
	ev := Event{Action: action, Actor: actor.ID, Resource: AccountResource(id), Outcome: OutcomeDenied, Reason: duties.Reason,
		Detail: map[string]string{"rule": rule}}
	if err := s.store.Audit(ctx, ev); err != nil {
		return errs.Wrap(errs.KindOf(err), "", errors.Join(fmt.Errorf("audit refusal: %w", err), cause))
	}
	return cause
}

// restoreLedger mends the ledger after the accounts side failed to commit a
// status change the ledger had already applied. It copies the committed
// status to the ledger while holding the account's row lock, so it cannot
// undo a change another caller committed in the meantime. If that fails
// too, it leaves the ledger failing closed: a FROZEN ledger status stays,
// and a failed unfreeze is frozen again; the next freeze or unfreeze call
// mends any difference. It returns cause (keeping its kind), joined with
// the mend's own failure for the log.
func (s *Service) restoreLedger(ctx context.Context, id string, from Status, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	keep := func(*Account) (*Event, error) { return nil, nil }
	copyStatus := func(a Account) error { return s.ledger.SetStatus(ctx, a.ID, a.Status) }
	_, err := s.store.Update(ctx, id, keep, copyStatus)
	if err == nil {
		return cause
	}
	if from == StatusFrozen {
		if ferr := s.ledger.SetStatus(ctx, id, StatusFrozen); ferr != nil {
			err = fmt.Errorf("%w; refreezing: %w", err, ferr)
		}
	}
	return fmt.Errorf("%w (and mending the ledger status failed: %w)", cause, err)
}
