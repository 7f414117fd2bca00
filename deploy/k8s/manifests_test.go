// Package k8s_test checks Bastion's Kubernetes manifests without a cluster:
// it renders each kustomization the way `kubectl apply -k` would (with the
// kustomize library kubectl embeds) and holds every object to the rules of
// README.md: hardened pods, probes and limits everywhere, a default-deny
// network with exactly the documented openings, and only the gateway exposed.
package k8s_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizations are the directories `kubectl apply -k` is pointed at.
var kustomizations = []string{"base", "overlays/dev"}

// object is the part of a Kubernetes object the checks read.
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec json.RawMessage   `json:"spec"`
	Data map[string]string `json:"data"`
}

func (o object) String() string { return o.Kind + "/" + o.Metadata.Name }

// render builds dir with kustomize and decodes every resource.
func render(t *testing.T, dir string) []object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []object
	for _, r := range rm.Resources() {
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		var o object
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatalf("%s: decode %s: %v", dir, r.CurId(), err)
		}
		out = append(out, o)
	}
	return out
}

func ofKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func decodeSpec[T any](t *testing.T, o object) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(o.Spec, &v); err != nil {
		t.Fatalf("%s: spec: %v", o, err)
	}
	return v
}

// TestEveryManifestParses reads every YAML file under deploy/k8s as it is
// on disk: each document is a Kubernetes object (or a kustomization) with
// a kind, an apiVersion and a name, and every file is used by a
// kustomization, so nothing that looks deployed is silently left out.
func TestEveryManifestParses(t *testing.T) {
	t.Parallel()
	referenced := map[string]bool{}
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no manifests found")
	}
	for _, path := range files {
		docs := parseYAML(t, path)
		if filepath.Base(path) == "kustomization.yaml" {
			for _, res := range kustomizationResources(t, path, docs) {
				referenced[res] = true
			}
			continue
		}
		for i, doc := range docs {
			meta, _ := doc["metadata"].(map[string]any)
			if doc["apiVersion"] == nil || doc["kind"] == nil || meta == nil || meta["name"] == nil {
				t.Errorf("%s document %d lacks apiVersion, kind or metadata.name", path, i)
			}
		}
	}
	for _, path := range files {
		if filepath.Base(path) != "kustomization.yaml" && !referenced[path] {
			t.Errorf("%s is not listed in any kustomization: it would never be applied", path)
		}
	}
}

func parseYAML(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

// kustomizationResources returns the files a kustomization names, checking
// that each exists.
func kustomizationResources(t *testing.T, path string, docs []map[string]any) []string {
	t.Helper()
	if len(docs) != 1 {
		t.Fatalf("%s: want one document", path)
	}
	dir := filepath.Dir(path)
	var out []string
	list, _ := docs[0]["resources"].([]any)
	for _, r := range list {
		p := filepath.Join(dir, r.(string))
		info, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s lists %s, which does not exist", path, r)
			continue
		}
		if info.IsDir() {
			if _, err := os.Stat(filepath.Join(p, "kustomization.yaml")); err != nil {
				t.Errorf("%s lists directory %s, which has no kustomization.yaml", path, r)
			}
			continue
		}
		out = append(out, p)
	}
	return out
}

func TestKustomizationsRenderIntoOneNamespace(t *testing.T) {
	t.Parallel()
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			objs := render(t, dir)
			for _, o := range objs {
				if o.Kind != "Namespace" && o.Metadata.Namespace != "bastion" {
					t.Errorf("%s is in namespace %q, want bastion", o, o.Metadata.Namespace)
				}
			}
			ns := ofKind(objs, "Namespace")
			if len(ns) != 1 || ns[0].Metadata.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
				t.Errorf("namespaces = %v, want one enforcing the restricted Pod Security Standard", ns)
			}
		})
	}
}

// Secrets hold key material and passwords, which never belong in git: the
// only Secrets the manifests may carry are the dev overlay's database URLs,
// and those name a role without a password.
func TestNoSecretMaterialInManifests(t *testing.T) {
	t.Parallel()
	for _, dir := range kustomizations {
		for _, s := range ofKind(render(t, dir), "Secret") {
			if !strings.HasPrefix(s.Metadata.Name, "bastion-db-") || dir != "overlays/dev" {
				t.Errorf("%s: %s is generated from the manifests; key material must come from outside", dir, s)
				continue
			}
			for k, v := range s.Data {
				raw, err := base64.StdEncoding.DecodeString(v)
				if err != nil {
					t.Fatalf("%s: %s[%s] is not base64", dir, s, k)
				}
				u, err := url.Parse(string(raw))
				if err != nil || u.User == nil {
					t.Errorf("%s: %s[%s] is not a database URL naming a role", dir, s, k)
					continue
				}
				if _, has := u.User.Password(); has {
					t.Errorf("%s: %s[%s] carries a password", dir, s, k)
				}
			}
		}
	}
}
