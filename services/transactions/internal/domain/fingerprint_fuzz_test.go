package domain

import "testing"

// FuzzFingerprint checks the encoding behind idempotency: a key reused with
// a different request must be caught, so two requests share a fingerprint
// only if every field that defines them is equal, however their bytes are
// split between fields, and a transfer never shares one with a deposit.
func FuzzFingerprint(f *testing.F) {
	const acct = "5f0c6a52-8a6b-4c55-9d6e-2f4a1b7e9c10"
	f.Add(acct, acct, int64(5), "EUR", "rent", acct, acct, int64(5), "EUR", "rent")
	f.Add("ab", "c", int64(1), "EUR", "", "a", "bc", int64(1), "EUR", "")
	f.Add("a", "b", int64(12), "EUR", "x", "a", "b", int64(1), "2EUR", "x")
	f.Add("a", "b", int64(-1), "EUR", "", "a", "b", int64(1), "EUR", "")
	f.Add("", "", int64(0), "", "", "", "", int64(0), "", "\x00")
	f.Add("a\x00\x00\x00\x01b", "", int64(0), "", "", "a", "b", int64(0), "", "")
	f.Fuzz(func(t *testing.T, from, to string, amount int64, currency, desc, from2, to2 string, amount2 int64, currency2, desc2 string) {
		a := TransferRequest{From: from, To: to, Amount: amount, Currency: currency, Description: desc, IdempotencyKey: "k1"}
		b := TransferRequest{From: from2, To: to2, Amount: amount2, Currency: currency2, Description: desc2, IdempotencyKey: "k2"}
		same := a.From == b.From && a.To == b.To && a.Amount == b.Amount && a.Currency == b.Currency && a.Description == b.Description
		if (a.fingerprint() == b.fingerprint()) != same {
			t.Fatalf("fingerprint(%+v) == fingerprint(%+v) is %v, want %v", a, b, !same, same)
		}
		d := DepositRequest{AccountID: from, Amount: amount, Currency: to, Reference: currency}
		if d.fingerprint() == a.fingerprint() {
			t.Fatalf("fingerprint(%+v) equals the fingerprint of transfer %+v", d, a)
		}
	})
}
