package domain_test

import (
	"testing"

	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
)

func TestLookupCurrency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code     string
		ok       bool
		exponent int
	}{
		{"EUR", true, 2}, {"JPY", true, 0}, {"AUD", true, 2}, {"CZK", true, 2},
		{"eur", false, 0}, {"XXX", false, 0}, {"", false, 0}, {"EURO", false, 0}, {"BTC", false, 0},
	}
	for _, tt := range tests {
		c, ok := domain.LookupCurrency(tt.code)
		if ok != tt.ok || c.Exponent != tt.exponent || (ok && c.Code != tt.code) {
			t.Errorf("LookupCurrency(%q) = %+v, %v; want exponent %d, %v", tt.code, c, ok, tt.exponent, tt.ok)
		}
	}
	// Callers get a copy: changing it cannot change what is supported.
	all := domain.Currencies()
	all[0].Code = "XXX"
	if _, ok := domain.LookupCurrency("XXX"); ok {
		t.Error("LookupCurrency(XXX) found a currency added by mutating Currencies()")
	}
}
