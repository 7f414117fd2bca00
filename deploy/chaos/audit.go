package chaos

import (
	"fmt"
	"maps"
	"slices"
)

// Outcome is what the campaign finally heard about one idempotency key.
type Outcome int

// The outcomes of a key. Only Succeeded and Refused are answers; a key that
// was still being retried when the campaign stopped is Unresolved, and may
// have moved money or not, but at most once.
const (
	Unresolved Outcome = iota
	Succeeded          // a 2xx, possibly a replay
	Refused            // a 4xx: the bank decided not to move the money
)

func (o Outcome) String() string {
	switch o {
	case Succeeded:
		return "succeeded"
	case Refused:
		return "refused"
	}
	return "unresolved"
}

// Intent is one idempotency key the campaign used: the money it asked to
// move, and what it heard back over every attempt.
type Intent struct {
	Key     string
	From    string // the source account; empty for a deposit
	To      string
	Amount  int64
	Deposit bool
	Outcome Outcome
	Status  int      // the final status, for Succeeded and Refused
	IDs     []string // the distinct transfer ids the 2xx answers carried
	// Resent counts deliberate repeats of a succeeded key, as a client that
	// lost the answer sends; Unmarked counts those not answered as a replay
	// (a 2xx with Idempotent-Replayed: true).
	Resent, Unmarked int
}

// Account is one account as a source of the books reports it.
type Account struct {
	ID         string
	Balance    int64
	Available  int64
	Settlement bool // the bank's side of deposits, whose balance is minus them
}

// Entry is one line of an account's history.
type Entry struct {
	TransferID   string
	Amount       int64 // signed: negative for money out
	BalanceAfter int64
	Description  string // the campaign puts each key in its transfer's description
}

// Books is the ledger as one source (the public API, or the database) shows
// it once the traffic has stopped.
type Books struct {
	Source   string
	Accounts []Account
	History  map[string][]Entry // per account id, oldest first
	// Records maps each idempotency key to the transfer id the ledger
	// stored for it; nil when the source cannot see them (the API).
	Records map[string]string
}

// Finding is one way the books break a guarantee.
type Finding struct {
	Kind   string // Duplicated, Lost, …: the guarantee broken
	Detail string
}

func (f Finding) String() string { return f.Kind + ": " + f.Detail }

// The kinds of findings, one per guarantee the audit checks.
const (
	Duplicated  = "duplicated money"          // a key moved money more than once
	Lost        = "lost money"                // a key answered 2xx moved none
	Conserved   = "money not conserved"       // the balances do not sum to the deposits
	Negative    = "negative balance"          // a customer balance or available balance below zero
	Chain       = "broken balanceAfter"       // an entry does not continue its account's history
	Unexplained = "unexplained entry"         // an entry no key of the campaign asked for
	Mismatch    = "answer differs from books" // the ids or the replay marks a client saw are not what was booked
	Missing     = "missing account"           // an account of the campaign the source does not show
)

// Audit checks books against the intents the campaign sent, and returns
// every broken guarantee: each key moved money at most once, each key
// answered 2xx exactly once, under the transfer id the answers carried; the
// customer balances sum to the deposits (and with the bank's settlement
// side, to zero); no balance is negative; each history's balanceAfter chain
// runs from zero to the account's balance; and every entry is explained by
// a key of the campaign. accounts are the campaign's customer accounts.
func Audit(accounts []string, intents []Intent, b Books) []Finding {
	var out []Finding
	add := func(kind, format string, args ...any) {
		out = append(out, Finding{Kind: kind, Detail: b.Source + ": " + fmt.Sprintf(format, args...)})
	}
	byKey := make(map[string]*Intent, len(intents))
	for i := range intents {
		byKey[intents[i].Key] = &intents[i]
	}
	auditAccounts(accounts, intents, b, add)
	for _, id := range slices.Sorted(maps.Keys(b.History)) {
		auditHistory(id, b.History[id], byKey, settlement(b, id), add)
	}
	for i := range intents {
		auditKey(&intents[i], b, add)
	}
	return out
}

// auditAccounts checks that every account is shown, none is negative, and
// the money adds up.
func auditAccounts(accounts []string, intents []Intent, b Books, add func(kind, format string, args ...any)) {
	shown := map[string]Account{}
	var customers, all int64
	hasSettlement := false
	for _, a := range b.Accounts {
		shown[a.ID] = a
		all += a.Balance
		if a.Settlement {
			hasSettlement = true
			continue
		}
		customers += a.Balance
		if a.Balance < 0 || a.Available < 0 {
			add(Negative, "account %s has balance %d, available %d", a.ID, a.Balance, a.Available)
		}
		if got := lastBalance(b.History[a.ID]); got != a.Balance {
			add(Chain, "account %s has balance %d, its history ends at %d", a.ID, a.Balance, got)
		}
	}
	for _, id := range accounts {
		if _, ok := shown[id]; !ok {
			add(Missing, "account %s", id)
		}
	}
	var deposited int64
	for _, in := range intents {
		if in.Deposit && in.Outcome == Succeeded {
			deposited += in.Amount
		}
	}
	if customers != deposited {
		add(Conserved, "customer balances sum to %d, deposits to %d (%+d)", customers, deposited, customers-deposited)
	}
	if hasSettlement && all != 0 {
		add(Conserved, "all balances, settlement included, sum to %d, want 0", all)
	}
}

// auditHistory checks one account's balanceAfter chain and that each entry
// is what a key of the campaign asked for.
func auditHistory(id string, entries []Entry, byKey map[string]*Intent, settlement bool, add func(kind, format string, args ...any)) {
	var running int64
	for n, e := range entries {
		running += e.Amount
		if e.BalanceAfter != running {
			add(Chain, "account %s entry %d (transfer %s): balanceAfter %d, want %d", id, n+1, e.TransferID, e.BalanceAfter, running)
			running = e.BalanceAfter // report each break once, not every entry after it
		}
		if settlement {
			continue // the bank's side of deposits: checked through the deposits' own side
		}
		in, ok := byKey[e.Description]
		switch {
		case !ok:
			add(Unexplained, "account %s entry %d (transfer %s, %+d, %q)", id, n+1, e.TransferID, e.Amount, e.Description)
		case !(in.To == id && e.Amount == in.Amount) && !(in.From == id && e.Amount == -in.Amount):
			add(Unexplained, "account %s entry %d (transfer %s, %+d) under key %s, which asked for %d from %s to %s",
				id, n+1, e.TransferID, e.Amount, in.Key, in.Amount, orBank(in.From), in.To)
		}
	}
}

// auditKey checks how often one key moved money, against what its answers said.
func auditKey(in *Intent, b Books, add func(kind, format string, args ...any)) {
	credits := transfersOf(b.History[in.To], in.Key, in.Amount)
	if len(credits) > 1 {
		add(Duplicated, "key %s moved %d × %d into %s (transfers %v)", in.Key, len(credits), in.Amount, in.To, credits)
	}
	if !in.Deposit {
		if debits := transfersOf(b.History[in.From], in.Key, -in.Amount); !slices.Equal(debits, credits) {
			add(Unexplained, "key %s: debits %v from %s, credits %v into %s", in.Key, debits, in.From, credits, in.To)
		}
	}
	switch in.Outcome {
	case Succeeded:
		if len(credits) == 0 {
			add(Lost, "key %s was answered %d (transfer %v) but moved nothing", in.Key, in.Status, in.IDs)
		}
		switch {
		case len(in.IDs) != 1:
			add(Mismatch, "key %s was answered with %d different transfers %v", in.Key, len(in.IDs), in.IDs)
		case len(credits) > 0 && credits[0] != in.IDs[0]:
			add(Mismatch, "key %s was answered with transfer %s, the books hold %v", in.Key, in.IDs[0], credits)
		}
		if b.Records != nil && len(credits) > 0 && b.Records[in.Key] != credits[0] {
			add(Mismatch, "key %s booked transfer %s, its idempotency record names %q", in.Key, credits[0], b.Records[in.Key])
		}
	case Refused:
		if len(credits) > 0 {
			add(Mismatch, "key %s was refused with %d but moved money (transfers %v)", in.Key, in.Status, credits)
		}
	}
	if in.Unmarked > 0 {
		add(Mismatch, "key %s: %d of %d repeats not answered as a replay (a 2xx with Idempotent-Replayed: true)", in.Key, in.Unmarked, in.Resent)
	}
}

// transfersOf returns the transfer ids of the entries under key moving amount.
func transfersOf(entries []Entry, key string, amount int64) []string {
	var ids []string
	for _, e := range entries {
		if e.Description == key && e.Amount == amount {
			ids = append(ids, e.TransferID)
		}
	}
	return ids
}

func lastBalance(entries []Entry) int64 {
	if len(entries) == 0 {
		return 0
	}
	return entries[len(entries)-1].BalanceAfter
}

func settlement(b Books, id string) bool {
	i := slices.IndexFunc(b.Accounts, func(a Account) bool { return a.ID == id })
	return i >= 0 && b.Accounts[i].Settlement
}

func orBank(id string) string {
	if id == "" {
		return "the bank"
	}
	return id
}
