// Command vulndb builds, offline, the Go vulnerability database that
// `make vulncheck` hands to govulncheck.
//
// The Go module proxy serves golang.org/x/vulndb, whose data/osv directory
// holds every Go vulnerability report as an OSV entry. govulncheck's
// -db file://DIR wants the layout that vuln.go.dev serves instead
// (index/db.json, index/modules.json, index/vulns.json and ID/<id>.json), so
// this command downloads the pinned version of the module through the proxy
// (go mod download, checked against the checksum database like any module)
// and writes that layout. The index is computed as x/vulndb's own
// internal/database computes it; its cmd/indexdb would do the same, but it
// imports the Google Cloud SDK, hundreds of packages for a few lines of JSON.
//
// The .json.gz copies that vuln.go.dev also serves are left out: govulncheck
// reads only the plain files from a local directory.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

func main() {
	if err := run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "vulndb:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 3 || !strings.HasPrefix(args[1], "golang.org/x/vulndb@") {
		return errors.New("usage: vulndb golang.org/x/vulndb@VERSION OUTPUT_DIR")
	}
	dir, published, err := download(args[1])
	if err != nil {
		return err
	}
	db, err := load(filepath.Join(dir, "data", "osv"))
	if err != nil {
		return err
	}
	// Every entry in data/osv says it was modified at the zero time (the
	// real times come from the repository's history), so the version's
	// commit time is the most truthful date for the database as a whole.
	if published.After(db.modified) {
		db.modified = published
	}
	return db.write(args[2])
}

// download fetches module@version through GOPROXY into the module cache and
// returns its directory and the time of its commit.
func download(modver string) (dir string, published time.Time, err error) {
	cmd := exec.Command("go", "mod", "download", "-json", modver)
	// Outside any module, so that no go.mod or go.sum is read or changed.
	cmd.Dir = os.TempDir()
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var m struct{ Dir, Info, Error string }
	_ = json.Unmarshal(out, &m) // when it fails, go mod download says why in Error
	switch {
	case m.Error != "":
		err = errors.New(m.Error)
	case err == nil && (m.Dir == "" || m.Info == ""):
		err = fmt.Errorf("no module directory in %q", out)
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("go mod download %s: %w", modver, err)
	}
	info, err := os.ReadFile(m.Info)
	if err != nil {
		return "", time.Time{}, err
	}
	var i struct{ Time time.Time }
	if err := json.Unmarshal(info, &i); err != nil {
		return "", time.Time{}, fmt.Errorf("%s: %w", m.Info, err)
	}
	return m.Dir, i.Time, nil
}

// entry is the part of an OSV entry that the index is made of.
type entry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
		Ranges []osvRange `json:"ranges"`
	} `json:"affected"`
}

type osvRange struct {
	Type   string     `json:"type"`
	Events []osvEvent `json:"events"`
}

type osvEvent struct {
	Introduced string `json:"introduced"`
	Fixed      string `json:"fixed"`
}

// database is what govulncheck reads: an index by module and by ID, and each
// entry as it was published.
type database struct {
	modified time.Time
	modules  map[string][]moduleVuln
	vulns    []vuln
	entries  map[string][]byte // by ID
}

// dbMeta is index/db.json: when the database last changed.
type dbMeta struct {
	Modified osvTime `json:"modified"`
}

type moduleVuln struct {
	ID       string  `json:"id"`
	Modified osvTime `json:"modified"`
	// Fixed is the version from which no later version is affected, or
	// empty; govulncheck fetches the entry only for versions below it.
	Fixed string `json:"fixed,omitempty"`
}

type vuln struct {
	ID       string   `json:"id"`
	Modified osvTime  `json:"modified"`
	Aliases  []string `json:"aliases,omitempty"`
}

// osvTime is written as OSV requires: RFC 3339 in UTC, ending in Z.
type osvTime struct{ time.Time }

func (t osvTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Format(time.RFC3339))
}

// load reads every <ID>.json entry of dir.
func load(dir string) (*database, error) {
	files, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	db := &database{modules: map[string][]moduleVuln{}, entries: map[string][]byte{}}
	for _, f := range files {
		if f.IsDir() || filepath.Ext(f.Name()) != ".json" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			return nil, err
		}
		var e entry
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
		if err := db.add(e, b, f.Name()); err != nil {
			return nil, err
		}
	}
	if len(db.entries) == 0 {
		return nil, fmt.Errorf("%s: no OSV entries", dir)
	}
	return db, nil
}

func (db *database) add(e entry, raw []byte, name string) error {
	// govulncheck looks an entry up as ID/<id>.json.
	if e.ID == "" || name != e.ID+".json" {
		return fmt.Errorf("%s: holds entry %q, want a file named after its id", name, e.ID)
	}
	if _, dup := db.entries[e.ID]; dup {
		return fmt.Errorf("%s: id appears twice", e.ID)
	}
	db.entries[e.ID] = raw
	t := osvTime{e.Modified.UTC()}
	db.vulns = append(db.vulns, vuln{ID: e.ID, Modified: t, Aliases: e.Aliases})
	for _, a := range e.Affected {
		db.modules[a.Package.Name] = append(db.modules[a.Package.Name],
			moduleVuln{ID: e.ID, Modified: t, Fixed: latestFixed(a.Ranges)})
	}
	if e.Modified.After(db.modified) {
		db.modified = e.Modified
	}
	return nil
}

// latestFixed is the latest fixed version of the SEMVER ranges, or empty if
// the vulnerability was introduced again after it (or never fixed), as in
// x/vulndb's osvutils.LatestFixed. Versions have no "v" prefix.
func latestFixed(ranges []osvRange) string {
	before := func(v, w string) bool { return semver.Compare("v"+v, "v"+w) < 0 }
	var fixed string
	for _, r := range ranges {
		if r.Type != "SEMVER" {
			continue
		}
		for _, ev := range r.Events {
			if ev.Fixed != "" && before(fixed, ev.Fixed) {
				fixed = ev.Fixed
			}
		}
		for _, ev := range r.Events {
			if ev.Introduced != "" && ev.Introduced != "0" && before(fixed, ev.Introduced) {
				fixed = ""
				break
			}
		}
	}
	return fixed
}

// write creates dir, which must not exist yet, and the database in it.
func (db *database) write(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	for _, d := range []string{"index", "ID"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	type module struct {
		Path  string       `json:"path"`
		Vulns []moduleVuln `json:"vulns"`
	}
	modules := make([]module, 0, len(db.modules))
	for path, vulns := range db.modules {
		slices.SortFunc(vulns, func(a, b moduleVuln) int { return strings.Compare(a.ID, b.ID) })
		modules = append(modules, module{path, vulns})
	}
	slices.SortFunc(modules, func(a, b module) int { return strings.Compare(a.Path, b.Path) })
	slices.SortFunc(db.vulns, func(a, b vuln) int { return strings.Compare(a.ID, b.ID) })

	index := map[string]any{
		"db.json":      dbMeta{osvTime{db.modified}},
		"modules.json": modules,
		"vulns.json":   db.vulns,
	}
	for name, v := range index {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "index", name), b, 0o644); err != nil {
			return err
		}
	}
	for id, raw := range db.entries {
		if err := os.WriteFile(filepath.Join(dir, "ID", id+".json"), raw, 0o644); err != nil {
			return err
		}
	}
	return nil
}
