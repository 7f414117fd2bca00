package domain_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bastion-bank/bastion/platform/identity"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// TestAuditDenial: a denial the platform hands over is written to auth's
// audit trail under the action given, with the actor the chain verified
// (identity.Actor: user, else calling service, else anonymous; a user
// without an id is no user), the reason, the refused method and the client
// IP.
func TestAuditDenial(t *testing.T) {
	t.Parallel()
	f := newFixture(t, domain.Config{})
	userID, svc := uuid.NewString(), "intruder-"+uuid.NewString()
	tests := []struct {
		name, actor string
		ctx         context.Context
	}{
		{"user", userID, identity.WithUser(identity.WithService(context.Background(), "gateway"), identity.User{ID: userID})},
		{"service", "service:" + svc, identity.WithService(context.Background(), svc)},
		{"user with no id", "service:" + svc, identity.WithUser(identity.WithService(context.Background(), svc), identity.User{Roles: []string{"admin"}})},
		{"nobody", "anonymous", context.Background()},
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := randomIP()
			d := identity.Denial{Action: identity.ActionDenied, Actor: identity.Actor(tt.ctx), Reason: "role",
				Method: "/bank.auth.v1.AuthService/SetUserRoles", ClientIP: ip}
			if err := f.svc.RecordDenial(context.Background(), d); err != nil {
				t.Fatalf("RecordDenial = %v", err)
			}
			var actor, action, outcome, reason, op string
			err := conn.QueryRow(context.Background(), `SELECT actor, action, outcome, reason, detail->>'operation'
				FROM auth.audit_events WHERE client_ip = $1`, ip).Scan(&actor, &action, &outcome, &reason, &op)
			if err != nil {
				t.Fatalf("read the audit row: %v", err)
			}
			if actor != tt.actor || action != "authz.denied" || outcome != "denied" || reason != "role" ||
				op != "/bank.auth.v1.AuthService/SetUserRoles" {
				t.Errorf("audit row = %s %s %s %s %s, want %s authz.denied denied role SetUserRoles",
					actor, action, outcome, reason, op, tt.actor)
			}
		})
	}
}
