// Package duties is the one implementation of separation of duties: the
// rule that no single person, whatever their roles, can both ask for a
// sensitive operation and allow it, or act as staff on money that is their
// own. Role checks (platform/rbac) decide whether someone is staff at all;
// this package decides whether this staff member may act on this resource.
//
// The services call Check with the facts only they can see under their row
// locks (who initiated a transfer, who owns each account it touches), so the
// decision is made on exactly the rows that are then written.
package duties

import (
	"errors"
	"slices"
	"strings"

	"github.com/bastion-bank/bastion/platform/errs"
)

// Reason is the stable reason every refusal carries. The gateway turns it
// into the problem type "urn:bastion:problem:separation-of-duties".
const Reason = "separation_of_duties"

// Rule names which part of the separation of duties a refusal broke. It is
// a metric label and an audit detail, so the values are fixed here.
type Rule string

// The rules.
const (
	// Initiator: deciding (approving or rejecting) a transfer or deposit
	// one initiated.
	Initiator Rule = "initiator"
	// OwnAccount: deciding, depositing into, freezing or unfreezing where an
	// account involved belongs to the actor.
	OwnAccount Rule = "own_account"
)

// ruleError is the log-only cause of a refusal; it names the rule.
type ruleError struct{ rule Rule }

func (e *ruleError) Error() string { return "separation of duties: " + string(e.rule) }

// Refusal returns the error for a broken rule: a Permission (403) error
// whose message tells the client which duty it may not combine, and whose
// cause names the rule for the audit trail and the counters.
func Refusal(r Rule) *errs.Error {
	msg := "separation of duties: you may not act on an account you own"
	if r == Initiator {
		msg = "separation of duties: the initiator cannot approve or reject their own request"
	}
	return &errs.Error{Kind: errs.Permission, Reason: Reason, Msg: msg, Err: &ruleError{rule: r}}
}

// RuleOf returns the rule a refusal from this package broke, and false for
// any other error.
func RuleOf(err error) (Rule, bool) {
	var re *ruleError
	if errors.As(err, &re) {
		return re.rule, true
	}
	return "", false
}

// Action is one staff action on money, described by the facts Check needs.
type Action struct {
	// Actor is the verified user acting. An empty actor is always refused:
	// nobody unauthenticated acts as staff.
	Actor string
	// Initiator is who asked for the operation being decided; empty when
	// the action is not a decision on someone's request.
	Initiator string
	// Owners are the owners of every account the action touches (a
	// settlement account has none and contributes "").
	Owners []string
}

// Check returns nil when the action respects the separation of duties, and
// a Refusal otherwise. The initiator rule is checked first, so an initiator
// learns nothing else about the request they are not allowed to decide.
func Check(a Action) error {
	switch {
	case a.Actor == "":
		return errs.New(errs.Unauthenticated, "authentication required")
	case same(a.Initiator, a.Actor):
		return Refusal(Initiator)
	case slices.ContainsFunc(a.Owners, func(o string) bool { return same(o, a.Actor) }):
		return Refusal(OwnAccount)
	}
	return nil
}

// same compares two user ids. Ids are UUIDs, which the services keep in
// canonical lower case, but a refusal must not hinge on that: an upper-case
// spelling of one's own id is still oneself.
func same(a, b string) bool {
	return a != "" && strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}
