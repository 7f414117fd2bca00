package compose_test

import (
	"net/url"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// TestServicesRunAsRolesThatOwnNothing: each service connects as its
// runtime role, and only its migrate job, which runs once before it, as the
// schema's owner. A server given the owner's URL could switch off the
// triggers that keep the books and the audit trail.
func TestServicesRunAsRolesThatOwnNothing(t *testing.T) {
	p := load(t)
	for svc, schema := range map[string]string{"auth": "auth", "accounts": "accounts", "transactions": "ledger"} {
		tests := []struct {
			service, wantUser, wantCommand string
		}{
			{svc, "bank_" + schema, ""},
			{svc + "-migrate", "bank_" + schema + "_owner", "migrate"},
		}
		for _, tt := range tests {
			s, ok := p.Services[tt.service]
			if !ok {
				t.Errorf("no service %s", tt.service)
				continue
			}
			if got := dbUser(t, s); got != tt.wantUser {
				t.Errorf("service %s connects as %q, want %q", tt.service, got, tt.wantUser)
			}
			if got := command(s); got != tt.wantCommand {
				t.Errorf("service %s runs %q, want %q", tt.service, got, tt.wantCommand)
			}
		}
		dep, ok := p.Services[svc].DependsOn[svc+"-migrate"]
		if !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("service %s does not wait for %s-migrate to complete (%+v)", svc, svc, p.Services[svc].DependsOn)
		}
		if p.Services[svc+"-migrate"].Restart != "no" {
			t.Errorf("%s-migrate restarts (%q), want it to run once", svc, p.Services[svc+"-migrate"].Restart)
		}
	}
}

// dbUser returns the user of svc's BANK_DATABASE_URL, or "".
func dbUser(t *testing.T, svc types.ServiceConfig) string {
	t.Helper()
	u, err := url.Parse(env(svc, "BANK_DATABASE_URL"))
	if err != nil || u.User == nil {
		return ""
	}
	return u.User.Username()
}

func command(svc types.ServiceConfig) string {
	if len(svc.Command) == 0 {
		return ""
	}
	return svc.Command[0]
}
