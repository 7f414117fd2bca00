// Package compose_test keeps docker-compose.yml correct without a Docker
// engine: it loads the file with compose-go, the loader Docker Compose itself
// uses, and checks the properties the stack promises.
package compose_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

const root = "../.."

func load(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv([]string{}), // hermetic: only the file's own defaults
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatalf("NewProjectOptions: %v", err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("LoadProject(docker-compose.yml) = %v", err)
	}
	return p
}

func TestServicesExist(t *testing.T) {
	p := load(t)
	want := []string{"postgres", "init", "auth-migrate", "accounts-migrate", "transactions-migrate",
		"auth", "accounts", "transactions", "gateway", "otel-collector", "jaeger", "prometheus", "grafana"}
	got := p.ServiceNames()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("services = %v, want %v", got, want)
	}
}

// TestOnlyTheEdgeAndUIsPublishPorts: gRPC and metrics ports must stay inside
// the stack's network, and what is published binds to loopback only.
func TestOnlyTheEdgeAndUIsPublishPorts(t *testing.T) {
	public := map[string]bool{"gateway": true, "jaeger": true, "prometheus": true, "grafana": true}
	for name, svc := range load(t).Services {
		if len(svc.Ports) > 0 && !public[name] {
			t.Errorf("service %s publishes ports %v; only %v may", name, svc.Ports, public)
		}
		for _, port := range svc.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("service %s publishes %s on %q, want 127.0.0.1", name, port.Published, port.HostIP)
			}
		}
		if public[name] && len(svc.Ports) == 0 {
			t.Errorf("service %s publishes no port", name)
		}
	}
}

// TestEveryServiceHasAHealthcheck: every service that keeps running has a
// health check; a migrate job runs once and exits, and what needs it waits
// for it to complete instead.
func TestEveryServiceHasAHealthcheck(t *testing.T) {
	for name, svc := range load(t).Services {
		if strings.HasSuffix(name, "-migrate") {
			continue
		}
		hc := svc.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 {
			t.Errorf("service %s has no healthcheck", name)
		}
	}
}

// TestBuiltImagesRunAsNonRoot checks every image built here: the final stage
// of its Dockerfile switches to a non-root user, compose does not switch back,
// and the program it builds exists.
func TestBuiltImagesRunAsNonRoot(t *testing.T) {
	built := 0
	for name, svc := range load(t).Services {
		if svc.Build == nil {
			continue
		}
		built++
		df := svc.Build.Dockerfile
		if !filepath.IsAbs(df) {
			df = filepath.Join(svc.Build.Context, df)
		}
		if user := finalUser(t, df); user == "" || isRoot(user) {
			t.Errorf("service %s: final stage of %s runs as %q, want a non-root user", name, df, user)
		}
		if svc.User != "" && isRoot(svc.User) {
			t.Errorf("service %s overrides the image user with %q", name, svc.User)
		}
		app := svc.Build.Args["APP"]
		if app == nil || *app == "" {
			t.Errorf("service %s: build arg APP is not set", name)
			continue
		}
		if _, err := os.Stat(filepath.Join(root, *app, "main.go")); err != nil {
			t.Errorf("service %s builds %s, which has no main.go: %v", name, *app, err)
		}
		if !svc.ReadOnly && name != "init" {
			t.Errorf("service %s: root filesystem should be read-only", name)
		}
	}
	if built < 8 {
		t.Errorf("%d services are built here, want 8 (init, auth, accounts, transactions, gateway and the three migrate jobs)", built)
	}
}

// TestPrometheusScrapesEveryProcess ties the scrape targets to the metrics
// address each process is given.
func TestPrometheusScrapesEveryProcess(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "deploy/compose/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, sc := range cfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	p := load(t)
	for _, name := range []string{"gateway", "auth", "accounts", "transactions"} {
		addr := p.Services[name].Environment["BANK_METRICS_ADDR"]
		if addr == nil {
			t.Errorf("service %s has no BANK_METRICS_ADDR", name)
			continue
		}
		_, port, _ := strings.Cut(*addr, ":")
		if !slices.Contains(targets, name+":"+port) {
			t.Errorf("prometheus does not scrape %s:%s (targets %v)", name, port, targets)
		}
	}
}

func TestMountedConfigFilesExist(t *testing.T) {
	for name, svc := range load(t).Services {
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s mounts %s, which does not exist", name, v.Source)
			}
		}
	}
}

// finalUser returns the last USER of the last stage of a Dockerfile.
func finalUser(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	user := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			user = ""
			if strings.HasSuffix(fields[1], ":nonroot") {
				user = "nonroot"
			}
		case "USER":
			user = fields[1]
		}
	}
	return user
}

func isRoot(user string) bool {
	name, _, _ := strings.Cut(user, ":")
	return name == "root" || name == "0"
}

// TestDockerfileCopiesEveryModule: the build stage downloads modules with
// only the go.mod files copied in, so every module go.work lists must be
// among them, or `go mod download` fails before a line of code is built.
func TestDockerfileCopiesEveryModule(t *testing.T) {
	work, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile(filepath.Join(root, "deploy/docker/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	uses := 0
	for _, line := range strings.Split(string(work), "\n") {
		dir, ok := strings.CutPrefix(strings.TrimSpace(line), "./")
		if !ok {
			continue
		}
		uses++
		if !strings.Contains(string(df), "COPY "+dir+"/go.mod ") {
			t.Errorf("Dockerfile does not copy %s/go.mod before go mod download", dir)
		}
	}
	if uses < 7 {
		t.Fatalf("found %d modules in go.work, want at least 7", uses)
	}
}
