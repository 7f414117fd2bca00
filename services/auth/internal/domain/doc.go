// Package domain holds the auth service's rules: registering users, logging
// them in, rotating refresh tokens, logging out, changing roles, and telling
// every verifier which access tokens are revoked. It imports no transport or
// database code; it declares the Repository it needs and takes a clock.
//
// # Login throttling policy
//
// Login attempts are counted per account (keyed by a hash of the lower-cased
// email, so unknown emails are counted exactly like known ones and the
// throttle cannot be used to discover accounts) and per client IP. A counter
// covers a fixed window (BANK_LOGIN_WINDOW, 15 minutes by default) that
// starts at the first attempt. An attempt is counted before the password is
// checked, so that concurrent guesses cannot slip past the threshold; a
// successful login then clears the account counter and gives its attempt
// back to the IP counter. So an attempt still in flight counts against the
// threshold until it resolves: more than MaxFailures simultaneous logins to
// one account are throttled even when all carry the right password. That is
// the price of not letting a burst of parallel guesses past the threshold.
//
// Once an account has used MaxFailures attempts in its window, every login
// for it (even with the right password) is refused with RESOURCE_EXHAUSTED
// and a Retry-After of the time left in the window. An IP is throttled the
// same way at IPMaxFailures, a higher threshold, because many users may share
// one address behind a NAT.
//
// The trade-off: anyone who knows an email can lock that account's password
// logins for one window with MaxFailures wrong guesses (a denial of service
// against that user). We accept it because the lock is short and temporary,
// sessions already open keep working (refresh tokens are not affected), and
// the edge's per-IP rate limit plus the IP counter here bound how many
// accounts one attacker can lock. The alternative (no account lock, only
// per-IP limits) lets a botnet guess one account's password without limit.
package domain
