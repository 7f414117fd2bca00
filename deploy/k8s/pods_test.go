package k8s_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type seccomp struct {
	Type string `json:"type"`
}

type podSecurityContext struct {
	RunAsNonRoot   *bool    `json:"runAsNonRoot"`
	RunAsUser      *int64   `json:"runAsUser"`
	SeccompProfile *seccomp `json:"seccompProfile"`
}

type securityContext struct {
	RunAsNonRoot             *bool    `json:"runAsNonRoot"`
	RunAsUser                *int64   `json:"runAsUser"`
	Privileged               *bool    `json:"privileged"`
	AllowPrivilegeEscalation *bool    `json:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   *bool    `json:"readOnlyRootFilesystem"`
	SeccompProfile           *seccomp `json:"seccompProfile"`
	Capabilities             *struct {
		Add  []string `json:"add"`
		Drop []string `json:"drop"`
	} `json:"capabilities"`
}

type probe struct {
	Exec *struct {
		Command []string `json:"command"`
	} `json:"exec"`
	HTTPGet   json.RawMessage `json:"httpGet"`
	TCPSocket json.RawMessage `json:"tcpSocket"`
	GRPC      json.RawMessage `json:"grpc"`
}

type container struct {
	Name  string   `json:"name"`
	Image string   `json:"image"`
	Args  []string `json:"args"`
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	Env []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"env"`
	SecurityContext *securityContext `json:"securityContext"`
	Resources       struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	} `json:"resources"`
	LivenessProbe  *probe `json:"livenessProbe"`
	ReadinessProbe *probe `json:"readinessProbe"`
	StartupProbe   *probe `json:"startupProbe"`
	VolumeMounts   []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
	} `json:"volumeMounts"`
}

type podSpec struct {
	AutomountServiceAccountToken *bool               `json:"automountServiceAccountToken"`
	HostNetwork                  bool                `json:"hostNetwork"`
	HostPID                      bool                `json:"hostPID"`
	HostIPC                      bool                `json:"hostIPC"`
	SecurityContext              *podSecurityContext `json:"securityContext"`
	InitContainers               []container         `json:"initContainers"`
	Containers                   []container         `json:"containers"`
	Volumes                      []map[string]any    `json:"volumes"`
}

type podTemplate struct {
	Metadata struct {
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec podSpec `json:"spec"`
}

// workload is an object that runs pods, with its pod template.
type workload struct {
	obj         object
	template    podTemplate
	longRunning bool // probes make sense (not a Job)
	selector    map[string]string
}

func (w workload) name() string { return w.template.Metadata.Labels["app.kubernetes.io/name"] }

func workloads(t *testing.T, objs []object) []workload {
	t.Helper()
	var out []workload
	for _, o := range objs {
		switch o.Kind {
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet":
			spec := decodeSpec[struct {
				Template podTemplate `json:"template"`
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"selector"`
			}](t, o)
			out = append(out, workload{obj: o, template: spec.Template, longRunning: true, selector: spec.Selector.MatchLabels})
		case "Job":
			spec := decodeSpec[struct {
				Template podTemplate `json:"template"`
			}](t, o)
			out = append(out, workload{obj: o, template: spec.Template})
		case "CronJob":
			spec := decodeSpec[struct {
				JobTemplate struct {
					Spec struct {
						Template podTemplate `json:"template"`
					} `json:"spec"`
				} `json:"jobTemplate"`
			}](t, o)
			out = append(out, workload{obj: o, template: spec.JobTemplate.Spec.Template})
		case "Pod":
			t.Errorf("%s: add this kind to the checks before using it", o)
		}
	}
	return out
}

func isTrue(b *bool) bool  { return b != nil && *b }
func isFalse(b *bool) bool { return b != nil && !*b }

// containerProblems lists what is wrong with one container of a pod, taking
// the pod's security context as the default where Kubernetes does.
func containerProblems(pod podSpec, c container) []string {
	var p []string
	sc := c.SecurityContext
	if sc == nil {
		return []string{"no securityContext"}
	}
	psc := pod.SecurityContext
	if psc == nil {
		psc = &podSecurityContext{}
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = psc.RunAsNonRoot
	}
	if !isTrue(nonRoot) {
		p = append(p, "runAsNonRoot is not true")
	}
	uid := sc.RunAsUser
	if uid == nil {
		uid = psc.RunAsUser
	}
	if uid == nil || *uid == 0 {
		p = append(p, "runAsUser is unset or 0")
	}
	if isTrue(sc.Privileged) {
		p = append(p, "privileged")
	}
	if !isFalse(sc.AllowPrivilegeEscalation) {
		p = append(p, "allowPrivilegeEscalation is not false")
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		p = append(p, "readOnlyRootFilesystem is not true")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		p = append(p, "capabilities do not drop ALL")
	} else if len(sc.Capabilities.Add) > 0 {
		p = append(p, fmt.Sprintf("capabilities add %v", sc.Capabilities.Add))
	}
	prof := sc.SeccompProfile
	if prof == nil {
		prof = psc.SeccompProfile
	}
	if prof == nil || (prof.Type != "RuntimeDefault" && prof.Type != "Localhost") {
		p = append(p, "seccomp profile is not RuntimeDefault")
	}
	for _, kind := range []string{"cpu", "memory"} {
		if c.Resources.Limits[kind] == "" {
			p = append(p, "no "+kind+" limit")
		}
		if c.Resources.Requests[kind] == "" {
			p = append(p, "no "+kind+" request")
		}
	}
	if !pinned(c.Image) {
		p = append(p, fmt.Sprintf("image %q is not pinned to a tag or digest", c.Image))
	}
	return p
}

// pinned says whether an image names a version: a tag other than latest,
// or a digest.
func pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	i := strings.LastIndex(image, ":")
	return i > strings.LastIndex(image, "/") && image[i+1:] != "latest" && image[i+1:] != ""
}

// podProblems lists what is wrong with a pod as a whole.
func podProblems(w workload) []string {
	var p []string
	spec := w.template.Spec
	if !isFalse(spec.AutomountServiceAccountToken) {
		p = append(p, "automountServiceAccountToken is not false: no Bastion process talks to the Kubernetes API")
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		p = append(p, "shares a host namespace")
	}
	for _, v := range spec.Volumes {
		if v["hostPath"] != nil {
			p = append(p, fmt.Sprintf("volume %v mounts a host path", v["name"]))
		}
	}
	if w.name() == "" {
		p = append(p, "pods have no app.kubernetes.io/name label (network policy selects by it)")
	}
	for _, c := range spec.InitContainers {
		for _, q := range containerProblems(spec, c) {
			p = append(p, "init container "+c.Name+": "+q)
		}
	}
	for _, c := range spec.Containers {
		for _, q := range containerProblems(spec, c) {
			p = append(p, "container "+c.Name+": "+q)
		}
		if w.longRunning && (c.LivenessProbe == nil || c.ReadinessProbe == nil) {
			p = append(p, "container "+c.Name+": no liveness or readiness probe")
		}
	}
	if len(spec.Containers) == 0 {
		p = append(p, "no containers")
	}
	return p
}

func TestPodsAreHardened(t *testing.T) {
	t.Parallel()
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			ws := workloads(t, render(t, dir))
			if len(ws) < 4 {
				t.Fatalf("%d workloads, want at least auth, accounts, transactions and gateway", len(ws))
			}
			for _, w := range ws {
				for _, p := range podProblems(w) {
					t.Errorf("%s: %s", w.obj, p)
				}
			}
		})
	}
}

// The checks themselves are attacked: each weakening of a good pod must be
// caught, or the test above would pass a bad manifest.
func TestPodChecksCatchWeakenedPods(t *testing.T) {
	t.Parallel()
	good := func() workload {
		ws := workloads(t, render(t, "base"))
		i := slices.IndexFunc(ws, func(w workload) bool { return w.name() == "auth" })
		if i < 0 {
			t.Fatal("no auth workload in base")
		}
		// A deep copy through JSON, so each case starts from the real manifest.
		b, _ := json.Marshal(ws[i].template)
		var tmpl podTemplate
		_ = json.Unmarshal(b, &tmpl)
		return workload{obj: ws[i].obj, template: tmpl, longRunning: true}
	}
	if p := podProblems(good()); len(p) != 0 {
		t.Fatalf("the auth pod itself has problems: %v", p)
	}
	yes, no, root := true, false, int64(0)
	tests := []struct {
		name   string
		weaken func(*podSpec)
	}{
		{"root user", func(s *podSpec) { s.Containers[0].SecurityContext.RunAsUser = &root }},
		{"runAsNonRoot false", func(s *podSpec) { s.Containers[0].SecurityContext.RunAsNonRoot = &no }},
		{"no runAsNonRoot anywhere", func(s *podSpec) {
			s.Containers[0].SecurityContext.RunAsNonRoot, s.SecurityContext.RunAsNonRoot = nil, nil
		}},
		{"privileged", func(s *podSpec) { s.Containers[0].SecurityContext.Privileged = &yes }},
		{"privilege escalation", func(s *podSpec) { s.Containers[0].SecurityContext.AllowPrivilegeEscalation = &yes }},
		{"escalation unset", func(s *podSpec) { s.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil }},
		{"writable root fs", func(s *podSpec) { s.Containers[0].SecurityContext.ReadOnlyRootFilesystem = &no }},
		{"drops only NET_RAW", func(s *podSpec) { s.Containers[0].SecurityContext.Capabilities.Drop = []string{"NET_RAW"} }},
		{"adds NET_ADMIN", func(s *podSpec) { s.Containers[0].SecurityContext.Capabilities.Add = []string{"NET_ADMIN"} }},
		{"unconfined seccomp", func(s *podSpec) {
			s.Containers[0].SecurityContext.SeccompProfile = &seccomp{Type: "Unconfined"}
		}},
		{"no memory limit", func(s *podSpec) { delete(s.Containers[0].Resources.Limits, "memory") }},
		{"no cpu request", func(s *podSpec) { delete(s.Containers[0].Resources.Requests, "cpu") }},
		{"no liveness probe", func(s *podSpec) { s.Containers[0].LivenessProbe = nil }},
		{"no readiness probe", func(s *podSpec) { s.Containers[0].ReadinessProbe = nil }},
		{"latest image", func(s *podSpec) { s.Containers[0].Image = "ghcr.io/bastion-bank/auth:latest" }},
		{"untagged image", func(s *podSpec) { s.Containers[0].Image = "ghcr.io/bastion-bank/auth" }},
		{"registry port is not a tag", func(s *podSpec) { s.Containers[0].Image = "registry:5000/auth" }},
		{"service account token", func(s *podSpec) { s.AutomountServiceAccountToken = nil }},
		{"host network", func(s *podSpec) { s.HostNetwork = true }},
		{"host path", func(s *podSpec) {
			s.Volumes = append(s.Volumes, map[string]any{"name": "h", "hostPath": map[string]any{"path": "/"}})
		}},
		{"weak init container", func(s *podSpec) { s.InitContainers[0].SecurityContext.ReadOnlyRootFilesystem = nil }},
		{"init container without limits", func(s *podSpec) { s.InitContainers[0].Resources.Limits = nil }},
		{"no security context", func(s *podSpec) { s.Containers[0].SecurityContext = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := good()
			tt.weaken(&w.template.Spec)
			if p := podProblems(w); len(p) == 0 {
				t.Errorf("podProblems(%s) = none, want the weakness caught", tt.name)
			}
		})
	}
}

// The health probes are the /probe program baked into every image, and
// they must ask the port the process really listens on, as itself.
func TestProbesMatchTheProcesses(t *testing.T) {
	t.Parallel()
	ws := workloads(t, render(t, "base"))
	want := map[string]string{"auth": "BANK_AUTH_ADDR", "accounts": "BANK_ACCOUNTS_ADDR", "transactions": "BANK_TRANSACTIONS_ADDR", "gateway": "BANK_GATEWAY_ADDR"}
	seen := map[string]bool{}
	for _, w := range ws {
		addrVar, ok := want[w.name()]
		if !ok {
			continue
		}
		seen[w.name()] = true
		c := w.template.Spec.Containers[0]
		port := listenPort(t, c, addrVar)
		if !slices.ContainsFunc(c.VolumeMounts, func(m struct {
			Name      string `json:"name"`
			MountPath string `json:"mountPath"`
		}) bool {
			return m.MountPath == "/pki"
		}) {
			t.Errorf("%s: no PKI mounted at /pki", w.obj)
		}
		for kind, p := range map[string]*probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
			if p == nil || p.Exec == nil {
				t.Errorf("%s: %s probe is not an exec of /probe", w.obj, kind)
				continue
			}
			got := strings.Join(p.Exec.Command, " ")
			var ok bool
			if w.name() == "gateway" {
				ok = got == "/probe https https://127.0.0.1:"+port+"/healthz /pki/ca.pem" ||
					(kind == "readiness" && got == "/probe https https://127.0.0.1:"+port+"/readyz /pki/ca.pem")
			} else {
				// Readiness asks for the overall status; startup and
				// liveness, which restart the process, ask whether it is
				// alive, not whether auth is reachable.
				want := fmt.Sprintf("/probe grpc 127.0.0.1:%s /pki %s %s", port, w.name(), w.name())
				if kind != "readiness" {
					want += " liveness"
				}
				ok = got == want
			}
			if !ok {
				t.Errorf("%s: %s probe = %q, does not check port %s as itself (for the right health service)", w.obj, kind, got, port)
			}
		}
	}
	if len(seen) != len(want) {
		t.Errorf("found %v, want all of %v", seen, want)
	}
}

// listenPort returns the port of the container's listen address variable,
// checking a containerPort declares it.
func listenPort(t *testing.T, c container, addrVar string) string {
	t.Helper()
	i := slices.IndexFunc(c.Env, func(e struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}) bool {
		return e.Name == addrVar
	})
	if i < 0 {
		t.Errorf("container %s does not set %s", c.Name, addrVar)
		return ""
	}
	_, port, ok := strings.Cut(c.Env[i].Value, ":")
	n, err := strconv.Atoi(port)
	if !ok || err != nil {
		t.Errorf("container %s: %s = %q is not host:port", c.Name, addrVar, c.Env[i].Value)
		return ""
	}
	if !slices.ContainsFunc(c.Ports, func(p struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	}) bool {
		return p.ContainerPort == n
	}) {
		t.Errorf("container %s listens on %d but declares no such containerPort", c.Name, n)
	}
	return port
}
