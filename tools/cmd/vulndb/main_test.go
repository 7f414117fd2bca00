package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLatestFixed(t *testing.T) {
	t.Parallel()
	semverRange := func(events ...osvEvent) osvRange { return osvRange{Type: "SEMVER", Events: events} }
	introduced := func(v string) osvEvent { return osvEvent{Introduced: v} }
	fixed := func(v string) osvEvent { return osvEvent{Fixed: v} }
	tests := []struct {
		name   string
		ranges []osvRange
		want   string
	}{
		{"never fixed", []osvRange{semverRange(introduced("0"))}, ""},
		{"one fix", []osvRange{semverRange(introduced("0"), fixed("1.2.3"))}, "1.2.3"},
		{"latest of two branches", []osvRange{semverRange(
			introduced("0"), fixed("1.25.12"), introduced("1.26.0-0"), fixed("1.26.10"))}, "1.26.10"},
		{"latest of two ranges", []osvRange{
			semverRange(introduced("1.26.0-0"), fixed("1.26.10")),
			semverRange(introduced("0"), fixed("1.25.12"))}, "1.26.10"},
		{"reintroduced after the fix", []osvRange{semverRange(
			introduced("0"), fixed("1.2.0"), introduced("1.3.0"))}, ""},
		{"pseudo-version", []osvRange{semverRange(
			introduced("0"), fixed("0.0.0-20260610131716-5dc8f53b70a3"))}, "0.0.0-20260610131716-5dc8f53b70a3"},
		{"not semver", []osvRange{{Type: "GIT"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := latestFixed(tt.ranges); got != tt.want {
				t.Errorf("latestFixed(%v) = %q, want %q", tt.ranges, got, tt.want)
			}
		})
	}
}

// TestWrite checks the layout govulncheck reads, byte for byte: x/vulndb's
// own index writer gives the same modules.json and vulns.json.
func TestWrite(t *testing.T) {
	t.Parallel()
	db, err := load(filepath.Join("testdata", "osv"))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	out := filepath.Join(t.TempDir(), "db")
	if err := db.write(out); err != nil {
		t.Fatalf("write: %v", err)
	}
	want := map[string]string{
		"index/db.json": `{"modified":"2099-01-02T03:04:05Z"}`,
		"index/modules.json": `[{"path":"example.com/mod","vulns":[{"id":"GO-2099-0002","modified":"0001-01-01T00:00:00Z"}]},` +
			`{"path":"stdlib","vulns":[{"id":"GO-2099-0001","modified":"2099-01-02T03:04:05Z","fixed":"1.26.10"}]},` +
			`{"path":"toolchain","vulns":[{"id":"GO-2099-0001","modified":"2099-01-02T03:04:05Z","fixed":"1.26.10"}]}]`,
		"index/vulns.json": `[{"id":"GO-2099-0001","modified":"2099-01-02T03:04:05Z","aliases":["CVE-2099-0001"]},` +
			`{"id":"GO-2099-0002","modified":"0001-01-01T00:00:00Z"}]`,
	}
	for name, w := range want {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != w {
			t.Errorf("%s = %s, want %s", name, got, w)
		}
	}
	for _, id := range []string{"GO-2099-0001", "GO-2099-0002"} {
		got, err := os.ReadFile(filepath.Join(out, "ID", id+".json"))
		if err != nil {
			t.Fatal(err)
		}
		src, _ := os.ReadFile(filepath.Join("testdata", "osv", id+".json"))
		if string(got) != string(src) {
			t.Errorf("ID/%s.json differs from the published entry", id)
		}
	}
	if err := db.write(out); err == nil {
		t.Errorf("write over an existing directory = nil error, want one")
	}
}

func TestLoadRefusesAMisnamedEntry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", "osv", "GO-2099-0001.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "GO-2099-9999.json"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := load(dir); err == nil {
		t.Errorf("load of GO-2099-9999.json holding GO-2099-0001 = nil error, want one")
	}
}
