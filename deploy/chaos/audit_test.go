package chaos

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Two customers, A and B, and the bank's settlement account S.
const (
	acctA, acctB, acctS = "A", "B", "S"
)

// ledger books intents the way a correct bank does: each succeeded intent
// exactly once, in order, under the first id it was answered with, with
// its idempotency record.
func ledger(source string, withSettlement bool, intents []Intent) Books {
	b := Books{Source: source, History: map[string][]Entry{}, Records: map[string]string{}}
	balance := map[string]int64{}
	post := func(acct, id, key string, amount int64) {
		balance[acct] += amount
		b.History[acct] = append(b.History[acct], Entry{TransferID: id, Amount: amount, BalanceAfter: balance[acct], Description: key})
	}
	for _, in := range intents {
		if in.Outcome != Succeeded {
			continue
		}
		from := in.From
		if in.Deposit {
			from = acctS
		}
		post(from, in.IDs[0], in.Key, -in.Amount)
		post(in.To, in.IDs[0], in.Key, in.Amount)
		b.Records[in.Key] = in.IDs[0]
	}
	for _, id := range []string{acctA, acctB, acctS} {
		if id == acctS && !withSettlement {
			delete(b.History, acctS)
			continue
		}
		b.Accounts = append(b.Accounts, Account{ID: id, Balance: balance[id], Available: balance[id], Settlement: id == acctS})
	}
	if !withSettlement {
		b.Records = nil // the API sees neither the bank's side nor the records
	}
	return b
}

// campaign is a small run: two deposits, transfers both ways, a refusal,
// one key still unresolved, and a resent key replayed as it should be.
func campaign() []Intent {
	return []Intent{
		{Key: "seed-a", To: acctA, Amount: 1000, Deposit: true, Outcome: Succeeded, Status: 200, IDs: []string{"t1"}},
		{Key: "seed-b", To: acctB, Amount: 500, Deposit: true, Outcome: Succeeded, Status: 200, IDs: []string{"t2"}},
		{Key: "k1", From: acctA, To: acctB, Amount: 300, Outcome: Succeeded, Status: 200, IDs: []string{"t3"}, Resent: 1},
		{Key: "k2", From: acctB, To: acctA, Amount: 50, Outcome: Succeeded, Status: 200, IDs: []string{"t4"}},
		{Key: "k3", From: acctA, To: acctB, Amount: 9999, Outcome: Refused, Status: 422},
		{Key: "k4", From: acctB, To: acctA, Amount: 7, Outcome: Unresolved},
	}
}

func TestAuditPassesACorrectLedger(t *testing.T) {
	t.Parallel()
	for _, src := range []struct {
		name       string
		settlement bool
	}{{"api", false}, {"database", true}} {
		t.Run(src.name, func(t *testing.T) {
			t.Parallel()
			in := campaign()
			if got := Audit([]string{acctA, acctB}, in, ledger(src.name, src.settlement, in)); len(got) != 0 {
				t.Errorf("Audit(correct ledger) = %v, want no findings", got)
			}
		})
	}
	t.Run("an unresolved key that did move money once", func(t *testing.T) {
		t.Parallel()
		in := campaign()
		booked := slices.Clone(in)
		booked[5].Outcome, booked[5].IDs = Succeeded, []string{"t5"} // the bank did it; the client never heard
		if got := Audit([]string{acctA, acctB}, in, ledger("database", true, booked)); len(got) != 0 {
			t.Errorf("Audit = %v, want no findings: an unresolved key may have moved money, once", got)
		}
	})
}

// TestAuditCatchesBrokenLedgers breaks a correct ledger in each way the
// campaign exists to catch and wants the guarantee it breaks named.
func TestAuditCatchesBrokenLedgers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		src    string // "api" or "database"
		damage func(in []Intent, b *Books)
		want   []string // kinds, in any order; each must be found
	}{
		{"a retried key booked twice", "api", func(in []Intent, b *Books) {
			rebook(b, "t3-again", "k1", acctA, acctB, 300)
		}, []string{Duplicated}},
		{"a replayed deposit booked twice", "database", func(in []Intent, b *Books) {
			rebook(b, "t1-again", "seed-a", acctS, acctA, 1000)
		}, []string{Duplicated, Conserved}},
		{"an unresolved key booked twice", "database", func(in []Intent, b *Books) {
			rebook(b, "t5", "k4", acctB, acctA, 7)
			rebook(b, "t5-again", "k4", acctB, acctA, 7)
		}, []string{Duplicated}},
		{"a key answered 200 but never booked", "api", func(in []Intent, b *Books) {
			in[3].Key = "k2-lost" // the books hold k2; the client heard about k2-lost
		}, []string{Lost, Unexplained}},
		{"a refused key that moved money", "api", func(in []Intent, b *Books) {
			rebook(b, "t6", "k3", acctA, acctB, 9999)
		}, []string{Mismatch, Negative}},
		{"a replay answered with another transfer id", "api", func(in []Intent, b *Books) {
			in[2].IDs = []string{"t3", "t3-other"}
		}, []string{Mismatch}},
		{"a resent key answered without Idempotent-Replayed", "api", func(in []Intent, b *Books) {
			in[2].Unmarked = 1
		}, []string{Mismatch}},
		{"an idempotency record naming another transfer", "database", func(in []Intent, b *Books) {
			b.Records["k1"] = "t4"
		}, []string{Mismatch}},
		{"a balance changed without an entry", "database", func(in []Intent, b *Books) {
			b.Accounts[0].Balance += 100
			b.Accounts[0].Available += 100
		}, []string{Chain, Conserved}},
		{"an entry that does not continue its history", "api", func(in []Intent, b *Books) {
			b.History[acctB][1].BalanceAfter += 1
		}, []string{Chain}},
		{"an entry no key asked for", "api", func(in []Intent, b *Books) {
			rebook(b, "t9", "someone-else", acctA, acctB, 5)
		}, []string{Unexplained}},
		{"an entry with another amount than its key", "api", func(in []Intent, b *Books) {
			rebook(b, "t9", "k2", acctB, acctA, 51)
		}, []string{Unexplained}},
		{"money debited without its credit", "database", func(in []Intent, b *Books) {
			b.History[acctB] = slices.Delete(b.History[acctB], 1, 2) // k1's credit
			b.Accounts[1].Balance -= 300
			b.Accounts[1].Available -= 300
		}, []string{Lost, Conserved, Unexplained, Chain}},
		{"a negative available balance", "api", func(in []Intent, b *Books) {
			b.Accounts[1].Available = -1
		}, []string{Negative}},
		{"an account the source does not show", "api", func(in []Intent, b *Books) {
			b.Accounts = b.Accounts[1:]
			delete(b.History, acctA)
		}, []string{Missing, Conserved, Lost}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := campaign()
			b := ledger(tt.src, tt.src == "database", in)
			tt.damage(in, &b)
			got := Audit([]string{acctA, acctB}, in, b)
			kinds := map[string]bool{}
			for _, f := range got {
				kinds[f.Kind] = true
				if !strings.HasPrefix(f.Detail, tt.src+": ") {
					t.Errorf("finding %q does not name its source %q", f, tt.src)
				}
			}
			for _, k := range tt.want {
				if !kinds[k] {
					t.Errorf("Audit(%s) = %v, want a %q finding", tt.name, got, k)
				}
			}
		})
	}
}

// rebook appends a transfer of amount under key to both sides' histories
// and balances, as a bank that executed it (again) would.
func rebook(b *Books, id, key, from, to string, amount int64) {
	for _, side := range []struct {
		acct   string
		amount int64
	}{{from, -amount}, {to, amount}} {
		i := slices.IndexFunc(b.Accounts, func(a Account) bool { return a.ID == side.acct })
		if i < 0 {
			continue // the API does not see the bank's side
		}
		b.Accounts[i].Balance += side.amount
		b.Accounts[i].Available += side.amount
		b.History[side.acct] = append(b.History[side.acct], Entry{TransferID: id, Amount: side.amount,
			BalanceAfter: b.Accounts[i].Balance, Description: key})
	}
}

func TestFindingNamesItsGuarantee(t *testing.T) {
	t.Parallel()
	f := Finding{Kind: Duplicated, Detail: "api: key k1 moved 2 × 300"}
	if got, want := fmt.Sprint(f), "duplicated money: api: key k1 moved 2 × 300"; got != want {
		t.Errorf("Finding.String() = %q, want %q", got, want)
	}
}
