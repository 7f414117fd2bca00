package domaintest_test

import (
	"testing"

	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain/domaintest"
)

// The fake must meet the same contract as the Postgres store, or
// domain tests built on it would prove nothing.
func TestFakeStore(t *testing.T) {
	t.Parallel()
	domaintest.TestStore(t, func(*testing.T) domain.Store { return domaintest.NewStore() })
}
