package domain

import "slices"

// Currency is an ISO 4217 currency the bank keeps accounts in.
type Currency struct {
	Code     string // e.g. "EUR"
	Exponent int    // minor-unit digits: 2 for EUR (cents), 0 for JPY
}

// supported lists the currencies in the order of the proto's `in` rule on
// OpenAccountRequest.currency; a test in the rpc package keeps the two equal.
// It is returned by value from functions, never exposed as a mutable global.
func supported() []Currency {
	return []Currency{
		{"EUR", 2}, {"USD", 2}, {"GBP", 2}, {"CHF", 2}, {"JPY", 0}, {"SEK", 2},
		{"NOK", 2}, {"DKK", 2}, {"PLN", 2}, {"CZK", 2}, {"CAD", 2}, {"AUD", 2},
	}
}

// Currencies returns the supported currencies.
func Currencies() []Currency { return supported() }

// LookupCurrency returns the supported currency with the exact code (ISO
// codes are upper case; "eur" is not accepted), and whether there is one.
func LookupCurrency(code string) (Currency, bool) {
	all := supported()
	i := slices.IndexFunc(all, func(c Currency) bool { return c.Code == code })
	if i < 0 {
		return Currency{}, false
	}
	return all[i], true
}
