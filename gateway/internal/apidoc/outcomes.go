package apidoc

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/platform/rbac"
)

// An outcome is one error status an operation can answer, and when.
type outcome struct {
	status int
	when   string
}

// serviceOutcomes are the refusals each public RPC's service decides
// itself, beyond what the edge and the access rule already imply (see
// edgeOutcomes). It is docs/api.md's error table read route by route against
// the services' domain errors. A public RPC missing here stops the
// generator: a new route's errors are written down when the route is.
var serviceOutcomes = map[protoreflect.FullName][]outcome{
	"bank.auth.v1.AuthService.Register": {
		{409, "the email is already registered"},
	},
	"bank.auth.v1.AuthService.Login": {
		{401, "unknown email, wrong password or a disabled user: the same answer, in about the same time"},
		{429, "too many failed logins for this account from this client network, or from all of them: refused even with the right password until Retry-After"},
	},
	"bank.auth.v1.AuthService.Refresh": {
		{401, "the refresh token is unknown, expired or revoked, or was used before (which revokes its whole family)"},
	},
	"bank.auth.v1.AuthService.Logout":  {},
	"bank.auth.v1.AuthService.GetJWKS": {},
	"bank.auth.v1.AuthService.GetMe":   {},
	"bank.auth.v1.AuthService.SetUserRoles": {
		{404, "no such user"},
		{422, "the change would demote the last admin"},
	},
	"bank.auth.v1.AuthService.ListUsers": {},
	"bank.auth.v1.AuthService.DisableUser": {
		{404, "no such user"},
		{422, "the caller is that user: an admin never disables themselves"},
	},
	"bank.auth.v1.AuthService.EnableUser": {
		{404, "no such user"},
	},
	"bank.auth.v1.AuthService.ChangePassword": {
		{403, "the current password is wrong (it counts against the login throttle)"},
		{429, "too many wrong passwords for this account from this client network (the login throttle)"},
	},
	"bank.auth.v1.AuthService.ListSessions": {},
	"bank.auth.v1.AuthService.RevokeSession": {
		{404, "no such session among the caller's"},
	},
	"bank.auth.v1.AuthService.LoginMFA": {
		{401, "the mfaToken is unknown, spent or expired; or the code is wrong, already used, or older than one already used (each counts as a failed login)"},
		{429, "too many failed logins for this account from this client network, or from all of them (the login throttle)"},
	},
	"bank.auth.v1.AuthService.EnrollTOTP": {
		{403, "MFA is on and the caller's token is not from a login with a one-time code (type ends in mfa-required)"},
	},
	"bank.auth.v1.AuthService.VerifyTOTP": {
		{422, "no TOTP enrolment is in progress"},
	},

	"bank.accounts.v1.AccountsService.OpenAccount": {
		{422, "the caller already has the maximum number of open accounts (10)"},
	},
	"bank.accounts.v1.AccountsService.ListAccounts": {
		{403, "ownerId names another user and the caller is neither manager nor admin"},
	},
	"bank.accounts.v1.AccountsService.GetAccount": {},
	"bank.accounts.v1.AccountsService.FreezeAccount": {
		{403, "the caller owns the account: separation of duties (type ends in separation-of-duties)"},
		{404, "no such account"},
		{422, "the account is closed"},
	},
	"bank.accounts.v1.AccountsService.UnfreezeAccount": {
		{403, "the caller owns the account: separation of duties (type ends in separation-of-duties)"},
		{404, "no such account"},
		{422, "the account is closed"},
	},

	"bank.transactions.v1.TransactionsService.CreateTransfer": {
		{404, "toAccountId names no account"},
		{422, "insufficient funds, a frozen or closed account, a currency that does not match both accounts, more than the per-transfer maximum or the daily limit"},
	},
	"bank.transactions.v1.TransactionsService.GetTransfer":   {},
	"bank.transactions.v1.TransactionsService.ListTransfers": {},
	"bank.transactions.v1.TransactionsService.ApproveTransfer": {
		{403, "the caller initiated the transfer or owns either account: separation of duties (type ends in separation-of-duties)"},
		{404, "no such transfer"},
		{422, "the transfer is not awaiting approval, or posting it now breaks a rule (a frozen or closed account)"},
	},
	"bank.transactions.v1.TransactionsService.RejectTransfer": {
		{403, "the caller initiated the transfer or owns either account: separation of duties (type ends in separation-of-duties)"},
		{404, "no such transfer"},
		{422, "the transfer is not awaiting approval"},
	},
	"bank.transactions.v1.TransactionsService.ListTransactions": {},
	"bank.transactions.v1.TransactionsService.CreateDeposit": {
		{403, "the caller owns the account: separation of duties (type ends in separation-of-duties)"},
		{404, "no such account"},
		{422, "a frozen or closed account, a currency that does not match the account, more than the per-transfer maximum, or past the depositor's daily deposit limit"},
	},
}

// route is what the edge knows of one operation, which decides the
// statuses it adds to the service's.
type route struct {
	rule       rbac.Rule
	hasBody    bool // the route reads a JSON body
	idempotent bool // the route takes the Idempotency-Key header
}

// edgeOutcomes are the statuses the gateway and the platform's interceptors
// answer on a route whatever its service does: input errors, the access
// rule's refusals, the body guard, the rate limits and upstream failures.
func edgeOutcomes(r route) []outcome {
	out := []outcome{{400, "malformed JSON, an unknown body field or query parameter, or a value that breaks its schema's rules (violations names each field)"}}
	if r.rule.NeedsUser() {
		out = append(out, outcome{401, "no bearer token, or one that is invalid, expired or revoked"})
		if restricted(r.rule.Roles) {
			out = append(out, outcome{403, "the caller's roles include none of: " + strings.Join(r.rule.Roles, ", ")})
		}
		if r.rule.StaffMFA != nil {
			out = append(out, outcome{403, "a staff operation by a manager or admin whose token is not from a login with a one-time code (type ends in mfa-required; BANK_STAFF_MFA)"})
		}
	}
	if r.rule.Owner != nil {
		out = append(out, outcome{404, "no such " + r.rule.Owner.Resource + ", or it is not the caller's (existence is never revealed)"})
	}
	if r.idempotent {
		out = append(out,
			outcome{409, "a request with this Idempotency-Key is still in progress"},
			outcome{422, "this Idempotency-Key was used before with another body (a retry with the same body replays the first answer, a refusal included)"})
	}
	if r.hasBody {
		out = append(out,
			outcome{413, "the body is larger than 64 KiB"},
			outcome{415, "the body is not application/json"})
	}
	limit := "this client IP's request budget"
	if r.rule.NeedsUser() {
		limit = "the caller's request budget"
	}
	out = append(out,
		outcome{429, "rate limited: " + limit + ", or this client IP's budget of 401 and 403 answers, is spent"},
		outcome{500, "an unexpected failure; the body says no more"},
		outcome{503, "an upstream service is unavailable or did not answer in time"})
	return out
}

// restricted reports whether roles leaves some user out.
func restricted(roles []string) bool {
	for _, r := range []string{identity.RoleUser, identity.RoleManager, identity.RoleAdmin} {
		if !slices.Contains(roles, r) {
			return true
		}
	}
	return false
}

// responses merges the edge's and the service's outcomes of one RPC into
// the operation's error responses, one per status, every one a problem.
func responses(method protoreflect.FullName, r route) (map[string]*Response, error) {
	svc, ok := serviceOutcomes[method]
	if !ok {
		return nil, fmt.Errorf("%s: no entry in serviceOutcomes (gateway/internal/apidoc/outcomes.go): list the statuses its service can answer", method)
	}
	when := map[int][]string{}
	for _, o := range append(edgeOutcomes(r), svc...) {
		when[o.status] = append(when[o.status], o.when)
	}
	out := map[string]*Response{}
	for status, reasons := range when {
		resp := problemResponse(status, strings.Join(reasons, "; or "))
		out[strconv.Itoa(status)] = resp
	}
	return out, nil
}
