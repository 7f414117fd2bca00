// Command lab runs Bastion's workshop labs: each lab is the secure bank
// with one control removed by a patch, built from a git worktree of its own
// under .labs/ and started on free loopback ports with a database of its
// own, so that `make run` and other labs are untouched.
//
//	lab start NN     worktree .labs/NN-slug (main + break.patch), build, start, banner
//	lab exploit NN   run the lab's exploit against its stack: EXPLOITED or BLOCKED
//	lab check NN     rebuild from the (edited) worktree, exploit must be BLOCKED, the control's tests must pass
//	lab stop NN      stop the lab's stack (the worktree and database stay)
//	lab reset NN     stop, remove the worktree, drop the database: start again from scratch
//	lab ci           every lab: the patch applies to HEAD, EXPLOITED on its build, BLOCKED on main's
//	lab refresh [NN] rewrite break.patch against HEAD (3-way apply, generated code regenerated)
//	lab list         the labs and their OWASP items
//
// See labs/README.md and docs/workshop.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
}
