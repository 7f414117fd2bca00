package rbac

import (
	"log/slog"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bastion-bank/bastion/platform/errs"
	"github.com/bastion-bank/bastion/platform/identity"
)

// MFAPolicy is BANK_STAFF_MFA: whether staff operations need a second
// factor. Every process reads it (platform/config.Env.StaffMFA), so the edge
// and the services apply one policy.
type MFAPolicy uint8

// The policies. The zero value is the secure default.
const (
	MFARequired MFAPolicy = iota // staff operations need "otp" in the token's amr
	MFAOff                       // workshops: no second factor is asked
)

// String returns the policy as BANK_STAFF_MFA spells it.
func (p MFAPolicy) String() string {
	if p == MFAOff {
		return "off"
	}
	return "required"
}

// WarnIfOff logs a warning when p is MFAOff: a control that is off says so
// loudly at start-up, in every process that applies it.
func (p MFAPolicy) WarnIfOff(logger *slog.Logger) {
	if p == MFAOff {
		logger.Warn("BANK_STAFF_MFA=off: staff operations (deposits, approvals, freezes, user administration) " +
			"are served to managers and admins who logged in with a password only; for workshops, never production")
	}
}

// ReasonMFA is the denial reason of a staff operation without a second
// factor. The edge turns it into the problem type
// "urn:bastion:problem:mfa-required".
const ReasonMFA = "mfa_required"

// staffRoles are the roles a staff operation asks a second factor of.
var staffRoles = []string{identity.RoleManager, identity.RoleAdmin}

// CheckMFA decides the staff_mfa part of the rule for user and the request
// message under policy. A call is a staff operation if the rule has
// staff_mfa and, when it names a field, that field is set; a caller who
// holds a staff role must then present a token whose amr has
// identity.AMROTP, or the call is denied (Permission, reason ReasonMFA).
// A caller without a staff role is not asked: the rule's roles, or the
// service, decide what they may do, and a second factor would not change
// that. It must run after the role check, on a validated request.
func (r Rule) CheckMFA(user identity.User, req proto.Message, policy MFAPolicy) error {
	if r.StaffMFA == nil || policy == MFAOff || !user.HasAnyRole(staffRoles...) || user.HasAMR(identity.AMROTP) {
		return nil
	}
	if f := r.StaffMFA.WhenSet; f != "" {
		m := req.ProtoReflect()
		// A message without the field (impossible for the rule's own
		// method) is treated as a staff operation: closed, not open.
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(f))
		if fd != nil && m.Get(fd).String() == "" {
			return nil
		}
	}
	return &Denied{Reason: ReasonMFA, Err: errs.Reasoned(errs.Permission, ReasonMFA,
		"this staff operation needs multi-factor authentication: log in with a one-time code")}
}
