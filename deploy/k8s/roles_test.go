package k8s_test

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// dbContainer is what the database check reads of a container.
type dbContainer struct {
	Name string   `json:"name"`
	Args []string `json:"args"`
	Env  []envVar `json:"env"`
}

// databaseSecret returns the Secret c's BANK_DATABASE_URL comes from, or "".
func (c dbContainer) databaseSecret() string {
	i := slices.IndexFunc(c.Env, func(e envVar) bool { return e.Name == "BANK_DATABASE_URL" })
	if i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.SecretKeyRef == nil {
		return ""
	}
	return c.Env[i].ValueFrom.SecretKeyRef.Name
}

// TestServicesRunAsRolesThatOwnNothing: each service's server connects with
// its runtime role's Secret; its schema is migrated first, by an init
// container named migrate, with the owner's Secret, which no other
// container of any pod gets. In the dev overlay the two Secrets name the
// runtime role and the owner.
func TestServicesRunAsRolesThatOwnNothing(t *testing.T) {
	t.Parallel()
	services := map[string]string{"auth": "auth", "accounts": "accounts", "transactions": "ledger"}
	for _, dir := range kustomizations {
		objs := render(t, dir)
		for _, p := range databaseProblems(t, objs, services) {
			t.Errorf("%s: %s", dir, p)
		}
		if dir != "overlays/dev" {
			continue
		}
		for svc, schema := range services {
			for secret, want := range map[string]string{"bastion-db-" + svc: "bank_" + schema, "bastion-db-" + svc + "-owner": "bank_" + schema + "_owner"} {
				if got := secretUser(t, objs, secret); got != want {
					t.Errorf("%s: Secret %s names role %q, want %q", dir, secret, got, want)
				}
			}
		}
	}
}

// databaseProblems lists what breaks the rule in objs.
func databaseProblems(t *testing.T, objs []object, services map[string]string) []string {
	t.Helper()
	var p []string
	seen := map[string]bool{}
	for _, o := range append(ofKind(objs, "Deployment"), ofKind(objs, "Job")...) {
		spec := decodeSpec[struct {
			Template struct {
				Spec struct {
					InitContainers []dbContainer `json:"initContainers"`
					Containers     []dbContainer `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		}](t, o)
		pod := spec.Template.Spec
		_, isService := services[o.Metadata.Name]
		for i, c := range slices.Concat(pod.InitContainers, pod.Containers) {
			secret := c.databaseSecret()
			owner := strings.Contains(secret, "-owner")
			initContainer := i < len(pod.InitContainers)
			switch {
			case owner && !(isService && c.Name == "migrate" && initContainer):
				p = append(p, fmt.Sprintf("%s container %s gets the owner's URL from %s", o, c.Name, secret))
			case owner:
				if !isGenerated(secret, "bastion-db-"+o.Metadata.Name+"-owner") || !slices.Equal(c.Args, []string{"migrate"}) {
					p = append(p, fmt.Sprintf("%s migrate container runs %q with %s, want [migrate] with bastion-db-%s-owner", o, c.Args, secret, o.Metadata.Name))
				}
				seen[o.Metadata.Name+"/migrate"] = true
			case isService && c.Name == o.Metadata.Name:
				if !isGenerated(secret, "bastion-db-"+o.Metadata.Name) {
					p = append(p, fmt.Sprintf("%s server connects with %q, want bastion-db-%s (its runtime role)", o, secret, o.Metadata.Name))
				}
				seen[o.Metadata.Name+"/server"] = true
			}
		}
	}
	for svc := range services {
		for _, part := range []string{"server", "migrate"} {
			if !seen[svc+"/"+part] {
				p = append(p, fmt.Sprintf("Deployment/%s has no %s container with a database URL", svc, part))
			}
		}
	}
	return p
}

// secretUser returns the role the url of Secret name (with or without the
// generator's hash suffix) names.
func secretUser(t *testing.T, objs []object, name string) string {
	t.Helper()
	for _, s := range ofKind(objs, "Secret") {
		if !isGenerated(s.Metadata.Name, name) {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(s.Data["url"])
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		u, err := url.Parse(string(raw))
		if err != nil || u.User == nil {
			t.Fatalf("%s: url %q names no role", s, raw)
		}
		return u.User.Username()
	}
	return ""
}

// TestDatabaseChecksCatchWeakenedPods: the check above fails for a server
// given the owner's URL, and for a pod that no longer migrates.
func TestDatabaseChecksCatchWeakenedPods(t *testing.T) {
	t.Parallel()
	services := map[string]string{"auth": "auth", "accounts": "accounts", "transactions": "ledger"}
	objs := render(t, "base")
	tests := []struct {
		name   string
		weaken func(spec string) string
		want   string
	}{
		{"server with the owner's URL", func(s string) string {
			return strings.Replace(s, `"name":"bastion-db-transactions"`, `"name":"bastion-db-transactions-owner"`, 1)
		}, "container transactions gets the owner's URL"},
		{"no migrate container", func(s string) string {
			return strings.Replace(s, `"args":["migrate"]`, `"args":["serve"]`, 1)
		}, "migrate container runs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			weak := slices.Clone(objs)
			for i, o := range weak {
				if o.Kind == "Deployment" && o.Metadata.Name == "transactions" {
					weak[i].Spec = []byte(tt.weaken(string(o.Spec)))
				}
			}
			got := databaseProblems(t, weak, services)
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems of the weakened manifests = %q, want one saying %q", got, tt.want)
			}
		})
	}
}
