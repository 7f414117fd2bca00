package devstack

import (
	"io"
	"text/template"
)

// BannerInfo is what the start-up banner of `make run` shows.
type BannerInfo struct {
	Addrs         Addrs
	CAFile        string // as the reader should type it (relative to the repository when it can be)
	LogDir        string
	AdminEmail    string
	AdminPassword string
	Generated     bool   // the admin password was generated, not chosen
	AdminTOTPFile string // the admin's TOTP secret, as the reader should type it
	TOTPCommand   string // a command that prints the admin's current one-time code
}

// WriteBanner writes the banner: where everything is, and commands to paste
// that walk a newcomer through the bank as it is meant to be used. They
// register a customer, open the customer's accounts, have the admin log in
// with a one-time code (staff operations need MFA) and deposit into one
// (staff never deposit into an account of their own, by the separation of
// duties), and transfer as the customer. The e2e suite runs these very
// commands against its stack, so they stay true.
func WriteBanner(w io.Writer, b BannerInfo) error {
	return bannerTmpl.Execute(w, b)
}

var bannerTmpl = template.Must(template.New("banner").Parse(`
Bastion is up. Ctrl-C stops everything.

  Gateway   https://{{.Addrs.Gateway}}   (OpenAPI: /openapi.json, docs: /docs)
  Console   https://{{.Addrs.Gateway}}/console/   (register a customer, open two accounts; the admin below deposits under Operations; then Transfer)
  CA file   {{.CAFile}}
  Admin     {{.AdminEmail}} / {{.AdminPassword}}{{if .Generated}}   (generated; set BANK_ADMIN_EMAIL and BANK_ADMIN_PASSWORD to choose){{end}}
            MFA on: TOTP secret in {{.AdminTOTPFile}} (add it to an authenticator app), or a code now: {{.TOTPCommand}}
  Metrics   http://{{.Addrs.GatewayMetrics}}/metrics (gateway), http://{{.Addrs.AuthMetrics}}/metrics (auth),
            http://{{.Addrs.AccountsMetrics}}/metrics (accounts), http://{{.Addrs.TransactionsMetrics}}/metrics (transactions)
  Logs      {{.LogDir}}/<process>.log

Try it (copy and paste, in this order):

  # 1. register a customer (a new one each time) and log in as them
  EMAIL="customer-$(date +%s%N)@example.test"; PW="$(head -c 18 /dev/urandom | base64)"
  curl -s --cacert {{.CAFile}} https://{{.Addrs.Gateway}}/v1/auth/register -H 'Content-Type: application/json' -d "{\"email\":\"$EMAIL\",\"password\":\"$PW\",\"displayName\":\"Demo customer\"}"; echo
  TOKEN=$(curl -s --cacert {{.CAFile}} https://{{.Addrs.Gateway}}/v1/auth/login -H 'Content-Type: application/json' -d "{\"email\":\"$EMAIL\",\"password\":\"$PW\"}" | sed -E 's/.*"accessToken":"([^"]+)".*/\1/')

  # 2. open two accounts as the customer
  A=$(curl -s --cacert {{.CAFile}} https://{{.Addrs.Gateway}}/v1/accounts -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"currency":"EUR","displayName":"Main"}' | sed -E 's/^[^:]*:[^:]*:"([^"]+)".*/\1/'); B=$(curl -s --cacert {{.CAFile}} https://{{.Addrs.Gateway}}/v1/accounts -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"currency":"EUR","displayName":"Savings"}' | sed -E 's/^[^:]*:[^:]*:"([^"]+)".*/\1/'); echo "$A $B"

  # 3. as the admin: log in with the password, then a one-time code (staff operations need MFA; each code
  #    works once), and deposit 100.00 EUR into the customer's account (staff never deposit into their own;
  #    10000.00 EUR or more would wait for a second manager's approval)
  MFA=$(curl -s --cacert {{.CAFile}} https://{{.Addrs.Gateway}}/v1/auth/login -H 'Content-Type: application/json' -d '{"email":"{{.AdminEmail}}","password":"{{.AdminPassword}}"}' | sed -E 's/.*"mfaToken":"([^"]+)".*/\1/')
  ADMIN=$(curl -s --cacert {{.CAFile}} https://{{.Addrs.Gateway}}/v1/auth/login/mfa -H 'Content-Type: application/json' -d "{\"mfaToken\":\"$MFA\",\"code\":\"$({{.TOTPCommand}})\"}" | sed -E 's/.*"accessToken":"([^"]+)".*/\1/')
  curl -s --cacert {{.CAFile}} https://{{.Addrs.Gateway}}/v1/accounts/$A/deposits -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -H "Idempotency-Key: $(date +%s%N)" -d '{"amount":"10000","currency":"EUR","reference":"first deposit"}'; echo

  # 4. as the customer, transfer 25.00 EUR
  curl -s --cacert {{.CAFile}} https://{{.Addrs.Gateway}}/v1/transfers -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -H "Idempotency-Key: $(date +%s%N)" -d "{\"fromAccountId\":\"$A\",\"toAccountId\":\"$B\",\"amount\":\"2500\",\"currency\":\"EUR\",\"description\":\"first transfer\"}"; echo
`))
