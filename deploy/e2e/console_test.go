package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The console's browser tests: Debian's headless Chromium, driven with
// chromedp, against the whole stack. Each person's page must end with no
// CSP violation and no console error (browser_test.go).

const consolePassword = "correct horse battery"

// registerInConsole opens a customer profile through the console's form
// and waits until the console has signed the new customer in.
func registerInConsole(p *person, email, displayName string) {
	p.t.Helper()
	p.open("#/register")
	p.do(chromedp.WaitVisible("#reg-email"),
		chromedp.SendKeys("#reg-email", email),
		chromedp.SendKeys("#reg-name", displayName),
		chromedp.SendKeys("#reg-password", consolePassword),
		chromedp.Click("#reg-submit"))
	p.waitFor("the accounts page after registering", `document.querySelector('#who-name') && document.querySelector('#open-currency')`)
}

// openInConsole opens an EUR account named name on the accounts page and
// returns its id.
func openInConsole(p *person, name string) string {
	p.t.Helper()
	p.do(chromedp.WaitVisible("#open-name"),
		chromedp.SetValue("#open-currency", "EUR"),
		chromedp.SendKeys("#open-name", name),
		chromedp.Click("#open-submit"))
	p.waitFor("account "+name, fmt.Sprintf(`[...document.querySelectorAll('#accounts .account-name')].some((a) => a.textContent === %q)`, name))
	return evalMust[string](p, fmt.Sprintf(`[...document.querySelectorAll('#accounts tbody tr')].find((r) => r.querySelector('.account-name').textContent === %q).dataset.account`, name))
}

// transferInConsole fills the transfer form and waits for its answer.
func transferInConsole(p *person, from, to, amount, description string) string {
	p.t.Helper()
	p.open("#/transfer")
	p.do(chromedp.WaitVisible("#tx-from"),
		chromedp.SetValue("#tx-from", from),
		chromedp.SendKeys("#tx-to", to),
		chromedp.SendKeys("#tx-amount", amount),
		chromedp.SendKeys("#tx-description", description),
		chromedp.Click("#tx-submit"))
	p.waitFor("the transfer's answer", `document.querySelector('#tx-result .notice')`)
	return p.text("#tx-result")
}

// accountFigure waits until the accounts page shows want in column (balance
// or available) of the account.
func accountFigure(p *person, account, column, want string) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%s of %s to be %s", column, account, want),
		fmt.Sprintf(`(document.querySelector('tr[data-account=%q] .%s') || {}).textContent === %q`, account, column, want))
}

// noStorage fails unless the page holds nothing in any storage API or
// readable cookie: the access token is in a module variable, the refresh
// token in an HttpOnly cookie.
func noStorage(p *person) {
	p.t.Helper()
	got := evalMust[string](p, `JSON.stringify({local: localStorage.length, session: sessionStorage.length, cookie: document.cookie})`)
	if got != `{"local":0,"session":0,"cookie":""}` {
		p.t.Errorf("after login the page's storage = %s, want nothing anywhere", got)
	}
	c := p.refreshCookie()
	if c == nil || !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict || c.Path != "/console/session/" {
		p.t.Errorf("refresh cookie = %+v, want HttpOnly, Secure, SameSite=Strict, Path=/console/session/", c)
	}
}

// TestConsoleCustomerTransfer: a customer registers, opens two accounts and
// transfers between them in the browser; the same submission sent again is
// shown as a replay and moves nothing; logout ends the session for good.
func TestConsoleCustomerTransfer(t *testing.T) {
	b := newBrowser(t)
	p := b.person("customer")
	email := uniqueEmail("console")
	registerInConsole(p, email, "Console customer")
	noStorage(p)
	main := openInConsole(p, "Main")
	savings := openInConsole(p, "Savings")
	admin(t).fund(main, 10000, "EUR")

	// A reload keeps the session: the page has no token, the cookie renews it.
	p.do(chromedp.Reload())
	accountFigure(p, main, "balance", "100.00 EUR")

	res := transferInConsole(p, main, savings, "25.00", "Rent")
	if !strings.Contains(res, "Sent 25.00 EUR.") || strings.Contains(res, "Replayed") {
		t.Fatalf("transfer result = %q, want it sent", res)
	}
	id, key := p.text("#transfer-id"), p.text("#transfer-key")
	p.do(chromedp.Click("#tx-again"))
	p.waitFor("the replay", `document.querySelector('#tx-result').textContent.includes('Replayed')`)
	if again := p.text("#transfer-id"); again != id || p.text("#transfer-key") != key {
		t.Errorf("the same submission again answered transfer %s with key %s, want %s with %s", again, p.text("#transfer-key"), id, key)
	}
	p.open("#/accounts")
	accountFigure(p, main, "balance", "75.00 EUR")
	accountFigure(p, savings, "balance", "25.00 EUR")
	if booked, _ := admin(t).balances(main); booked != "7500" {
		t.Errorf("after a transfer and its replay the source holds %s, want 7500", booked)
	}

	p.open("#/history/" + main)
	p.waitFor("the history", `document.querySelector('#history tbody tr')`)
	if d, a := p.text("#history tbody tr .description"), p.text("#history tbody tr .debit"); d != "Rent" || a != "−25.00 EUR" {
		t.Errorf("newest history entry = %q %q, want Rent −25.00 EUR", d, a)
	}

	// Logout: the bank ends the session (the old refresh token is refused
	// even when presented directly), the cookie is gone, and the back
	// button shows the sign-in screen.
	old := p.refreshCookie()
	p.do(chromedp.Click("#logout"))
	p.waitFor("the sign-in screen", `document.querySelector('#login-email') && !document.querySelector('#who-name')`)
	if c := p.refreshCookie(); c != nil {
		t.Errorf("after logout the browser still holds the refresh cookie")
	}
	got := evalMust[string](p, `fetch('/console/session/refresh', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-Bastion-Console': '1'}, body: '{}'}).then(async (r) => r.status + ' ' + await r.text())`)
	if got != "200 {}" {
		t.Errorf("refresh from the page after logout = %s, want 200 {} (no session, no token)", got)
	}
	if got := replayRefresh(t, p, old.Value); got != http.StatusUnauthorized {
		t.Errorf("the refresh token of the ended session, presented again = %d, want 401", got)
	}
	p.do(chromedp.NavigateBack())
	p.waitFor("the sign-in screen after going back", `document.querySelector('#login-email') && !document.querySelector('#who-name') && !document.querySelector('#accounts')`)
	p.do(chromedp.Reload())
	p.waitFor("the sign-in screen after a reload", `document.querySelector('#login-email') && !document.querySelector('#who-name')`)
}

// replayRefresh presents a refresh token to the console's refresh route as
// the console's own page would (same origin, custom header), outside the
// browser, and returns the status.
func replayRefresh(t *testing.T, p *person, token string) int {
	t.Helper()
	req, err := http.NewRequest("POST", bank.base+"/console/session/refresh", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Bastion-Console", "1")
	req.Header.Set("Origin", bank.base)
	req.Header.Set("X-Forwarded-For", p.ip)
	req.AddCookie(&http.Cookie{Name: "__Secure-bastion-refresh", Value: token})
	resp, err := bank.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// queueDecide clicks verb ("approve") on the queue's row of transfer and
// waits for the answer.
func queueDecide(p *person, transfer, verb string) string {
	p.t.Helper()
	p.open("#/queue")
	row := fmt.Sprintf(`tr[data-transfer=%q]`, transfer)
	p.do(chromedp.WaitVisible(row), chromedp.Click(row+" ."+verb))
	p.waitFor("the decision's answer", `document.querySelector('#queue-result .notice')`)
	return p.text("#queue-result")
}

// TestConsoleSeparationOfDuties: a manager's held deposit cannot be approved
// by that manager (the console shows the separation-of-duties refusal as
// such) and is approved by a second manager; a customer's held transfer is
// approved the same way.
func TestConsoleSeparationOfDuties(t *testing.T) {
	customer := register(t, "held")
	from, to := customer.openAccount("EUR"), customer.openAccount("EUR")
	m1, m2 := manager(t, "depositor"), manager(t, "approver")

	b := newBrowser(t)
	p1 := b.person("first manager")
	p1.signIn(m1.email, consolePassword, m1.otp)
	p1.open("#/operations")
	p1.do(chromedp.WaitVisible("#dep-account"),
		chromedp.SendKeys("#dep-account", from),
		chromedp.SetValue("#dep-currency", "EUR"),
		chromedp.SendKeys("#dep-amount", "15000.00"),
		chromedp.SendKeys("#dep-reference", "opening balance"),
		chromedp.Click("#dep-submit"))
	p1.waitFor("the deposit's answer", `document.querySelector('#dep-result .notice')`)
	if got := p1.text("#dep-result"); !strings.Contains(got, "held for a second manager") {
		t.Fatalf("deposit at the threshold = %q, want it held", got)
	}
	deposit := p1.text("#dep-result code")

	p1.expectRefusals(1) // the self-approval's 403
	got := queueDecide(p1, deposit, "approve")
	problem := evalMust[string](p1, `document.querySelector('#queue-result [data-problem]').dataset.problem`)
	if !strings.HasSuffix(problem, ":separation-of-duties") || !strings.Contains(got, "Refused by the separation of duties") {
		t.Errorf("self-approval shows %q (problem %q), want the separation-of-duties refusal", got, problem)
	}
	if st := admin(t).do("GET", "/v1/transfers/"+deposit, nil).must(t, 200, "get deposit").str("transfer", "status"); st != "PENDING_APPROVAL" {
		t.Errorf("after a refused self-approval the deposit is %s, want PENDING_APPROVAL", st)
	}

	p2 := b.person("second manager")
	p2.signIn(m2.email, consolePassword, m2.otp)
	if got := queueDecide(p2, deposit, "approve"); !strings.Contains(got, "Approved 15,000.00 EUR: now COMPLETED.") {
		t.Errorf("second manager's approval = %q, want it completed", got)
	}
	d := admin(t).do("GET", "/v1/transfers/"+deposit, nil).must(t, 200, "get deposit")
	if d.str("transfer", "status") != "COMPLETED" || d.str("transfer", "approvedBy") != m2.userID {
		t.Errorf("deposit = %s, want COMPLETED and approved by %s", d.Body, m2.userID)
	}

	pc := b.person("customer")
	pc.signIn(customer.email, consolePassword, "")
	if res := transferInConsole(pc, from, to, "10000.00", "Car"); !strings.Contains(res, "Held for approval") {
		t.Fatalf("transfer at the threshold = %q, want it held", res)
	}
	held := pc.text("#transfer-id")
	pc.open("#/accounts")
	accountFigure(pc, from, "balance", "15,000.00 EUR")
	accountFigure(pc, from, "available", "5,000.00 EUR")
	if got := queueDecide(p2, held, "approve"); !strings.Contains(got, "Approved 10,000.00 EUR: now COMPLETED.") {
		t.Errorf("approval of the customer's transfer = %q, want it completed", got)
	}
	pc.open("#/accounts")
	accountFigure(pc, from, "balance", "5,000.00 EUR")
	accountFigure(pc, to, "balance", "10,000.00 EUR")
}

// TestConsoleRendersUserTextInert: markup in a display name, an account
// name and a transfer description is shown as the literal text it is, to the
// customer and to an admin, and none of it runs.
func TestConsoleRendersUserTextInert(t *testing.T) {
	const (
		name        = `<img src=x onerror="window.__xss=1">`
		accountName = `<svg onload=window.__xss=2>`
		description = `<script>window.__xss=3</script><img src=x onerror=window.__xss=4>`
	)
	b := newBrowser(t)
	p := b.person("customer")
	email := uniqueEmail("xss")
	registerInConsole(p, email, name)
	if got := p.text("#who-name"); got != name {
		t.Errorf("the header shows the display name as %q, want the literal %q", got, name)
	}
	from := openInConsole(p, accountName)
	to := openInConsole(p, "Plain")
	admin(t).fund(from, 5000, "EUR")
	if res := transferInConsole(p, from, to, "1.00", description); !strings.Contains(res, "Sent 1.00 EUR.") {
		t.Fatalf("transfer = %q, want it sent", res)
	}
	p.open("#/history/" + from)
	p.waitFor("the history", `document.querySelector('#history tbody tr')`)
	if got := p.text("#history tbody tr .description"); got != description {
		t.Errorf("the history shows the description as %q, want the literal %q", got, description)
	}
	if got := p.text("main h1"); !strings.HasPrefix(got, accountName) {
		t.Errorf("the history's heading = %q, want the literal account name first", got)
	}

	pa := b.person("admin")
	pa.signIn(bank.admin[0], bank.admin[1], bank.adminOTP)
	pa.open("#/users")
	pa.do(chromedp.WaitVisible("#users-email"), chromedp.SendKeys("#users-email", email), chromedp.Click("#users-search"))
	pa.waitFor("the user", fmt.Sprintf(`[...document.querySelectorAll('#users .sub')].some((e) => e.textContent === %q)`, email))
	if got := evalMust[string](pa, fmt.Sprintf(`[...document.querySelectorAll('#users tbody tr')].find((r) => r.querySelector('.sub').textContent === %q).querySelector('.display-name').textContent`, email)); got != name {
		t.Errorf("the admin's user list shows the display name as %q, want the literal %q", got, name)
	}

	// Trusted Types hold even for code the console does not have: a string
	// assigned to innerHTML is refused, so the payload cannot become markup.
	p.expectBlocked(1)
	sink := evalMust[string](p, `(() => { try { document.querySelector('main').appendChild(document.createElement('div')).innerHTML = '<img src=x onerror="window.__xss=5">'; return 'assigned'; } catch (e) { return e.name; } })()`)
	if sink != "TypeError" {
		t.Errorf("assigning a string to innerHTML = %s, want the TypeError of Trusted Types", sink)
	}
	for who, q := range map[string]*person{"customer": p, "admin": pa} {
		if ran := evalMust[string](q, `String(window.__xss)`); ran != "undefined" {
			t.Errorf("a payload ran in the %s's page: window.__xss = %s", who, ran)
		}
		if n := evalMust[float64](q, `document.querySelectorAll('main img, main svg, main script').length`); n != 0 {
			t.Errorf("the %s's page holds %v img, svg or script elements made from user text", who, n)
		}
	}
}

// TestConsoleTour walks every main screen as a customer, a manager and an
// admin, checking each shows what it should, and saves each as a 1280×800
// screenshot when SCREENSHOTS_DIR is set (make screenshots: docs/screenshots).
func TestConsoleTour(t *testing.T) {
	b := newBrowser(t)
	c := b.person("customer")
	c.open("#/login")
	c.do(chromedp.WaitVisible("#login-email"))
	c.screenshot("login")

	email := uniqueEmail("ada")
	c.open("#/register")
	c.do(chromedp.WaitVisible("#reg-email"), chromedp.SendKeys("#reg-email", email), chromedp.SendKeys("#reg-name", "Ada Lovelace"))
	c.screenshot("register")
	c.do(chromedp.SendKeys("#reg-password", consolePassword), chromedp.Click("#reg-submit"))
	c.waitFor("the accounts page", `document.querySelector('#who-name') && document.querySelector('#open-currency')`)
	everyday := openInConsole(c, "Everyday")
	savings := openInConsole(c, "Savings")
	admin(t).fund(everyday, 2500000, "EUR")

	if res := transferInConsole(c, everyday, savings, "12000.00", "Deposit for the flat"); !strings.Contains(res, "Held for approval") {
		t.Fatalf("transfer at the threshold = %q, want it held", res)
	}
	held := c.text("#transfer-id")
	if res := transferInConsole(c, everyday, savings, "120.00", "Groceries"); !strings.Contains(res, "Sent 120.00 EUR.") {
		t.Fatalf("transfer = %q, want it sent", res)
	}
	c.screenshot("transfer")
	c.open("#/accounts")
	accountFigure(c, everyday, "balance", "24,880.00 EUR")
	accountFigure(c, everyday, "available", "12,880.00 EUR")
	c.screenshot("accounts")
	c.open("#/history/" + everyday)
	c.waitFor("the history", `document.querySelectorAll('#history tbody tr').length === 2`)
	c.screenshot("history")
	c.open("#/sessions")
	c.waitFor("the sessions", `[...document.querySelectorAll('#sessions .badge')].some((b) => b.textContent === 'this browser')`)
	c.screenshot("security")
	c.do(chromedp.SendKeys("#pw-current", consolePassword), chromedp.SendKeys("#pw-new", "a brand new passphrase"),
		chromedp.SendKeys("#pw-again", "a brand new passphrase"), chromedp.Click("#pw-submit"))
	c.waitFor("the password change", `(document.querySelector('#pw-result') || {}).textContent === 'Password changed; every other session was signed out.'`)

	m := manager(t, "manager")
	p := b.person("manager")
	p.open("#/accounts")
	p.do(chromedp.WaitVisible("#login-email"), chromedp.SendKeys("#login-email", m.email),
		chromedp.SendKeys("#login-password", consolePassword), chromedp.Click("#login-submit"),
		chromedp.WaitVisible("#mfa-code"), chromedp.SendKeys("#mfa-code", totpCode(t, m.otp)))
	p.screenshot("mfa")
	p.do(chromedp.Click("#mfa-submit"))
	p.waitFor("the signed-in header", `document.querySelector('#who-name') !== null`)
	p.open("#/queue")
	p.do(chromedp.WaitVisible(fmt.Sprintf(`tr[data-transfer=%q]`, held)))
	p.screenshot("approvals")
	p.open("#/operations")
	p.do(chromedp.WaitVisible("#op-account"), chromedp.SendKeys("#op-account", everyday), chromedp.Click("#op-lookup"))
	p.waitFor("the account", `document.querySelector('#op-account-view dl')`)
	p.do(chromedp.SendKeys("#dep-account", savings), chromedp.SetValue("#dep-currency", "EUR"))
	p.screenshot("operations")

	a := b.person("admin")
	a.signIn(bank.admin[0], bank.admin[1], bank.adminOTP)
	a.open("#/users")
	a.waitFor("the users", fmt.Sprintf(`[...document.querySelectorAll('#users .sub')].some((e) => e.textContent === %q)`, email))
	a.screenshot("users")
}
