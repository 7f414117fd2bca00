package domain_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bastion-bank/bastion/platform/grpctest"
	"github.com/bastion-bank/bastion/services/auth/internal/domain"
)

// TestConfigDefaults: a knob left zero gets the default its comment
// promises; a refresh token of a service built without RefreshTTL lasting
// an hour instead of 30 days would log every user out within the hour.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	tests := []struct {
		name string
		in   domain.Config
		want domain.Config
	}{
		{"all zero", domain.Config{}, domain.Config{MaxFailures: 5, AccountMaxFailures: 50, IPMaxFailures: 20,
			Window: 15 * time.Minute, RefreshTTL: 30 * day, MFATicketTTL: 5 * time.Minute}},
		{"a raised per-client limit raises the ceiling and the network's", domain.Config{MaxFailures: 100},
			domain.Config{MaxFailures: 100, AccountMaxFailures: 100, IPMaxFailures: 400,
				Window: 15 * time.Minute, RefreshTTL: 30 * day, MFATicketTTL: 5 * time.Minute}},
		{"set values kept", domain.Config{MaxFailures: 3, AccountMaxFailures: 7, IPMaxFailures: 9, Window: time.Minute,
			RefreshTTL: day, MFATicketTTL: time.Minute}, domain.Config{MaxFailures: 3, AccountMaxFailures: 7, IPMaxFailures: 9,
			Window: time.Minute, RefreshTTL: day, MFATicketTTL: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, err := domain.New(tt.in, domain.Deps{Store: failingRepo{}, Hasher: mustHasher(t), Policy: mustPolicy(t),
				Issuer: issuer{grpctest.NewClock(time.Now())}, Sealer: sealer(), Revocations: domain.NewRevocations(nil)})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, svc.Config()); diff != "" {
				t.Errorf("New(%+v).Config() mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestNewNeedsItsDependencies: each required collaborator missing alone is
// refused at start-up, not met as a nil pointer at the first request.
func TestNewNeedsItsDependencies(t *testing.T) {
	t.Parallel()
	full := func() domain.Deps {
		return domain.Deps{Store: failingRepo{}, Hasher: mustHasher(t), Policy: mustPolicy(t),
			Issuer: issuer{grpctest.NewClock(time.Now())}, Sealer: sealer(), Revocations: domain.NewRevocations(nil)}
	}
	tests := []struct {
		name    string
		without func(*domain.Deps)
	}{
		{"Store", func(d *domain.Deps) { d.Store = nil }},
		{"Hasher", func(d *domain.Deps) { d.Hasher = nil }},
		{"Policy", func(d *domain.Deps) { d.Policy = nil }},
		{"Issuer", func(d *domain.Deps) { d.Issuer = nil }},
		{"Sealer", func(d *domain.Deps) { d.Sealer = nil }},
		{"Revocations", func(d *domain.Deps) { d.Revocations = nil }},
	}
	if _, err := domain.New(domain.Config{}, full()); err != nil {
		t.Fatalf("New(every dependency) = %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := full()
			tt.without(&d)
			if svc, err := domain.New(domain.Config{}, d); err == nil || svc != nil {
				t.Errorf("New(without %s) gave a service: %v, error %v; want no service and an error", tt.name, svc != nil, err)
			}
		})
	}
}
