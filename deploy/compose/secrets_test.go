package compose_test

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/bastion-bank/bastion/deploy/devstack"
	"github.com/bastion-bank/bastion/platform/mtls"
)

// The tests below check who can read what without a Docker engine: they run
// the init job's file preparation (devstack.PrepareFiles, what `devrun
// prepare` writes) into a scratch directory standing for init's filesystem,
// then give every service the view its mounts in docker-compose.yml would
// give it. A volume holds what init wrote to it, or nothing if init does not
// mount it.

// world is the stack's volumes after the init job ran.
type world struct {
	project *types.Project
	root    string            // init's filesystem
	volumes map[string]string // volume name → its content on the host
}

func prepareWorld(t *testing.T) *world {
	t.Helper()
	p := load(t)
	init, ok := p.Services["init"]
	if !ok {
		t.Fatal("no init service")
	}
	w := &world{project: p, root: t.TempDir(), volumes: map[string]string{}}
	for _, v := range init.Volumes {
		if v.Type == types.VolumeTypeVolume {
			w.volumes[v.Source] = filepath.Join(w.root, v.Target)
		}
	}
	devDir := env(init, "BANK_DEV_DIR")
	if devDir == "" {
		t.Fatal("init sets no BANK_DEV_DIR")
	}
	cfg := devstack.Config{Dir: filepath.Join(w.root, devDir)}
	if exportDir := env(init, "BANK_DEV_EXPORT_DIR"); exportDir != "" {
		cfg.ExportDir = filepath.Join(w.root, exportDir)
	}
	if err := devstack.PrepareFiles(cfg); err != nil {
		t.Fatal(err)
	}
	for name := range p.Volumes {
		if _, ok := w.volumes[name]; !ok {
			w.volumes[name] = filepath.Join(t.TempDir(), name)
			if err := os.MkdirAll(w.volumes[name], 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	return w
}

func env(svc types.ServiceConfig, key string) string {
	if v := svc.Environment[key]; v != nil {
		return *v
	}
	return ""
}

// mount is one mount of a service, with where its content is on the host.
type mount struct {
	types.ServiceVolumeConfig
	host string // "" for a mount with no content here (tmpfs)
}

func (w *world) mounts(t *testing.T, svc types.ServiceConfig) []mount {
	t.Helper()
	var out []mount
	for _, v := range svc.Volumes {
		m := mount{ServiceVolumeConfig: v}
		switch v.Type {
		case types.VolumeTypeVolume:
			host, ok := w.volumes[v.Source]
			if !ok {
				t.Fatalf("service %s mounts undeclared volume %q", svc.Name, v.Source)
			}
			if v.Volume != nil && v.Volume.Subpath != "" {
				host = filepath.Join(host, v.Volume.Subpath)
			}
			m.host = host
		case types.VolumeTypeBind:
			m.host = v.Source
		}
		out = append(out, m)
	}
	return out
}

// resolve returns where a path inside svc's container is on the host, and
// false if no mount covers it (the image holds nothing of ours).
func (w *world) resolve(t *testing.T, svc types.ServiceConfig, p string) (string, bool) {
	t.Helper()
	best := -1
	var host string
	for _, m := range w.mounts(t, svc) {
		rel, ok := strings.CutPrefix(path.Clean(p), path.Clean(m.Target))
		if !ok || (rel != "" && rel[0] != '/') || m.host == "" || len(m.Target) <= best {
			continue
		}
		best, host = len(m.Target), filepath.Join(m.host, rel)
	}
	return host, best >= 0
}

// files lists every file svc can see, by its path in the container.
func (w *world) files(t *testing.T, svc types.ServiceConfig) []string {
	t.Helper()
	var out []string
	for _, m := range w.mounts(t, svc) {
		if m.host == "" {
			continue
		}
		filepath.WalkDir(m.host, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(m.host, p)
				out = append(out, path.Join(m.Target, filepath.ToSlash(rel)))
			}
			return nil
		})
	}
	return out
}

// processes are the services that run a Bastion process, by service name.
var processes = []string{"auth", "accounts", "transactions", "gateway"}

// TestOnlyInitSeesTheCAKey: the CA key (which mints any identity) and the
// database passwords are in no container but init's, and a process sees no
// private key but its own.
func TestOnlyInitSeesTheCAKey(t *testing.T) {
	w := prepareWorld(t)
	for name, svc := range w.project.Services {
		seen := w.files(t, svc)
		for _, f := range seen {
			base := path.Base(f)
			switch {
			case name == "init":
			case base == "ca-key.pem":
				t.Errorf("service %s can read the CA key at %s", name, f)
			case strings.HasSuffix(base, "-key.pem") && !slices.Contains(devstack.PKIFiles(name), base):
				t.Errorf("service %s can read another process's key at %s", name, f)
			case strings.HasSuffix(base, ".password") || base == "admin-password":
				t.Errorf("service %s can read the secret %s", name, f)
			}
		}
		if name == "init" && !slices.ContainsFunc(seen, func(f string) bool { return path.Base(f) == "ca-key.pem" }) {
			t.Error("init cannot see the CA key: the check is not looking where the key is")
		}
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeBind && strings.HasPrefix(v.Source+"/", filepath.Join(absRoot(t), ".dev")+"/") {
				t.Errorf("service %s bind-mounts the dev directory %s", name, v.Source)
			}
		}
	}
}

// TestProcessMountsAreReadOnly: what a process is given, it cannot change;
// the one exception is auth's own signing-key store, which auth writes (a
// first key, retired keys) and no other service mounts.
func TestProcessMountsAreReadOnly(t *testing.T) {
	p := load(t)
	users := map[string][]string{}
	for name, svc := range p.Services {
		for _, v := range svc.Volumes {
			users[v.Source] = append(users[v.Source], name)
		}
	}
	for _, name := range processes {
		svc := p.Services[name]
		if len(svc.Volumes) == 0 {
			t.Errorf("service %s mounts nothing", name)
		}
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeVolume {
				t.Errorf("service %s mounts %s as %s; only named volumes are expected", name, v.Target, v.Type)
			}
			if v.ReadOnly {
				continue
			}
			if name == "auth" && v.Target == env(svc, "BANK_KEYS_DIR") && slices.Equal(users[v.Source], []string{"auth"}) {
				continue // auth's own key store
			}
			t.Errorf("service %s mounts %s (volume %s, used by %v) read-write", name, v.Target, v.Source, users[v.Source])
		}
	}
}

// TestEveryProcessGetsWhatItNeeds resolves every file and directory a
// process is configured to read, and its health check's, through its
// mounts: each exists, and the PKI directory holds the process's own
// identity under the CA.
func TestEveryProcessGetsWhatItNeeds(t *testing.T) {
	w := prepareWorld(t)
	for _, name := range processes {
		svc := w.project.Services[name]
		needs := map[string]bool{} // container path → is a directory
		for k, v := range svc.Environment {
			if v == nil || !strings.HasPrefix(k, "BANK_") || *v == "" {
				continue
			}
			if strings.HasSuffix(k, "_FILE") {
				needs[*v] = false
			}
			if strings.HasSuffix(k, "_DIR") {
				needs[*v] = true
			}
		}
		pkiDir := env(svc, "BANK_PKI_DIR")
		if pkiDir == "" {
			t.Errorf("service %s has no BANK_PKI_DIR", name)
			continue
		}
		for _, f := range devstack.PKIFiles(name) {
			needs[path.Join(pkiDir, f)] = false
		}
		switch name {
		case "accounts", "transactions":
			if env(svc, "BANK_PAGE_TOKEN_KEY_FILE") == "" {
				t.Errorf("service %s has no BANK_PAGE_TOKEN_KEY_FILE", name)
			}
		case "auth":
			if env(svc, "BANK_KEYS_DIR") == "" {
				t.Errorf("service auth has no BANK_KEYS_DIR")
			}
		}
		for _, arg := range probePaths(t, svc) {
			needs[arg.path] = arg.dir
		}
		for p, dir := range needs {
			host, ok := w.resolve(t, svc, p)
			if !ok {
				t.Errorf("service %s needs %s, which none of its mounts provides", name, p)
				continue
			}
			info, err := os.Stat(host)
			if err != nil || info.IsDir() != dir {
				t.Errorf("service %s needs %s (directory: %v), which is not there after init (%v)", name, p, dir, err)
			}
		}
		files := mtls.FilesIn(pkiDir, name)
		var resolved mtls.Files
		resolved.CA, _ = w.resolve(t, svc, files.CA)
		resolved.Cert, _ = w.resolve(t, svc, files.Cert)
		resolved.Key, _ = w.resolve(t, svc, files.Key)
		if _, err := mtls.NewSource(resolved, "bastion.local"); err != nil {
			t.Errorf("service %s cannot load its identity from %s: %v", name, pkiDir, err)
		}
	}
}

type probePath struct {
	path string
	dir  bool
}

// probePaths returns the files and directories a /probe health check reads.
func probePaths(t *testing.T, svc types.ServiceConfig) []probePath {
	t.Helper()
	test := svc.HealthCheck.Test
	if len(test) < 3 || test[1] != "/probe" {
		t.Errorf("service %s health check %v is not /probe", svc.Name, test)
		return nil
	}
	args := test[2:]
	switch {
	case args[0] == "grpc" && (len(args) == 5 || len(args) == 6): // [SERVICE] names the health service
		dir, self := args[2], args[3]
		if self != svc.Name {
			t.Errorf("service %s probes as %s, want itself", svc.Name, self)
		}
		out := []probePath{{dir, true}}
		for _, f := range devstack.PKIFiles(self) {
			out = append(out, probePath{path.Join(dir, f), false})
		}
		return out
	case args[0] == "https" && len(args) == 3:
		return []probePath{{args[2], false}}
	case args[0] == "file" && len(args) == 2:
		return []probePath{{args[1], false}}
	}
	t.Errorf("service %s: unknown probe %v", svc.Name, args)
	return nil
}

// TestVolumeMountPointsBelongToTheRuntimeUser: Docker gives an empty named
// volume the owner of the image directory it is first mounted on. Every
// mount point of a built service must be among the directories the
// Dockerfile creates for the runtime user, or the volume starts out owned by
// root and init cannot write to it.
func TestVolumeMountPointsBelongToTheRuntimeUser(t *testing.T) {
	df, err := os.ReadFile(filepath.Join(root, "deploy/docker/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	owned := map[string]bool{}
	for _, field := range strings.Fields(string(df)) {
		if d, ok := strings.CutPrefix(field, "/out/dirs/"); ok && d != "" {
			owned["/"+strings.TrimSuffix(d, "/")] = true
		}
	}
	for name, svc := range load(t).Services {
		if svc.Build == nil {
			continue
		}
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeVolume && !owned[v.Target] {
				t.Errorf("service %s mounts volume %s on %s, which the Dockerfile does not create for the runtime user (it creates %v)", name, v.Source, v.Target, owned)
			}
		}
	}
}

func absRoot(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
