package scenario

import (
	"context"
	"net/http"

	"github.com/bastion-bank/bastion/loadtest/internal/bank"
	"github.com/bastion-bank/bastion/loadtest/internal/load"
)

// Endpoint labels of the login storm: one login route, told apart by intent.
const (
	EndpointLoginRight   = bank.EndpointLogin + " (right password)"
	EndpointLoginWrong   = bank.EndpointLogin + " (wrong password)"
	EndpointLoginUnknown = bank.EndpointLogin + " (unknown email)"
)

// LoginStorm is the login scenario's generator.
type LoginStorm struct {
	RunID string
	Users []User // registered, not logged in
}

// Next cycles over the users; each user's own attempts go, in fours: right
// password, wrong password, right password, unknown email. A wrong password
// expects 401; once an account has BANK_LOGIN_MAX_FAILURES failures even the
// right password gets 429 until its window passes, and a saturated argon2
// pool sheds logins with 429 as well: the report counts those as throttled.
func (g *LoginStorm) Next(i int) load.Request {
	u := g.Users[i%len(g.Users)]
	var r load.Request
	switch (i / len(g.Users)) % 4 {
	case 0, 2:
		r = bank.Login(u.Email, u.Password)
		r.Endpoint = EndpointLoginRight
	case 1:
		r = bank.Login(u.Email, u.Password+"-wrong")
		r.Endpoint, r.Expect = EndpointLoginWrong, []int{http.StatusUnauthorized}
	default:
		r = bank.Login(Email(g.RunID+"-nobody", i), u.Password)
		r.Endpoint, r.Expect = EndpointLoginUnknown, []int{http.StatusUnauthorized}
	}
	return r
}

// SetupLogin registers env.Users users.
func SetupLogin(ctx context.Context, env Env) (load.Generator, error) {
	if err := checkUsers(env.Users); err != nil {
		return nil, err
	}
	users, err := createUsers(ctx, env, 0, env.Users, false, 0)
	if err != nil {
		return nil, err
	}
	return &LoginStorm{RunID: env.RunID, Users: users}, nil
}
