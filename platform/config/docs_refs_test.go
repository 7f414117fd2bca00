package config_test

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
)

// The tests in this file hold the repository's Markdown to the code it
// describes: every relative link resolves, every `make` target, repository
// path and Go test name it cites exists. They read prose only mechanically;
// what a flag defaults to or what a log line says is still for a reviewer.

// mdDoc is one Markdown file, split the way the checks read it.
type mdDoc struct {
	rel     string          // path from the repository root, slash-separated
	prose   string          // the file with code blocks and code spans blanked (offsets kept)
	raw     string          // the file as it is
	code    []snippet       // code spans and the lines of fenced code blocks
	anchors map[string]bool // GitHub's anchors for the file's headings
}

// snippet is text in backticks or a line of a fenced code block.
type snippet struct {
	line int
	text string
}

// repo is what the checks compare the Markdown with.
type repo struct {
	root     string
	docs     []*mdDoc
	tests    map[string]bool // func Test*, Benchmark* and Fuzz* of every _test.go file
	makeGoal map[string]bool // targets of the Makefile
}

// loadRepo walks the repository once for all the tests of this file.
var loadRepo = sync.OnceValues(func() (*repo, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return nil, err
	}
	r := &repo{root: root, tests: map[string]bool{}, makeGoal: map[string]bool{}}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && (name == "testdata" || name == "node_modules" || name == "third_party" || (strings.HasPrefix(name, ".") && p != root)) {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return nil
		}
		return r.read(p)
	})
	if err != nil {
		return nil, err
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		return nil, err
	}
	for _, m := range makeRule.FindAllStringSubmatch(string(mk), -1) {
		r.makeGoal[m[1]] = true
	}
	if len(r.docs) < 5 || len(r.tests) < 100 || len(r.makeGoal) < 5 {
		return nil, fmt.Errorf("found %d Markdown files, %d test funcs and %d make targets under %s: is the walk rooted at the repository?",
			len(r.docs), len(r.tests), len(r.makeGoal), root)
	}
	return r, nil
})

// read takes in one file of the walk: a Markdown file as a doc, a test file
// for the names of its tests.
func (r *repo) read(p string) error {
	rel, err := filepath.Rel(r.root, p)
	if err != nil {
		return err
	}
	switch {
	case strings.HasSuffix(p, ".md"):
		doc, err := readDoc(r.root, filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		r.docs = append(r.docs, doc)
	case strings.HasSuffix(p, "_test.go"):
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range testFunc.FindAllStringSubmatch(string(b), -1) {
			r.tests[m[1]] = true
		}
	}
	return nil
}

var (
	testFunc = regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)\w*)\(`)
	makeRule = regexp.MustCompile(`(?m)^([a-z][a-z0-9_-]*):(?:[^=]|$)`)
	fence    = regexp.MustCompile("^\\s*(```+|~~~+)")
	heading  = regexp.MustCompile(`^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$`)
	codeSpan = regexp.MustCompile("`([^`]+)`")
)

// readDoc reads one Markdown file and splits it into prose, code and headings.
func readDoc(root, rel string) (*mdDoc, error) {
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	d := &mdDoc{rel: rel, raw: string(b), anchors: map[string]bool{}}
	prose := []byte(d.raw)
	var open string // the fence of the code block we are in, if any
	offset := 0
	for i, line := range strings.SplitAfter(d.raw, "\n") {
		start := offset
		offset += len(line)
		if m := fence.FindStringSubmatch(line); m != nil && (open == "" || strings.HasPrefix(m[1], open)) {
			if open == "" {
				open = m[1]
			} else {
				open = ""
			}
			blank(prose[start:offset])
			continue
		}
		if open != "" {
			d.code = append(d.code, snippet{line: i + 1, text: strings.TrimRight(line, "\n")})
			blank(prose[start:offset])
			continue
		}
		if m := heading.FindStringSubmatch(strings.TrimRight(line, "\n")); m != nil {
			addAnchor(d.anchors, slug(m[1]))
		}
	}
	for _, m := range codeSpan.FindAllSubmatchIndex(prose, -1) {
		text := strings.Join(strings.Fields(string(prose[m[2]:m[3]])), " ")
		d.code = append(d.code, snippet{line: d.lineAt(m[0]), text: text})
		blank(prose[m[0]:m[1]])
	}
	d.prose = string(prose)
	return d, nil
}

// blank overwrites b with spaces, keeping line breaks so offsets still give lines.
func blank(b []byte) {
	for i, c := range b {
		if c != '\n' {
			b[i] = ' '
		}
	}
}

func (d *mdDoc) lineAt(offset int) int { return strings.Count(d.raw[:offset], "\n") + 1 }

// slug is the anchor GitHub gives a heading: the rendered text lower-cased,
// every character but letters, digits, spaces, '-' and '_' dropped, and
// each space turned into '-'.
func slug(h string) string {
	h = mdLinkText.ReplaceAllString(h, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-', unicode.IsLetter(r), unicode.IsDigit(r), unicode.In(r, unicode.Mn, unicode.Pc):
			b.WriteRune(r)
		}
	}
	return b.String()
}

var mdLinkText = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)

// addAnchor records a heading's anchor, numbered as GitHub numbers repeats.
func addAnchor(anchors map[string]bool, s string) {
	a := s
	for n := 1; anchors[a]; n++ {
		a = fmt.Sprintf("%s-%d", s, n)
	}
	anchors[a] = true
}

// loadedRepo is the walked repository, or the test's end.
func loadedRepo(t *testing.T) *repo {
	t.Helper()
	r, err := loadRepo()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var (
	// inlineLink is [text](target "title") and ![alt](target).
	inlineLink = regexp.MustCompile(`\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	// refLink is a reference definition: [label]: target.
	refLink = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:[ \t]*<?([^\s>]+)`)
	scheme  = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// TestDocLinksResolve: every relative link in the Markdown names a file or
// directory that exists, and an #anchor into a Markdown file names one of
// its headings.
func TestDocLinksResolve(t *testing.T) {
	t.Parallel()
	r := loadedRepo(t)
	for _, d := range r.docs {
		for _, re := range []*regexp.Regexp{inlineLink, refLink} {
			for _, m := range re.FindAllStringSubmatchIndex(d.prose, -1) {
				target := d.prose[m[2]:m[3]]
				if problem := r.checkLink(d, target); problem != "" {
					t.Errorf("%s:%d: link %q: %s", d.rel, d.lineAt(m[0]), target, problem)
				}
			}
		}
	}
}

// checkLink says what is wrong with a link from d, or "" if nothing is.
func (r *repo) checkLink(d *mdDoc, target string) string {
	if target == "" || scheme.MatchString(target) {
		return "" // an absolute URL: not ours to check offline
	}
	file, anchor, _ := strings.Cut(target, "#")
	file, err := url.PathUnescape(file)
	if err != nil {
		return "not a valid URL path"
	}
	rel := d.rel
	if file != "" {
		rel = path.Join(path.Dir(d.rel), file)
		if strings.HasPrefix(file, "/") {
			rel = strings.TrimPrefix(path.Clean(file), "/")
		}
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return "points outside the repository"
		}
		if _, err := os.Stat(filepath.Join(r.root, filepath.FromSlash(rel))); err != nil {
			return fmt.Sprintf("%s does not exist", rel)
		}
	}
	if anchor == "" || !strings.HasSuffix(rel, ".md") {
		return ""
	}
	linked, err := readDoc(r.root, rel)
	if err != nil {
		return err.Error()
	}
	if !linked.anchors[strings.ToLower(anchor)] {
		return fmt.Sprintf("%s has no heading with anchor #%s", rel, anchor)
	}
	return ""
}

// makeCall is `make` run as a command, and the words after it.
var makeCall = regexp.MustCompile(`(?:^|[\s;&|(])make((?:[ \t]+[^\s;&|#)]+)+)`)

// TestDocMakeTargetsExist: every `make <target>` in backticks or a code
// block is a target of the Makefile.
func TestDocMakeTargetsExist(t *testing.T) {
	t.Parallel()
	r := loadedRepo(t)
	goal := regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	for _, d := range r.docs {
		for _, s := range d.code {
			command, _, _ := strings.Cut(s.text, " #") // a shell comment is prose
			for _, m := range makeCall.FindAllStringSubmatch(command, -1) {
				for _, word := range strings.Fields(m[1]) {
					if strings.Contains(word, "=") || strings.HasPrefix(word, "-") {
						continue // a variable or a flag
					}
					if !goal.MatchString(word) {
						break // the command has ended (a redirection, prose)
					}
					if !r.makeGoal[word] {
						t.Errorf("%s:%d: `make %s`: the Makefile has no target %q", d.rel, s.line, word, word)
					}
				}
			}
		}
	}
}

var (
	// repoPath is a word that starts with one of the repository's top-level
	// directories; only such words are taken for paths, so that URLs,
	// Kubernetes names (deployment/auth) and placeholders are left alone.
	repoPath = regexp.MustCompile(`^(?:\./)?((?:proto|platform|services|gateway|deploy|loadtest|docs|tools|\.ci)/.*)$`)
	// pathBreak separates words in a snippet.
	pathBreak = func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune("`'\"(),;=|&", r) }
)

// TestDocRepoPathsExist: every repository path in backticks or a code block
// (`platform/audit`, `deploy/cmd/auditverify`, `services/auth/internal/password/...`)
// exists. Globs and placeholders (`services/*/cmd`, `cmd/<name>`) are checked
// up to the directory before them; `pkg.Name` is checked as pkg.
func TestDocRepoPathsExist(t *testing.T) {
	t.Parallel()
	r := loadedRepo(t)
	for _, d := range r.docs {
		for _, s := range d.code {
			for _, word := range strings.FieldsFunc(s.text, pathBreak) {
				m := repoPath.FindStringSubmatch(word)
				if m == nil {
					continue
				}
				if p := cleanPath(m[1]); !r.pathExists(p) {
					t.Errorf("%s:%d: `%s`: %s does not exist", d.rel, s.line, word, p)
				}
			}
		}
	}
}

// cleanPath cuts what a doc adds to a path: a glob or placeholder and what
// follows it, a package pattern's "/...", a ":line", trailing punctuation.
func cleanPath(p string) string {
	if i := strings.IndexAny(p, "*?[{<$#"); i >= 0 {
		p = p[:strings.LastIndex(p[:i], "/")+1]
	}
	p = strings.TrimSuffix(p, "/...")
	p, _, _ = strings.Cut(p, ":")
	return strings.TrimRight(p, "./")
}

// pathExists reports whether p is in the repository, reading a last element
// "pkg.Name" (a Go identifier in a package) as the package.
func (r *repo) pathExists(p string) bool {
	if _, err := os.Stat(filepath.Join(r.root, filepath.FromSlash(p))); err == nil {
		return true
	}
	if r.generated(p) {
		return true
	}
	dir, last := path.Split(p)
	pkg, ident, ok := strings.Cut(last, ".")
	if !ok || ident == "" || !unicode.IsUpper([]rune(ident)[0]) {
		return false
	}
	info, err := os.Stat(filepath.Join(r.root, filepath.FromSlash(dir+pkg)))
	return err == nil && info.IsDir()
}

// generated reports whether p is, or is under, a directory the root
// .gitignore names by its full path ("/tools/node_modules/"): one a make
// target creates (npm's install of the pinned tools, say), which a fresh
// clone does not have until that target has run.
func (r *repo) generated(p string) bool {
	ignore, err := os.ReadFile(filepath.Join(r.root, ".gitignore"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(ignore), "\n") {
		dir, ok := strings.CutPrefix(strings.TrimSpace(line), "/")
		if !ok || !strings.HasSuffix(dir, "/") || strings.ContainsAny(dir, "*?[") {
			continue
		}
		if p+"/" == dir || strings.HasPrefix(p, dir) {
			return true
		}
	}
	return false
}

// citedTest is a Go test, benchmark or fuzz target named anywhere in a doc,
// with the characters around it. FuzzXxx and the like are Go's placeholders,
// not names.
var citedTest = regexp.MustCompile(`(.?)\b((?:Test|Benchmark|Fuzz)[A-Z0-9_]\w*)(.?)`)

// TestDocTestNamesExist: every TestX, BenchmarkX and FuzzX a doc cites as
// evidence is a func of some _test.go file, so a renamed or deleted test
// does not leave the docs pointing at nothing.
func TestDocTestNamesExist(t *testing.T) {
	t.Parallel()
	r := loadedRepo(t)
	for _, d := range r.docs {
		for _, m := range citedTest.FindAllStringSubmatchIndex(d.raw, -1) {
			before, name, after := d.raw[m[2]:m[3]], d.raw[m[4]:m[5]], d.raw[m[6]:m[7]]
			if strings.HasSuffix(name, "Xxx") || r.tests[name] {
				continue
			}
			// -run '^TestDecodeRejects' selects every test the prefix starts.
			if before == "^" && !strings.Contains("$|)", after) && r.testWithPrefix(name) {
				continue
			}
			t.Errorf("%s:%d: %s is no func in any _test.go file", d.rel, d.lineAt(m[4]), name)
		}
	}
}

func (r *repo) testWithPrefix(prefix string) bool {
	for name := range r.tests {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// TestDocChecksSeeTheDocs: the walk reaches the docs that matter most, so
// the checks above cannot pass by reading nothing.
func TestDocChecksSeeTheDocs(t *testing.T) {
	t.Parallel()
	r := loadedRepo(t)
	var rels []string
	for _, d := range r.docs {
		rels = append(rels, d.rel)
	}
	for _, want := range []string{"README.md", "docs/runbooks.md", "loadtest/README.md", "deploy/k8s/README.md"} {
		if !slices.Contains(rels, want) {
			t.Errorf("the doc checks read %v, not %s", rels, want)
		}
	}
}
