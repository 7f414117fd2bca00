package domain_test

import (
	"context"
	"testing"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

// TestAuditDenial: a denial the platform hands over is written to the
// audit trail with the actor resolved from the call (identity.Actor: a user
// with no id is no user, so the service is named, never "").
func TestAuditDenial(t *testing.T) {
	t.Parallel()
	u := user()
	tests := []struct {
		name      string
		ctx       context.Context
		wantActor string
	}{
		{"user", identity.WithUser(context.Background(), u), u.ID},
		{"service", identity.WithService(context.Background(), "intruder"), "service:intruder"},
		// A user with no id is no user: the audit names the service, never "".
		{"user without an id", identity.WithUser(identity.WithService(context.Background(), "gateway"), identity.User{}), "service:gateway"},
		{"nobody", context.Background(), "anonymous"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			d := identity.Denial{Action: identity.ActionDenied, Actor: identity.Actor(tt.ctx), Reason: "not_owner",
				Method: "/bank.accounts.v1.AccountsService/GetAccount"}
			if err := f.svc.RecordDenial(context.Background(), d); err != nil {
				t.Fatalf("RecordDenial = %v", err)
			}
			evs := f.repo.Events()
			if len(evs) != 1 {
				t.Fatalf("RecordDenial wrote %d events, want 1", len(evs))
			}
			e := evs[0]
			if e.Action != "authz.denied" || e.Outcome != domain.OutcomeDenied || e.Reason != "not_owner" ||
				e.Actor != tt.wantActor || e.Detail["operation"] != "/bank.accounts.v1.AccountsService/GetAccount" {
				t.Errorf("RecordDenial event = %+v, want a denial by %s", e, tt.wantActor)
			}
		})
	}
}
