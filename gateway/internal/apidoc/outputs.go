package apidoc

import "google.golang.org/protobuf/reflect/protoreflect"

// output is what the document adds to a response field: its enum, format
// or pattern (for a repeated field, of each item).
type output struct {
	Enum    []any
	Format  string
	Pattern string
}

var (
	uuid     = output{Format: "uuid"}
	currency = output{Pattern: "^[A-Z]{3}$"}
)

// outputs are the values response fields take, as docs/api.md states them.
// Requests carry their rules in protovalidate options, which the services
// enforce and this package publishes; responses are not validated, so the
// closed sets and formats of what the services write are listed here.
// TestOutputsNameResponseFields keeps every key a field of a public
// response.
var outputs = map[protoreflect.FullName]output{
	"bank.auth.v1.User.id":                    uuid,
	"bank.auth.v1.User.email":                 {Format: "email"},
	"bank.auth.v1.User.roles":                 {Enum: []any{"user", "manager", "admin"}},
	"bank.auth.v1.User.status":                {Enum: []any{"ACTIVE", "DISABLED"}},
	"bank.auth.v1.Session.id":                 uuid,
	"bank.auth.v1.LoginResponse.token_type":   {Enum: []any{"Bearer"}},
	"bank.auth.v1.RefreshResponse.token_type": {Enum: []any{"Bearer"}},

	"bank.accounts.v1.Account.id":       uuid,
	"bank.accounts.v1.Account.owner_id": uuid,
	"bank.accounts.v1.Account.currency": currency,
	"bank.accounts.v1.Account.status":   {Enum: []any{"ACTIVE", "FROZEN", "CLOSED"}},
	"bank.accounts.v1.Money.currency":   currency,

	"bank.transactions.v1.Transfer.id":                   uuid,
	"bank.transactions.v1.Transfer.from_account_id":      uuid,
	"bank.transactions.v1.Transfer.to_account_id":        uuid,
	"bank.transactions.v1.Transfer.currency":             currency,
	"bank.transactions.v1.Transfer.status":               {Enum: []any{"COMPLETED", "PENDING_APPROVAL", "REJECTED"}},
	"bank.transactions.v1.Transfer.kind":                 {Enum: []any{"TRANSFER", "DEPOSIT"}},
	"bank.transactions.v1.Transfer.hold_reason":          {Enum: []any{"amount", "daily_total"}},
	"bank.transactions.v1.Transfer.initiated_by":         uuid,
	"bank.transactions.v1.Transfer.approved_by":          uuid,
	"bank.transactions.v1.Transfer.rejected_by":          uuid,
	"bank.transactions.v1.Entry.transfer_id":             uuid,
	"bank.transactions.v1.Entry.counterparty_account_id": uuid,
}
