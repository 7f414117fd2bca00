package config_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// bankVar matches a whole BANK_* name in a Go string literal or a manifest.
var bankVar = regexp.MustCompile(`BANK_[A-Z0-9_]*[A-Z0-9]`)

// TestEveryVariableIsDocumented: every BANK_* variable the code reads, or a
// Compose or Kubernetes manifest sets, has a row in docs/configuration.md,
// and that page names no variable nothing reads any more. Test files are
// left out: they invent variables to test the reader.
func TestEveryVariableIsDocumented(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`(BANK_[A-Z0-9_]*[A-Z0-9])`").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}

	used := map[string][]string{} // variable → files that name it
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if name == "testdata" || name == "node_modules" || (strings.HasPrefix(name, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		var re *regexp.Regexp
		switch {
		case strings.HasSuffix(name, "_test.go"):
			return nil
		case strings.HasSuffix(name, ".go"):
			re = goLiteral
		case rel == "docker-compose.yml", strings.HasPrefix(rel, filepath.Join("deploy", "k8s")) && strings.HasSuffix(name, ".yaml"):
			re = bankVar
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			v := m[len(m)-1]
			if !slices.Contains(used[v], rel) {
				used[v] = append(used[v], rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(used) < 20 {
		t.Fatalf("found %d BANK_* variables in the code, want the whole set (is the walk rooted at the repository?)", len(used))
	}
	for v, files := range used {
		if !documented[v] {
			t.Errorf("%s (read or set in %s) has no row in docs/configuration.md", v, strings.Join(files, ", "))
		}
	}
	for v := range documented {
		if used[v] == nil {
			t.Errorf("docs/configuration.md documents %s, which no code reads and no manifest sets", v)
		}
	}
}

// goLiteral matches a BANK_* name that is a whole Go string literal, the way
// the config reader is called; a name inside a comment or a longer string
// (such as a doc example) does not count.
var goLiteral = regexp.MustCompile(`"(BANK_[A-Z0-9_]*[A-Z0-9])"`)
