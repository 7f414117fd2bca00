package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bastion-bank/bastion/labs"
)

// patchOf is the lab's break, relative to the repository.
func patchOf(root string, l labs.Lab) string {
	return filepath.Join(root, "labs", l.Dir(), "break.patch")
}

// ensureWorktree creates the lab's worktree at HEAD with the break applied,
// unless it exists (then it holds the attendee's work and is left alone).
func ensureWorktree(ctx context.Context, root string, l labs.Lab, dir string, out io.Writer) error {
	if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
		fmt.Fprintf(out, "Using the existing worktree %s (make lab-reset LAB=%s starts it afresh).\n", rel(root, dir), l.ID)
		return nil
	}
	if err := addWorktree(ctx, root, dir); err != nil {
		return err
	}
	return git(ctx, dir, "apply", "--whitespace=nowarn", patchOf(root, l))
}

// addWorktree checks HEAD out, detached, at dir.
func addWorktree(ctx context.Context, root, dir string) error {
	_ = git(ctx, root, "worktree", "prune")
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	return git(ctx, root, "worktree", "add", "--detach", "--quiet", dir, "HEAD")
}

func git(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// patchedPaths lists the files a patch changes.
func patchedPaths(patch string) ([]string, error) {
	f, err := os.Open(patch)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var files []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "+++ b/"); ok {
			files = append(files, rest)
		}
	}
	return files, sc.Err()
}

// programsChanged says which programs of the stack a patch's files go into:
// all four for shared code (platform, proto), one for a service's or the
// gateway's own code, none for anything else (alert rules, docs).
func programsChanged(files []string) []string {
	var out []string
	add := func(p ...string) {
		for _, x := range p {
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	for _, f := range files {
		switch {
		case strings.HasPrefix(f, "platform/"), strings.HasPrefix(f, "proto/"), f == "go.work":
			add("auth", "transactions", "accounts", "gateway")
		case strings.HasPrefix(f, "services/auth/"):
			add("auth")
		case strings.HasPrefix(f, "services/accounts/"):
			add("accounts")
		case strings.HasPrefix(f, "services/transactions/"):
			add("transactions")
		case strings.HasPrefix(f, "gateway/"):
			add("gateway")
		}
	}
	return out
}

// generated are the files `make gen` writes: a refresh regenerates them
// rather than patching them.
var generated = []string{"proto/bank/*/v1/*.go", "proto/openapi/*", "deploy/e2e/apiclient/*"}

// refresh rewrites each named lab's (or every lab's) break.patch against
// HEAD: a fresh worktree, a three-way apply of the hand-written part,
// `make gen` when a .proto changed, and the diff written back.
func refresh(ctx context.Context, s settings, out io.Writer) error {
	todo, err := selected(s.Args)
	if err != nil {
		return err
	}
	var failed []string
	for _, l := range todo {
		if err := refreshOne(ctx, s.Root, l); err != nil {
			fmt.Fprintf(out, "%s  FAILED: %v\n", l.ID, err)
			failed = append(failed, l.ID)
			continue
		}
		fmt.Fprintf(out, "%s  %s rewritten against HEAD\n", l.ID, rel(s.Root, patchOf(s.Root, l)))
	}
	if len(failed) > 0 {
		return fmt.Errorf("labs %s need their break redone by hand", strings.Join(failed, ", "))
	}
	return nil
}

func refreshOne(ctx context.Context, root string, l labs.Lab) error {
	dir := filepath.Join(root, ".labs", "refresh", l.Dir())
	_ = git(ctx, root, "worktree", "remove", "--force", dir)
	if err := addWorktree(ctx, root, dir); err != nil {
		return err
	}
	defer func() { _ = git(context.WithoutCancel(ctx), root, "worktree", "remove", "--force", dir) }()
	args := []string{"apply", "--whitespace=nowarn"}
	for _, g := range generated {
		args = append(args, "--exclude="+g)
	}
	args = append(args, patchOf(root, l))
	if err := git(ctx, dir, append([]string{args[0], "-3"}, args[1:]...)...); err != nil {
		// A changed line next to a removed one defeats the three-way
		// merge; one line of context is often still enough.
		if err := git(ctx, root, "worktree", "remove", "--force", dir); err != nil {
			return err
		}
		if err := addWorktree(ctx, root, dir); err != nil {
			return err
		}
		if err2 := git(ctx, dir, append([]string{args[0], "-C1"}, args[1:]...)...); err2 != nil {
			return fmt.Errorf("%w\nand with one line of context: %v", err, err2)
		}
	}
	files, err := patchedPaths(patchOf(root, l))
	if err != nil {
		return err
	}
	if slices.ContainsFunc(files, func(f string) bool { return strings.HasSuffix(f, ".proto") }) {
		// make gen installs the pinned generators in the worktree itself
		// (npm ci, go build): never linked to the main tree's, which npm ci
		// would empty.
		cmd := exec.CommandContext(ctx, "make", "gen")
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("make gen: %w\n%s", err, lastLines(string(b), 20))
		}
	}
	if err := git(ctx, dir, "add", "--all", "--", "."); err != nil {
		return err
	}
	diff := exec.CommandContext(ctx, "git", "diff", "--cached", "HEAD")
	diff.Dir = dir
	b, err := diff.Output()
	if err != nil {
		return err
	}
	return os.WriteFile(patchOf(root, l), b, 0o644)
}
