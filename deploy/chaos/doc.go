// Package chaos is Bastion's fault campaign: an open-model stream of
// idempotent transfers and reads that retries every failed request with its
// key, a schedule of faults (processes killed and stopped, the database
// restarted and stopped, the gateway's Redis gone) with the time each takes
// to recover, and a money audit of the books the stream leaves behind. The
// command deploy/cmd/chaos runs it against a stack of its own;
// docs/reliability.md says what it guarantees.
package chaos
