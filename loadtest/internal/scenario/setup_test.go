package scenario_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/loadtest/internal/bank"
	"github.com/bastion-bank/bastion/loadtest/internal/bank/banktest"
	"github.com/bastion-bank/bastion/loadtest/internal/load"
	"github.com/bastion-bank/bastion/loadtest/internal/report"
	"github.com/bastion-bank/bastion/loadtest/internal/scenario"
)

func newEnv(t *testing.T, opts banktest.Options, users int) (*banktest.Server, scenario.Env) {
	t.Helper()
	srv := banktest.New(opts)
	t.Cleanup(srv.Close)
	c := &bank.Client{HTTP: srv.Client(), Base: srv.BaseURL(), MaxWait: 10 * time.Millisecond}
	return srv, scenario.Env{Client: c, RunID: "t1", Users: users, AdminEmail: banktest.AdminEmail, AdminPassword: banktest.AdminPassword, Log: io.Discard}
}

// drive sends the first n requests of gen and records them.
func drive(t *testing.T, srv *banktest.Server, gen load.Generator, n int) report.Summary {
	t.Helper()
	rec := report.NewRecorder()
	for i := range n {
		req := gen.Next(i)
		resp, err := load.Send(t.Context(), srv.Client(), srv.BaseURL(), req)
		o := report.Outcome{Endpoint: req.Endpoint, Expect: req.Expect}
		if err == nil {
			o.Status = resp.Status
		}
		rec.Record(o)
	}
	return rec.Summarize(time.Second)
}

func TestSetupTransfersFundsEveryUser(t *testing.T) {
	t.Parallel()
	srv, env := newEnv(t, banktest.Options{}, 3)
	gen, err := scenario.SetupTransfers(t.Context(), env)
	if err != nil {
		t.Fatalf("SetupTransfers() error = %v", err)
	}
	g := gen.(*scenario.Transfers)
	if len(g.Users) != 3 {
		t.Fatalf("SetupTransfers made %d users, want 3", len(g.Users))
	}
	for _, u := range g.Users {
		if len(u.Accounts) != 2 || u.Token == "" || srv.Balance(u.Accounts[0]) != scenario.SeedAmount || srv.Balance(u.Accounts[1]) != 0 {
			t.Errorf("user %s: accounts %v token %q balances %d/%d, want two accounts, the first seeded", u.Email, u.Accounts, u.Token,
				srv.Balance(u.Accounts[0]), srv.Balance(u.Accounts[1]))
		}
	}
	s := drive(t, srv, gen, 60)
	if s.Unexpected != 0 || s.Throttled != 0 {
		t.Errorf("transfers stream against a correct server: %+v, want every answer expected", s)
	}
	var moved int64
	for _, u := range g.Users {
		moved += srv.Balance(u.Accounts[1])
		if srv.Balance(u.Accounts[0])+srv.Balance(u.Accounts[1]) != scenario.SeedAmount {
			t.Errorf("user %s's money is not conserved", u.Email)
		}
	}
	if moved == 0 {
		t.Error("no money moved")
	}
}

func TestSetupTransfersNeedsAManager(t *testing.T) {
	t.Parallel()
	t.Run("no credentials", func(t *testing.T) {
		t.Parallel()
		srv, env := newEnv(t, banktest.Options{}, 2)
		env.AdminEmail, env.AdminPassword = "", ""
		if _, err := scenario.SetupTransfers(t.Context(), env); err == nil || len(srv.Calls()) != 0 {
			t.Errorf("SetupTransfers without admin = %v after %d calls, want a refusal before any call", err, len(srv.Calls()))
		}
	})
	t.Run("a plain user", func(t *testing.T) {
		t.Parallel()
		_, env := newEnv(t, banktest.Options{}, 1)
		if _, err := env.Client.Register(t.Context(), "plain@example.com", "plain-password-1", "P"); err != nil {
			t.Fatal(err)
		}
		env.AdminEmail, env.AdminPassword = "plain@example.com", "plain-password-1"
		_, err := scenario.SetupTransfers(t.Context(), env)
		var se *bank.StatusError
		if !errors.As(err, &se) || se.Status != 403 || !strings.Contains(err.Error(), "manager or admin") {
			t.Errorf("SetupTransfers as a plain user = %v, want a 403 that says a manager is needed", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		_, env := newEnv(t, banktest.Options{}, 1)
		env.AdminPassword = "not-it"
		var se *bank.StatusError
		if _, err := scenario.SetupTransfers(t.Context(), env); !errors.As(err, &se) || se.Status != 401 {
			t.Errorf("SetupTransfers with a wrong admin password = %v, want 401", err)
		}
	})
}

func TestSetupRefusesUserCountsOutOfBounds(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, -1, scenario.MaxUsers + 1} {
		srv, env := newEnv(t, banktest.Options{}, n)
		if _, err := scenario.SetupTransfers(t.Context(), env); err == nil {
			t.Errorf("SetupTransfers(users=%d) succeeded", n)
		}
		if _, err := scenario.SetupLogin(t.Context(), env); err == nil {
			t.Errorf("SetupLogin(users=%d) succeeded", n)
		}
		if len(srv.Calls()) != 0 {
			t.Errorf("users=%d: server saw %d calls, want none", n, len(srv.Calls()))
		}
	}
}

func TestSetupStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	_, env := newEnv(t, banktest.Options{}, 50)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := scenario.SetupLogin(ctx, env); err == nil {
		t.Error("SetupLogin on a cancelled context succeeded")
	}
}

func TestLoginStormAgainstThrottlingServer(t *testing.T) {
	t.Parallel()
	srv, env := newEnv(t, banktest.Options{MaxFailures: 3}, 2)
	gen, err := scenario.SetupLogin(t.Context(), env)
	if err != nil {
		t.Fatalf("SetupLogin() error = %v", err)
	}
	s := drive(t, srv, gen, 80)
	byEp := map[string]report.EndpointSummary{}
	for _, e := range s.Endpoints {
		byEp[e.Endpoint] = e
	}
	if byEp[scenario.EndpointLoginRight].Codes[200] == 0 || byEp[scenario.EndpointLoginWrong].Codes[401] == 0 {
		t.Errorf("login storm = %+v, want some successes and some 401s", byEp)
	}
	// Unknown emails never succeed; each is a fresh address so it is never throttled here.
	if e := byEp[scenario.EndpointLoginUnknown]; e.Codes[401] != e.Count {
		t.Errorf("unknown-email logins = %v, want all 401", e.Codes)
	}
	if s.Unexpected != 0 {
		t.Errorf("unexpected answers = %d, want 0", s.Unexpected)
	}
}

func TestAttackAgainstCorrectAndBrokenServers(t *testing.T) {
	t.Parallel()
	t.Run("correct server refuses every probe", func(t *testing.T) {
		t.Parallel()
		srv, env := newEnv(t, banktest.Options{}, 1)
		gen, err := scenario.SetupAttack(t.Context(), env)
		if err != nil {
			t.Fatalf("SetupAttack() error = %v", err)
		}
		n := len(gen.(*scenario.Attack).Probes) * 2
		if s := drive(t, srv, gen, n); s.Unexpected != 0 || s.Total != n {
			for _, e := range s.Endpoints {
				t.Logf("%s: %v expect %v", e.Endpoint, e.Codes, e.Expect)
			}
			t.Errorf("attack on a correct server: %d unexpected of %d, want 0", s.Unexpected, s.Total)
		}
	})
	t.Run("a server with BOLA is caught", func(t *testing.T) {
		t.Parallel()
		srv, env := newEnv(t, banktest.Options{AllowBOLA: true}, 1)
		gen, err := scenario.SetupAttack(t.Context(), env)
		if err != nil {
			t.Fatalf("SetupAttack() error = %v", err)
		}
		s := drive(t, srv, gen, len(gen.(*scenario.Attack).Probes))
		var caught []string
		for _, e := range s.Endpoints {
			if e.Unexpected > 0 {
				caught = append(caught, e.Endpoint)
			}
		}
		if len(caught) != 2 || !strings.HasPrefix(caught[0], "bola-history") || !strings.HasPrefix(caught[1], "bola-read") {
			t.Errorf("probes flagged on a BOLA-vulnerable server = %v, want bola-history and bola-read", caught)
		}
	})
}
