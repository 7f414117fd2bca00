package domaintest_test

import (
	"testing"

	"github.com/bastion-bank/bastion/services/accounts/internal/domain"
	"github.com/bastion-bank/bastion/services/accounts/internal/domain/domaintest"
)

// The fake must meet the same contract as the Postgres repository, or
// domain tests built on it would prove nothing.
func TestFakeRepository(t *testing.T) {
	t.Parallel()
	domaintest.TestRepository(t, func(*testing.T) domain.Repository { return domaintest.NewRepository() })
}
