package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, which deploy/scripts/ensure-chromium.sh
// installs (CI runs it before make test).
const chromiumPath = "/usr/bin/chromium"

// browserTimeout bounds one step of a browser test (a navigation, a wait
// for an element): generous, for a 2-core machine running the suite.
const browserTimeout = 45 * time.Second

// watchPage records, in the page, every Content-Security-Policy violation
// it reports. It is injected through DevTools before any page script runs;
// the page itself could not run an inline script.
const watchPage = `window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber);
});`

// browser is one headless Chromium for one test; each person of the test
// gets a tab in a browser context of their own (their own cookie jar).
type browser struct {
	t   *testing.T
	ctx context.Context
}

// newBrowser starts Chromium trusting the gateway's certificate (by the
// hash of its public key, once Go has verified it against the dev CA). Without Chromium the test fails in CI and is skipped
// elsewhere, saying how to get it.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: CI must run deploy/scripts/ensure-chromium.sh before make test", chromiumPath)
		}
		t.Skipf("%s is missing: run deploy/scripts/ensure-chromium.sh (as root, or apt-get install chromium) for the console's browser tests", chromiumPath)
	}
	t.Cleanup(func() {
		if t.Failed() {
			failed = true
		}
	})
	spki, err := gatewaySPKIHash()
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.UserDataDir(t.TempDir()),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return &browser{t: t, ctx: ctx}
}

// gatewaySPKIHash is the base64 SHA-256 of the public key of the
// certificate the gateway presents, the form
// --ignore-certificate-errors-spki-list takes. The certificate is first
// verified against the stack's dev CA (bank.client trusts only that), so
// Chromium is told to accept exactly the certificate the dev CA vouches
// for, and nothing else that fails verification.
func gatewaySPKIHash() (string, error) {
	resp, err := bank.client.Get(bank.base + "/healthz")
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.VerifiedChains) == 0 {
		return "", errors.New("the gateway's certificate was not verified against the dev CA")
	}
	sum := sha256.Sum256(resp.TLS.VerifiedChains[0][0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// person is one user's tab.
type person struct {
	t   *testing.T
	ctx context.Context
	ip  string

	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
	refusals int // the refused requests (4xx) the test provokes on purpose
	blocked  int // the Trusted Types violations the test provokes on purpose
}

// expectBlocked declares n more Trusted Types violations the test provokes
// on purpose (a string assigned to innerHTML from DevTools, which the
// policy must refuse): checkClean then wants exactly that many reports.
func (p *person) expectBlocked(n int) {
	p.mu.Lock()
	p.blocked += n
	p.mu.Unlock()
}

// expectRefusals declares n more requests the page makes that the bank
// refuses on purpose (a self-approval's 403): Chromium logs each as a
// network error in the console, which checkClean otherwise counts.
func (p *person) expectRefusals(n int) {
	p.mu.Lock()
	p.refusals += n
	p.mu.Unlock()
}

// person opens a tab in a new browser context, sending every request from
// its own client address (through the stack's trusted proxy hop), so that
// per-IP limits of one test do not touch another. Its console is recorded
// and, when the test ends, must hold no error: no exception, no CSP or
// Trusted Types report, no console.error.
func (b *browser) person(name string) *person {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	p := &person{t: b.t, ctx: ctx, ip: bank.nextIP()}
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.messages = append(p.messages, m)
			p.mu.Unlock()
		}
	}()
	b.t.Cleanup(func() {
		p.checkClean(name)
		cancel()
		<-done
	})
	_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"X-Forwarded-For": p.ip}})
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watchPage}); err != nil {
		b.t.Fatal(err)
	}
	p.do(chromedp.EmulateViewport(1280, 800))
	return p
}

// checkClean fails the test on any error or warning the page's console
// got: an exception, a CSP or Trusted Types report, a console.error, or a
// failed request beyond the refusals the test declared.
func (p *person) checkClean(name string) {
	p.t.Helper()
	if p.t.Failed() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if csp, err := evaluate[[]string](p, `window.__cspViolations || []`); err != nil || len(csp) != p.blocked {
		p.t.Errorf("%s's page reported CSP violations %v (%v), want %d", name, csp, err, p.blocked)
	}
	var network []string
	for _, m := range p.messages {
		bad := m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleWarning ||
			strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "TrustedHTML")
		switch {
		case !bad:
		case m.Source == "network":
			network = append(network, m.String()+" "+m.URL)
		case p.blocked > 0 && strings.Contains(m.Text, "TrustedHTML"):
			// the declared violations, counted by their reports above
		default:
			p.t.Errorf("%s's console: %s (source %q, %s:%d)", name, m, m.Source, m.URL, m.Line)
		}
	}
	if len(network) != p.refusals {
		p.t.Errorf("%s's console logged %d failed requests, want the %d the test provoked: %v", name, len(network), p.refusals, network)
	}
}

// do runs steps in the tab, each within browserTimeout.
func (p *person) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	for _, s := range steps {
		ctx, cancel := context.WithTimeout(p.ctx, browserTimeout)
		err := chromedp.Do(ctx, s)
		cancel()
		if err != nil {
			text, _ := evaluate[string](p, `location.hash + ': ' + (document.querySelector('main') ? document.querySelector('main').innerText : '')`)
			p.t.Fatalf("browser step: %v; the page shows %q", err, text)
		}
	}
}

// evaluate evaluates a JavaScript expression in p's page, waiting for it
// if it is a promise.
func evaluate[T any](p *person, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, browserTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// evalMust is evaluate, failing the test on an error.
func evalMust[T any](p *person, expr string) T {
	p.t.Helper()
	v, err := evaluate[T](p, expr)
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor waits until the expression is truthy in the page.
func (p *person) waitFor(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[any](expr, chromedp.WithPollingTimeout(browserTimeout))); err != nil {
		text, _ := evaluate[string](p, `document.querySelector('main') ? document.querySelector('main').innerText : ''`)
		p.t.Fatalf("waiting for %s: %v; the page shows: %q", what, err, text)
	}
}

// text is the textContent of the first element matching the CSS selector.
func (p *person) text(sel string) string {
	p.t.Helper()
	return evalMust[string](p, fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ''`, sel))
}

// refreshCookie is the console's refresh cookie as the browser holds it
// (DevTools sees HttpOnly cookies; the page does not), or nil.
func (p *person) refreshCookie() *network.Cookie {
	p.t.Helper()
	res, err := chromedp.Call(p.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{bank.base + "/console/session/refresh"}})
	if err != nil {
		p.t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "__Secure-bastion-refresh" {
			return c
		}
	}
	return nil
}

// open shows the console's screen at hash (e.g. "#/accounts"), freshly
// drawn: a page already showing it is reloaded, and one showing another
// screen changes its hash (a navigation within the document, which fires
// no load event to wait for); any other page navigates.
func (p *person) open(hash string) {
	p.t.Helper()
	target := bank.base + "/console/" + hash
	switch loc := evalMust[string](p, `location.href`); {
	case loc == target:
		p.do(chromedp.Reload())
	case strings.HasPrefix(loc, bank.base+"/console/"):
		evalMust[string](p, fmt.Sprintf(`location.hash = %q`, hash))
	default:
		p.do(chromedp.Navigate(target))
	}
}

// signIn signs in through the console's form and, when otpSecret is set,
// its one-time-code step, then waits for the signed-in header.
func (p *person) signIn(email, password, otpSecret string) {
	p.t.Helper()
	p.open("#/accounts")
	p.do(chromedp.WaitVisible("#login-email"),
		chromedp.SendKeys("#login-email", email),
		chromedp.SendKeys("#login-password", password),
		chromedp.Click("#login-submit"))
	if otpSecret != "" {
		p.do(chromedp.WaitVisible("#mfa-code"),
			chromedp.SendKeys("#mfa-code", totpCode(p.t, otpSecret)),
			chromedp.Click("#mfa-submit"))
	}
	p.waitFor("the signed-in header", `document.querySelector('#who-name') !== null`)
}

// screenshot saves the viewport as docs/screenshots/<name>.png when
// SCREENSHOTS_DIR is set (make screenshots sets it).
func (p *person) screenshot(name string) {
	p.t.Helper()
	dir := os.Getenv("SCREENSHOTS_DIR")
	if dir == "" {
		return
	}
	// Let the page settle: no request in flight, fonts laid out.
	p.waitFor("the page to settle", `document.readyState === 'complete'`)
	ctx, cancel := context.WithTimeout(p.ctx, browserTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}
