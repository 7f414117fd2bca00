package audit

import "testing"

// BenchmarkCleanDetail is the per-row cost of cleaning a transfer's audit
// detail, run for every audit row the ledger writes.
func BenchmarkCleanDetail(b *testing.B) {
	d := map[string]string{"from": "acc-1", "to": "acc-2", "amount": "100", "currency": "EUR", "idempotency_key": "k-1"}
	b.ReportAllocs()
	for b.Loop() {
		if got := cleanDetail(d); len(got) != len(d) {
			b.Fatalf("cleanDetail kept %d keys, want %d", len(got), len(d))
		}
	}
}
