package config_test

import (
	"testing"

	"github.com/bastion-bank/bastion/platform/config"
	"github.com/bastion-bank/bastion/platform/rbac"
)

func TestStaffMFA(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		value string
		want  rbac.MFAPolicy
		ok    bool
	}{
		{"", rbac.MFARequired, true},
		{"required", rbac.MFARequired, true},
		{"off", rbac.MFAOff, true},
		{"OFF", rbac.MFARequired, false},
		{"no", rbac.MFARequired, false},
	} {
		env := config.New(func(k string) string {
			if k == "BANK_STAFF_MFA" {
				return tt.value
			}
			return ""
		})
		got := env.StaffMFA()
		if err := env.Err(); got != tt.want || (err == nil) != tt.ok {
			t.Errorf("StaffMFA(%q) = %v, %v; want %v, ok %v", tt.value, got, err, tt.want, tt.ok)
		}
	}
}
