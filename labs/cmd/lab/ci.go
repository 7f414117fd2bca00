package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/bastion-bank/bastion/labs"
	"github.com/bastion-bank/bastion/labs/internal/labkit"
)

// ciResult is one lab's row in the CI summary.
type ciResult struct {
	lab          labs.Lab
	broken, main string // the exploit's verdict lines
	problem      string
	built        []string
	elapsed      time.Duration
}

func (r ciResult) ok() bool {
	return r.problem == "" && strings.HasPrefix(r.broken, "EXPLOITED") && strings.HasPrefix(r.main, "BLOCKED")
}

// runCI checks every lab against HEAD: its patch applies, its exploit
// prints EXPLOITED against the patched build and BLOCKED against main's.
// Main is built and started once for every BLOCKED run; each lab builds
// only the programs its patch changes (the rest are main's) and runs in a
// stack of its own, one lab at a time.
func runCI(ctx context.Context, s settings, out io.Writer) error {
	began := time.Now()
	base := filepath.Join(s.Root, ".labs", "ci")
	_ = os.RemoveAll(base)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(base)
	// Main is HEAD, checked out on its own: edits in the working tree
	// (someone's work in progress) are neither built nor patched.
	mainSrc := filepath.Join(base, "main", "src")
	if err := addWorktree(ctx, s.Root, mainSrc); err != nil {
		return err
	}
	defer func() { _ = git(context.WithoutCancel(ctx), s.Root, "worktree", "remove", "--force", mainSrc) }()
	all := []string{"auth", "transactions", "accounts", "gateway"}
	mainBin := filepath.Join(base, "main", "bin")
	fmt.Fprintln(out, "labs-ci: building HEAD …")
	if err := buildPrograms(ctx, mainSrc, mainBin, all); err != nil {
		return err
	}
	mainDB := ciDatabase("main")
	dropDatabase(s.AdminURL, mainDB, io.Discard)
	defer dropDatabase(s.AdminURL, mainDB, out)
	mainStack, err := startStack(ctx, stackOpts{lab: "main", src: mainSrc, bin: mainBin, dir: filepath.Join(base, "main", "dev"), admin: s.AdminURL, db: mainDB})
	if err != nil {
		return fmt.Errorf("start main: %w", err)
	}
	defer mainStack.stop()
	mainState := filepath.Join(base, "main", "state.json")
	if err := labkit.WriteState(mainState, mainStack.state); err != nil {
		return err
	}
	todo, err := selected(s.Args)
	if err != nil {
		return err
	}
	// Two labs at a time: a lab spends much of its time waiting for its
	// stack to start, which the other lab's build can use.
	results := make([]ciResult, len(todo))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex // one lab's log at a time on out
	for range ciParallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var log bytes.Buffer
				results[i] = ciOne(ctx, s, todo[i], base, mainSrc, mainBin, mainState, &log)
				mu.Lock()
				_, _ = out.Write(log.Bytes())
				mu.Unlock()
			}
		}()
	}
	for i := range todo {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return summary(out, results, time.Since(began))
}

// ciParallel is how many labs run at once.
const ciParallel = 2

// ciOne runs one lab: its own build and stack, then the BLOCKED run
// against main.
func ciOne(ctx context.Context, s settings, l labs.Lab, base, mainSrc, mainBin, mainState string, out io.Writer) ciResult {
	t0 := time.Now()
	r := ciResult{lab: l}
	bin, err := buildExploit(ctx, mainSrc, filepath.Join(base, "exploits"), l)
	if err != nil {
		r.problem = err.Error()
		return r
	}
	r = ciLab(ctx, s, l, base, mainSrc, mainBin, bin, out)
	fmt.Fprintf(out, "--- lab %s against main\n", l.ID)
	if v, err := runExploit(ctx, bin, mainState, out); err != nil {
		r.problem = strings.TrimSpace(r.problem + " main: " + err.Error())
	} else {
		r.main = v
	}
	r.elapsed = time.Since(t0)
	return r
}

// selected returns the labs named by args, or every lab.
func selected(args []string) ([]labs.Lab, error) {
	if len(args) == 0 {
		return labs.All, nil
	}
	var out []labs.Lab
	for _, a := range args {
		l, err := labs.Find(a)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// ciLab checks one lab's patch and runs its exploit against its own build.
func ciLab(ctx context.Context, s settings, l labs.Lab, base, mainSrc, mainBin, exploitBin string, out io.Writer) ciResult {
	r := ciResult{lab: l}
	fail := func(err error) ciResult { r.problem = err.Error(); return r }
	fmt.Fprintf(out, "=== lab %s (%s)\n", l.ID, l.Slug)
	dir := filepath.Join(base, l.Dir())
	if err := addWorktree(ctx, s.Root, dir); err != nil {
		return fail(err)
	}
	defer func() { _ = git(context.WithoutCancel(ctx), s.Root, "worktree", "remove", "--force", dir) }()
	patch := patchOf(mainSrc, l)
	if err := git(ctx, dir, "apply", "--whitespace=nowarn", patch); err != nil {
		return fail(fmt.Errorf("the patch no longer applies to HEAD (make labs-refresh): %w", err))
	}
	files, err := patchedPaths(patch)
	if err != nil {
		return fail(err)
	}
	r.built = programsChanged(files)
	bin := filepath.Join(base, "bin-"+l.ID)
	if err := os.MkdirAll(bin, 0o700); err != nil {
		return fail(err)
	}
	for _, p := range []string{"auth", "transactions", "accounts", "gateway"} {
		if !slices.Contains(r.built, p) {
			if err := os.Link(filepath.Join(mainBin, p), filepath.Join(bin, p)); err != nil {
				return fail(err)
			}
		}
	}
	t0 := time.Now()
	if err := buildPrograms(ctx, dir, bin, r.built); err != nil {
		return fail(err)
	}
	built := time.Since(t0)
	defer os.RemoveAll(bin)
	db := ciDatabase(l.ID)
	dropDatabase(s.AdminURL, db, io.Discard)
	defer dropDatabase(s.AdminURL, db, out)
	st, err := startStack(ctx, stackOpts{lab: l.ID, src: dir, bin: bin, dir: filepath.Join(base, "run-"+l.ID), admin: s.AdminURL, db: db})
	if err != nil {
		return fail(fmt.Errorf("start the broken build: %w", err))
	}
	defer st.stop()
	state := filepath.Join(base, "state-"+l.ID+".json")
	if err := labkit.WriteState(state, st.state); err != nil {
		return fail(err)
	}
	fmt.Fprintf(out, "--- lab %s against its broken build (rebuilt: %s in %s, started in %s)\n", l.ID, orNone(r.built),
		built.Round(time.Second), (time.Since(t0) - built).Round(time.Second))
	v, err := runExploit(ctx, exploitBin, state, out)
	if err != nil {
		return fail(err)
	}
	r.broken = v
	return r
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// summary prints the table of every lab and fails if any lab is broken.
func summary(out io.Writer, results []ciResult, elapsed time.Duration) error {
	fmt.Fprintf(out, "\nlabs-ci summary (%d labs, %s)\n\n", len(results), elapsed.Round(time.Second))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "lab\tOWASP\tok\ttime\tbroken build\tmain")
	var bad []string
	for _, r := range results {
		ok := "ok"
		if !r.ok() {
			ok, bad = "FAIL", append(bad, r.lab.ID)
		}
		brokenCol, mainCol := short(r.broken), short(r.main)
		if r.problem != "" {
			brokenCol = "ERROR " + short(r.problem)
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\t%s\t%s\n", r.lab.ID, r.lab.Slug, r.lab.OWASP, ok, r.elapsed.Round(time.Second), brokenCol, mainCol)
	}
	_ = tw.Flush()
	if len(bad) > 0 {
		return errors.New("labs " + strings.Join(bad, ", ") + " are broken")
	}
	return nil
}

func short(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 110 {
		return s[:107] + "..."
	}
	return s
}

// ciDatabase names the database of one stack of this labs-ci run. The
// process id keeps two runs on one PostgreSQL apart (a trainer's check
// beside CI, or two clones): with a fixed name, each run's drop and
// re-create of the other's database answered its stacks with 500s.
func ciDatabase(stack string) string {
	return fmt.Sprintf("bastion_labci_%d_%s", os.Getpid(), stack)
}
