package labs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryLabIsComplete holds each lab to the layout labs/README.md
// promises: its README, its break, its exploit and a solution kept apart,
// listed in the README's table; numbered 01, 02, … without gaps.
func TestEveryLabIsComplete(t *testing.T) {
	t.Parallel()
	index, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range All {
		if want := fmt.Sprintf("%02d", i+1); l.ID != want {
			t.Errorf("lab %d has ID %q, want %q", i, l.ID, want)
		}
		for _, f := range []string{"README.md", "break.patch", "exploit/main.go", filepath.Join("..", "solutions", l.Dir()+".md")} {
			info, err := os.Stat(filepath.Join(l.Dir(), f))
			if err != nil || info.Size() == 0 {
				t.Errorf("lab %s: %s is missing or empty", l.ID, f)
			}
		}
		if !strings.Contains(string(index), "("+l.Dir()+"/README.md)") {
			t.Errorf("labs/README.md does not link lab %s", l.Dir())
		}
		readme, _ := os.ReadFile(filepath.Join(l.Dir(), "README.md"))
		if strings.Contains(string(readme), "solutions/") {
			t.Errorf("lab %s: the attendee's README points at the solutions", l.ID)
		}
		if !strings.Contains(string(readme), "make lab-check LAB="+l.ID) {
			t.Errorf("lab %s: the README never says make lab-check LAB=%s", l.ID, l.ID)
		}
	}
}

func TestFind(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"01", "1", "01-jwt-alg-none"} {
		if l, err := Find(id); err != nil || l.ID != "01" {
			t.Errorf("Find(%q) = %v, %v; want lab 01", id, l.ID, err)
		}
	}
	if _, err := Find("99"); err == nil {
		t.Error("Find(99) = nil error, want one")
	}
}
