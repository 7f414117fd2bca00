package rpc

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bastion-bank/bastion/services/transactions/internal/domain"
)

// The JSON a client sees for each state of a transfer: who decided appears
// under the name of what they decided, and the optional fields appear only
// where they apply.
func TestTransferProtoFields(t *testing.T) {
	t.Parallel()
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	base := domain.Transfer{ID: "t", From: "f", To: "to", Amount: 5, Currency: "EUR", Description: "d",
		Kind: domain.KindTransfer, InitiatedBy: "alice", CreatedAt: at}
	tests := []struct {
		name    string
		mod     func(*domain.Transfer)
		present []string
		absent  []string
	}{
		{"posted at once", func(t *domain.Transfer) { t.Status = domain.StatusCompleted },
			nil, []string{"holdReason", "approvedBy", "rejectedBy", "rejectionReason", "reference"}},
		{"held for the day's total", func(t *domain.Transfer) { t.Status, t.HoldReason = domain.StatusPendingApproval, domain.HoldDailyTotal },
			[]string{"holdReason"}, []string{"approvedBy", "rejectedBy", "rejectionReason"}},
		{"approved", func(t *domain.Transfer) {
			t.Status, t.HoldReason, t.DecidedBy = domain.StatusCompleted, domain.HoldAmount, "boss"
		}, []string{"holdReason", "approvedBy"}, []string{"rejectedBy", "rejectionReason"}},
		{"rejected", func(t *domain.Transfer) {
			t.Status, t.HoldReason, t.DecidedBy, t.Reason = domain.StatusRejected, domain.HoldAmount, "boss", "fraud"
		}, []string{"holdReason", "rejectedBy", "rejectionReason"}, []string{"approvedBy"}},
		{"deposit", func(t *domain.Transfer) { t.Status, t.Kind = domain.StatusCompleted, domain.KindDeposit },
			[]string{"reference"}, []string{"approvedBy", "rejectedBy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := base
			tt.mod(&tr)
			var got map[string]any
			b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(transferProto(tr))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			for _, k := range tt.present {
				if _, ok := got[k]; !ok {
					t.Errorf("transferProto(%+v) has no %q: %s", tr, k, b)
				}
			}
			for _, k := range tt.absent {
				if _, ok := got[k]; ok {
					t.Errorf("transferProto(%+v) has %q, want it absent: %s", tr, k, b)
				}
			}
			wantKind := map[domain.TransferKind]string{domain.KindTransfer: "TRANSFER", domain.KindDeposit: "DEPOSIT"}[tr.Kind]
			if got["kind"] != wantKind {
				t.Errorf("kind = %v, want %s", got["kind"], wantKind)
			}
			if tr.DecidedBy != "" {
				who := map[domain.Status]string{domain.StatusCompleted: "approvedBy", domain.StatusRejected: "rejectedBy"}[tr.Status]
				if diff := cmp.Diff(tr.DecidedBy, got[who]); diff != "" {
					t.Errorf("%s (-want +got):\n%s", who, diff)
				}
			}
		})
	}
}
