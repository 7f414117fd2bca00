package config_test

import (
	"testing"

	"github.com/bastion-bank/bastion/platform/config"
	"github.com/bastion-bank/bastion/platform/rbac"
)

func TestOwnerCacheSize(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		value string
		want  int
		ok    bool
	}{
		{"", rbac.DefaultOwnerCacheSize, true},
		{"0", 0, true},
		{"5000", 5000, true},
		{"-1", rbac.DefaultOwnerCacheSize, false},
		{"lots", rbac.DefaultOwnerCacheSize, false},
	} {
		env := config.New(func(k string) string {
			if k == "BANK_OWNER_CACHE_SIZE" {
				return tt.value
			}
			return ""
		})
		got := env.OwnerCacheSize()
		if err := env.Err(); got != tt.want || (err == nil) != tt.ok {
			t.Errorf("OwnerCacheSize(%q) = %v, %v; want %v, ok %v", tt.value, got, err, tt.want, tt.ok)
		}
	}
}
