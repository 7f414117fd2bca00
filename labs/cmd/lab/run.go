package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/bastion-bank/bastion/labs"
)

// settings is the runner's configuration, read once from flags and the
// environment.
type settings struct {
	Root     string // the repository's top directory
	AdminURL string // a PostgreSQL superuser URL; each lab gets a database of its own on that server
	Args     []string
}

// defaultAdminURL is the local PostgreSQL of docs/development.md.
const defaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func parseSettings(args []string, getenv func(string) string, stderr io.Writer) (string, settings, error) {
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	fs.StringVar(&s.Root, "root", "", "the repository (default: the git top level of the working directory)")
	fs.StringVar(&s.AdminURL, "database-url", getenv("LAB_DATABASE_URL"), "PostgreSQL superuser URL (default: LAB_DATABASE_URL, else the local server)")
	if err := fs.Parse(args[1:]); err != nil {
		return "", settings{}, err
	}
	if fs.NArg() == 0 {
		return "", settings{}, errors.New("usage: lab start|exploit|check|stop|reset|ci|refresh|list [NN]")
	}
	if s.AdminURL == "" {
		s.AdminURL = defaultAdminURL
	}
	if s.Root == "" {
		out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
		if err != nil {
			return "", settings{}, errors.New("run lab inside the Bastion repository, or pass -root")
		}
		s.Root = strings.TrimSpace(string(out))
	}
	root, err := filepath.Abs(s.Root)
	if err != nil {
		return "", settings{}, err
	}
	s.Root, s.Args = root, fs.Args()[1:]
	return fs.Arg(0), s, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd, s, err := parseSettings(args, getenv, stderr)
	if err != nil {
		return err
	}
	switch cmd {
	case "list":
		for _, l := range labs.All {
			fmt.Fprintf(stdout, "%s  %-26s %-24s %s\n", l.ID, l.Slug, l.OWASP, l.Title)
		}
		return nil
	case "ci":
		return runCI(ctx, s, stdout)
	case "refresh":
		return refresh(ctx, s, stdout)
	}
	if len(s.Args) != 1 {
		return fmt.Errorf("lab %s needs one lab number, e.g. lab %s 01", cmd, cmd)
	}
	lab, err := labs.Find(s.Args[0])
	if err != nil {
		return err
	}
	p := pathsOf(s.Root, lab)
	switch cmd {
	case "start":
		return start(ctx, s, lab, p, stdout)
	case "serve":
		return serve(ctx, s, lab, p, stdout)
	case "exploit":
		_, err := exploit(ctx, s.Root, lab, p.state, stdout)
		return err
	case "check":
		return check(ctx, s, lab, p, stdout)
	case "stop":
		return stopLab(p, stdout)
	case "reset":
		return reset(ctx, s, lab, p, stdout)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// paths are where a lab's files live, all under .labs/ (git-ignored).
type paths struct {
	worktree string // .labs/NN-slug: the attendee's source tree
	run      string // .labs/run/NN: state, logs, PKI, binaries
	state    string
	log      string // the serving runner's own output
	db       string // the lab's database
}

func pathsOf(root string, l labs.Lab) paths {
	run := filepath.Join(root, ".labs", "run", l.ID)
	return paths{
		worktree: filepath.Join(root, ".labs", l.Dir()),
		run:      run,
		state:    filepath.Join(run, "state.json"),
		log:      filepath.Join(run, "lab.log"),
		db:       "bastion_lab_" + l.ID,
	}
}

// rel shows path relative to the repository when it is inside it.
func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}
