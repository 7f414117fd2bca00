package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestProgramsChanged(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files []string
		want  []string
	}{
		{"shared code goes into every program", []string{"platform/token/verify.go"}, []string{"auth", "transactions", "accounts", "gateway"}},
		{"generated code too", []string{"proto/bank/auth/v1/auth.pb.go"}, []string{"auth", "transactions", "accounts", "gateway"}},
		{"a service's own code", []string{"services/auth/internal/domain/refresh.go", "services/auth/internal/rpc/auth.go"}, []string{"auth"}},
		{"two programs", []string{"gateway/internal/edge/limit.go", "services/transactions/internal/postgres/move.go"}, []string{"gateway", "transactions"}},
		{"alert rules need no build", []string{"deploy/alerts/bastion.rules.yml"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := programsChanged(tt.files)
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("programsChanged(%v) = %v, want %v", tt.files, got, want)
			}
		})
	}
}

func TestPatchedPaths(t *testing.T) {
	t.Parallel()
	patch := "diff --git a/x/a.go b/x/a.go\n--- a/x/a.go\n+++ b/x/a.go\n@@ -1 +1 @@\n-a\n+b\n" +
		"diff --git a/y/new.go b/y/new.go\nnew file mode 100644\n--- /dev/null\n+++ b/y/new.go\n@@ -0,0 +1 @@\n+c\n"
	path := filepath.Join(t.TempDir(), "break.patch")
	if err := os.WriteFile(path, []byte(patch), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := patchedPaths(path)
	if want := []string{"x/a.go", "y/new.go"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("patchedPaths = %v, %v; want %v", got, err, want)
	}
}
