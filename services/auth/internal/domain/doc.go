// Package domain holds the auth service's rules: registering users, logging
// them in, rotating refresh tokens, logging out, changing roles, and telling
// every verifier which access tokens are revoked. It imports no transport or
// database code; it declares the Store it needs and takes a clock.
//
// # Login throttling policy
//
// Failed logins are counted per account and client network, with an
// account-wide ceiling and a per-network spray limit (throttle.go has the
// three counters). Accounts are keyed by a hash of the lower-cased email, so
// unknown emails are counted exactly like known ones and the throttle cannot
// be used to discover accounts. A counter covers a fixed window
// (BANK_LOGIN_WINDOW, 15 minutes by default) that starts at the first
// attempt it counts. An attempt is counted before the password is checked,
// so that concurrent guesses cannot slip past a limit; a successful login
// then clears the account's counter for that client and gives its attempt
// back to the others. So an attempt still in flight counts until it
// resolves: more than MaxFailures simultaneous logins to one account from
// one network are throttled even when all carry the right password. That is
// the price of not letting a burst of parallel guesses past the limit.
//
// A throttled login is refused with RESOURCE_EXHAUSTED and a Retry-After of
// the time left in the window, even with the right password: a client
// network after MaxFailures failures on that account, everyone once the
// account has AccountMaxFailures failures from all clients, and every login
// from a network that has failed on IPMaxFailures different accounts.
//
// The trade-offs: counting per client network means nobody can lock an
// owner out from elsewhere with a few wrong guesses, and a classroom behind
// one NAT does not lock itself out; but a botnet gets MaxFailures guesses
// per network, which the ceiling bounds at AccountMaxFailures per window.
// Reaching the ceiling does lock the account's password logins for everyone
// for one window: that takes AccountMaxFailures/MaxFailures networks, it is
// counted (reason "throttled_account"), and sessions already open keep
// working (refresh tokens are not affected).
//
// # Sessions and revocation: the lock order
//
// The API contract says that once a role change, a disable, a password
// change, a logout, a session revoke or a refresh-token reuse returns, no
// access token issued to that user or family before it is accepted
// anywhere after a second, even one from a refresh that raced with it, and
// that a token never carries roles the user has lost when it is issued (nor
// is issued at all to a disabled user).
// Transactions run in READ COMMITTED, where a statement reads from the
// snapshot taken when it started, even after waiting for a row lock. So the
// guarantee rests on row locks, always taken in this order:
//
//  1. the user's row: FOR NO KEY UPDATE by a login and a refresh, which
//     read the roles and the status they issue under that lock
//     (Tx.LockUserToIssue, Tx.LockTokenOwner), and FOR UPDATE by whatever
//     changes what the user's tokens may carry or whether they may have
//     any (Tx.LockAdmins, Tx.LockUser: a role change, a disable, a
//     password change). The first mode is exclusive as well, so that a
//     change queues behind the login or refresh holding the row and ahead
//     of later ones, instead of waiting for a moment when no session of the
//     user is refreshing;
//  2. refresh families, FOR UPDATE, several in id order;
//  3. the refresh token being spent, FOR UPDATE.
//
// The revoking side reads the access tokens to revoke in a statement of its
// own that starts after it holds its locks, never in the statement that
// waited for them. Then, for every interleaving:
//
//   - A user-wide revocation (revokeUserSessions, or
//     RevokeUserFamiliesExcept for a password change) and a login or
//     refresh of that user: the revocation's FOR UPDATE waits for the login or refresh
//     holding the row to commit and keeps later ones waiting until it
//     commits. One that committed first has its family and token in the
//     revocation's later statements, and they are revoked; one that comes
//     after finds its family revoked (a refresh) or reads the new roles or
//     the disabled status (a login). Roles are read under the lock the change needs to write them,
//     so no token carries roles the user lost before it was issued.
//   - A logout, a session revoke or a reuse and a refresh of the same
//     family: both lock the
//     family. If the refresh holds it first, it commits its new token before
//     letting go, and the revoker's later statement sees that token; if the
//     revoker holds it first, the refresh finds the family revoked.
//
// Nothing that holds a family or a token waits for a user row, and families
// are always locked in id order, so the order cannot deadlock; a deadlock
// or serialization failure would in any case be retried by Store.InTx.
// The revocations are stored and announced (NOTIFY) in the same transaction
// and added to this replica's set before the call returns, and every
// verifier follows the set, which is what bounds "anywhere" to a second.
package domain
