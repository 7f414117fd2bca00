package k8s_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

type labelSelector struct {
	MatchLabels      map[string]string `json:"matchLabels"`
	MatchExpressions []any             `json:"matchExpressions"`
}

// matches follows Kubernetes: an empty selector matches everything. The
// manifests use only matchLabels; an expression fails the test rather than
// being misread.
func (s *labelSelector) matches(t *testing.T, labels map[string]string) bool {
	if s == nil {
		return true
	}
	if len(s.MatchExpressions) > 0 {
		t.Fatalf("matchExpressions are not modelled by this test; use matchLabels")
	}
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

type policyPeer struct {
	PodSelector       *labelSelector `json:"podSelector"`
	NamespaceSelector *labelSelector `json:"namespaceSelector"`
	IPBlock           *struct {
		CIDR string `json:"cidr"`
	} `json:"ipBlock"`
}

type policyPort struct {
	Protocol string `json:"protocol"`
	Port     any    `json:"port"`
	EndPort  *int   `json:"endPort"`
}

type policyRule struct {
	From  []policyPeer `json:"from"`
	To    []policyPeer `json:"to"`
	Ports []policyPort `json:"ports"`
}

type networkPolicy struct {
	name        string
	namespace   string
	PodSelector labelSelector `json:"podSelector"`
	PolicyTypes []string      `json:"policyTypes"`
	Ingress     []policyRule  `json:"ingress"`
	Egress      []policyRule  `json:"egress"`
}

// endpoint is a party to a connection: a pod (in a namespace, with labels)
// or something outside the cluster.
type endpoint struct {
	name     string
	ns       string            // "" for outside the cluster
	nsLabels map[string]string // labels of its namespace
	labels   map[string]string
	managed  bool // its namespace's policies govern it
}

type port struct {
	proto string
	num   int
}

func (p port) String() string { return fmt.Sprintf("%d/%s", p.num, p.proto) }

func policies(t *testing.T, objs []object) []networkPolicy {
	t.Helper()
	var out []networkPolicy
	for _, o := range ofKind(objs, "NetworkPolicy") {
		p := decodeSpec[networkPolicy](t, o)
		p.name, p.namespace = o.Metadata.Name, o.Metadata.Namespace
		if len(p.PolicyTypes) == 0 {
			t.Fatalf("%s: set policyTypes explicitly; the default depends on which rules are present", o)
		}
		out = append(out, p)
	}
	return out
}

func (p networkPolicy) governs(t *testing.T, e endpoint, direction string) bool {
	return e.managed && e.ns == p.namespace && slices.Contains(p.PolicyTypes, direction) && p.PodSelector.matches(t, e.labels)
}

func (r policyRule) allowsPort(pt port) bool {
	if len(r.Ports) == 0 {
		return true
	}
	for _, rp := range r.Ports {
		proto := rp.Protocol
		if proto == "" {
			proto = "TCP"
		}
		n, ok := rp.Port.(float64)
		if proto == pt.proto && (rp.Port == nil || (ok && int(n) == pt.num)) {
			return true
		}
	}
	return false
}

// peerMatches says whether a rule peer of a policy in ns admits e.
func peerMatches(t *testing.T, peer policyPeer, ns string, e endpoint) bool {
	if peer.IPBlock != nil {
		return e.ns == "" // an address range: outside the cluster, in this model
	}
	if e.ns == "" {
		return false
	}
	if peer.NamespaceSelector == nil {
		return e.ns == ns && peer.PodSelector.matches(t, e.labels)
	}
	return peer.NamespaceSelector.matches(t, e.nsLabels) && peer.PodSelector.matches(t, e.labels)
}

func peersMatch(t *testing.T, peers []policyPeer, ns string, e endpoint) bool {
	if len(peers) == 0 {
		return true // no from/to: every peer
	}
	return slices.ContainsFunc(peers, func(p policyPeer) bool { return peerMatches(t, p, ns, e) })
}

// allowed decides a connection src → dst:pt as Kubernetes would: each side
// whose pod is selected by a policy of that direction must have a rule
// admitting the other side on the port.
func allowed(t *testing.T, pols []networkPolicy, src, dst endpoint, pt port) bool {
	egressOK, egressGoverned := false, false
	ingressOK, ingressGoverned := false, false
	for _, p := range pols {
		if p.governs(t, src, "Egress") {
			egressGoverned = true
			for _, r := range p.Egress {
				egressOK = egressOK || (r.allowsPort(pt) && peersMatch(t, r.To, p.namespace, dst))
			}
		}
		if p.governs(t, dst, "Ingress") {
			ingressGoverned = true
			for _, r := range p.Ingress {
				ingressOK = ingressOK || (r.allowsPort(pt) && peersMatch(t, r.From, p.namespace, src))
			}
		}
	}
	return (!egressGoverned || egressOK) && (!ingressGoverned || ingressOK)
}

func nsLabels(ns string) map[string]string {
	return map[string]string{"kubernetes.io/metadata.name": ns}
}

// endpoints are the namespace's pods (from the workloads) plus the world
// around them: a client on the internet, a scraper in "monitoring", a pod in
// some other namespace, cluster DNS and an internet server.
func endpoints(t *testing.T, objs []object, extra ...endpoint) []endpoint {
	var out []endpoint
	for _, w := range workloads(t, objs) {
		out = append(out, endpoint{name: w.name(), ns: "bastion", nsLabels: nsLabels("bastion"), labels: w.template.Metadata.Labels, managed: true})
	}
	out = append(out, extra...)
	return append(out,
		// A pod someone adds later without writing a policy for it: default
		// deny must leave it with DNS and nothing else.
		endpoint{name: "new-pod", ns: "bastion", nsLabels: nsLabels("bastion"), labels: map[string]string{"app.kubernetes.io/name": "debug"}, managed: true},
		endpoint{name: "internet-client"},
		endpoint{name: "prometheus", ns: "monitoring", nsLabels: nsLabels("monitoring"), labels: map[string]string{"app.kubernetes.io/name": "prometheus"}},
		endpoint{name: "other-pod", ns: "default", nsLabels: nsLabels("default"), labels: map[string]string{"app.kubernetes.io/name": "gateway"}},
		endpoint{name: "kube-dns", ns: "kube-system", nsLabels: nsLabels("kube-system"), labels: map[string]string{"k8s-app": "kube-dns"}},
		endpoint{name: "internet-server"},
	)
}

var probePorts = []port{
	{"TCP", 8443}, {"TCP", 443}, {"TCP", 9101}, {"TCP", 9102}, {"TCP", 9103}, {"TCP", 5432},
	{"TCP", 9464}, {"TCP", 9465}, {"TCP", 9466}, {"TCP", 9467}, {"UDP", 53}, {"TCP", 53}, {"TCP", 6379},
}

// flows returns every allowed connection that involves a pod of the namespace.
func flows(t *testing.T, pols []networkPolicy, eps []endpoint) []string {
	var out []string
	for _, src := range eps {
		for _, dst := range eps {
			if src.name == dst.name || (!src.managed && !dst.managed) {
				continue
			}
			for _, pt := range probePorts {
				if allowed(t, pols, src, dst, pt) {
					out = append(out, src.name+" -> "+dst.name+":"+pt.String())
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// wantFlows is README.md's table, spelled out.
func wantFlows(pods []string, extra ...string) []string {
	want := []string{
		// "From anywhere": every party outside the namespace's policies.
		"internet-client -> gateway:8443/TCP", "internet-server -> gateway:8443/TCP", "prometheus -> gateway:8443/TCP",
		"other-pod -> gateway:8443/TCP", "kube-dns -> gateway:8443/TCP",
		"prometheus -> gateway:9464/TCP", "prometheus -> auth:9465/TCP", "prometheus -> accounts:9466/TCP", "prometheus -> transactions:9467/TCP",
		"gateway -> auth:9101/TCP", "gateway -> accounts:9102/TCP", "gateway -> transactions:9103/TCP",
		"accounts -> transactions:9103/TCP", "accounts -> auth:9101/TCP",
		"transactions -> auth:9101/TCP",
		"auth -> postgres:5432/TCP", "accounts -> postgres:5432/TCP", "transactions -> postgres:5432/TCP",
		"audit-verify -> postgres:5432/TCP",
	}
	for _, p := range append(pods, "new-pod") {
		want = append(want, p+" -> kube-dns:53/UDP", p+" -> kube-dns:53/TCP")
	}
	want = append(want, extra...)
	slices.Sort(want)
	return want
}

func diff(got, want []string) (extra, missing []string) {
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	return extra, missing
}

func TestNetworkAllowsExactlyTheDocumentedFlows(t *testing.T) {
	t.Parallel()
	services := []string{"auth", "accounts", "transactions", "gateway", "audit-verify"}
	tests := []struct {
		dir   string
		extra []endpoint // the base has no database: stand one in, outside the policies' reach
		pods  []string
		more  []string
	}{
		{"base", []endpoint{{name: "postgres", ns: "bastion", nsLabels: nsLabels("bastion"), labels: map[string]string{"app.kubernetes.io/name": "postgres"}}}, services,
			[]string{"postgres -> gateway:8443/TCP"}}, // the stand-in is under no policy, so it is "anywhere"
		{"overlays/dev", nil, append(services, "postgres", "bastion-init"), []string{"bastion-init -> postgres:5432/TCP"}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			t.Parallel()
			objs := render(t, tt.dir)
			got := flows(t, policies(t, objs), endpoints(t, objs, tt.extra...))
			extra, missing := diff(got, wantFlows(tt.pods, tt.more...))
			if len(extra) > 0 {
				t.Errorf("network policy allows undocumented flows:\n  %s", strings.Join(extra, "\n  "))
			}
			if len(missing) > 0 {
				t.Errorf("network policy blocks documented flows:\n  %s", strings.Join(missing, "\n  "))
			}
		})
	}
}

func TestDefaultDenyExists(t *testing.T) {
	t.Parallel()
	for _, dir := range kustomizations {
		pols := policies(t, render(t, dir))
		found := slices.ContainsFunc(pols, func(p networkPolicy) bool {
			return len(p.PodSelector.MatchLabels) == 0 && len(p.PodSelector.MatchExpressions) == 0 &&
				slices.Contains(p.PolicyTypes, "Ingress") && slices.Contains(p.PolicyTypes, "Egress") &&
				len(p.Ingress) == 0 && len(p.Egress) == 0
		})
		if !found {
			t.Errorf("%s: no NetworkPolicy selects every pod and denies all ingress and egress", dir)
		}
	}
}

// The model above is only worth trusting if it catches a hole: open each
// of a few plausible mistakes in the real policies and expect a finding.
func TestNetworkModelCatchesHoles(t *testing.T) {
	t.Parallel()
	objs := render(t, "overlays/dev")
	eps := endpoints(t, objs)
	base := policies(t, objs)
	want := wantFlows([]string{"auth", "accounts", "transactions", "gateway", "audit-verify", "postgres", "bastion-init"}, "bastion-init -> postgres:5432/TCP")
	if extra, missing := diff(flows(t, base, eps), want); len(extra)+len(missing) != 0 {
		t.Fatalf("the real policies already differ: +%v -%v", extra, missing)
	}
	tests := []struct {
		name   string
		weaken func([]networkPolicy) []networkPolicy
	}{
		{"default deny removed", func(ps []networkPolicy) []networkPolicy {
			return slices.DeleteFunc(ps, func(p networkPolicy) bool { return p.name == "default-deny-all" })
		}},
		{"gateway egress to anything", func(ps []networkPolicy) []networkPolicy {
			return append(ps, networkPolicy{name: "x", namespace: "bastion", PodSelector: labelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "gateway"}},
				PolicyTypes: []string{"Egress"}, Egress: []policyRule{{}}})
		}},
		{"metrics open to every namespace", func(ps []networkPolicy) []networkPolicy {
			return append(ps, networkPolicy{name: "x", namespace: "bastion", PodSelector: labelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "auth"}},
				PolicyTypes: []string{"Ingress"}, Ingress: []policyRule{{From: []policyPeer{{NamespaceSelector: &labelSelector{}}}, Ports: []policyPort{{Port: float64(9465)}}}}})
		}},
		{"audit check egress to anything", func(ps []networkPolicy) []networkPolicy {
			return append(ps, networkPolicy{name: "x", namespace: "bastion", PodSelector: labelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "audit-verify"}},
				PolicyTypes: []string{"Egress"}, Egress: []policyRule{{}}})
		}},
		{"audit check policy removed", func(ps []networkPolicy) []networkPolicy {
			return slices.DeleteFunc(ps, func(p networkPolicy) bool { return p.name == "audit-verify" })
		}},
		{"postgres ingress policy removed", func(ps []networkPolicy) []networkPolicy {
			return slices.DeleteFunc(ps, func(p networkPolicy) bool { return p.name == "postgres" })
		}},
		{"transactions may call auth no more", func(ps []networkPolicy) []networkPolicy {
			out := slices.Clone(ps)
			for i, p := range out {
				if p.name == "transactions" {
					p.Egress = p.Egress[1:]
					out[i] = p
				}
			}
			return out
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pols := tt.weaken(slices.Clone(base))
			if extra, missing := diff(flows(t, pols, eps), want); len(extra)+len(missing) == 0 {
				t.Errorf("model found no difference after %s", tt.name)
			}
		})
	}
}

func TestOnlyTheGatewayIsExposed(t *testing.T) {
	t.Parallel()
	for _, dir := range kustomizations {
		objs := render(t, dir)
		for _, s := range ofKind(objs, "Service") {
			spec := decodeSpec[struct {
				Type     string            `json:"type"`
				Selector map[string]string `json:"selector"`
				Ports    []struct {
					NodePort int `json:"nodePort"`
				} `json:"ports"`
				ExternalIPs []string `json:"externalIPs"`
			}](t, s)
			exposed := spec.Type == "LoadBalancer" || spec.Type == "NodePort" || len(spec.ExternalIPs) > 0 ||
				slices.ContainsFunc(spec.Ports, func(p struct {
					NodePort int `json:"nodePort"`
				}) bool {
					return p.NodePort != 0
				})
			if exposed && s.Metadata.Name != "gateway" {
				t.Errorf("%s: %s is exposed outside the cluster (type %q); only the gateway may be", dir, s, spec.Type)
			}
			if spec.Type == "ExternalName" {
				t.Errorf("%s: %s is an ExternalName", dir, s)
			}
			if !slices.ContainsFunc(workloads(t, objs), func(w workload) bool {
				return maps.Equal(spec.Selector, map[string]string{"app.kubernetes.io/name": w.name()})
			}) {
				t.Errorf("%s: %s selects %v, which no workload's pods carry", dir, s, spec.Selector)
			}
		}
	}
}

func TestEveryDeploymentHasADisruptionBudget(t *testing.T) {
	t.Parallel()
	for _, dir := range kustomizations {
		objs := render(t, dir)
		var budgets []map[string]string
		for _, p := range ofKind(objs, "PodDisruptionBudget") {
			spec := decodeSpec[struct {
				Selector labelSelector `json:"selector"`
			}](t, p)
			budgets = append(budgets, spec.Selector.MatchLabels)
		}
		for _, w := range workloads(t, objs) {
			if w.obj.Kind != "Deployment" {
				continue
			}
			if !slices.ContainsFunc(budgets, func(sel map[string]string) bool {
				return len(sel) > 0 && (&labelSelector{MatchLabels: sel}).matches(t, w.template.Metadata.Labels)
			}) {
				t.Errorf("%s: %s has no PodDisruptionBudget", dir, w.obj)
			}
		}
	}
}

// TestGRPCBackendsAreHeadless: a ClusterIP Service balances per connection,
// so every gRPC client would stick to one replica. Headless Services give the
// clients every pod's address, and platform/grpcclient balances per call.
func TestGRPCBackendsAreHeadless(t *testing.T) {
	t.Parallel()
	for _, dir := range kustomizations {
		objs := render(t, dir)
		seen := map[string]bool{}
		for _, s := range ofKind(objs, "Service") {
			name := s.Metadata.Name
			if name != "auth" && name != "accounts" && name != "transactions" {
				continue
			}
			seen[name] = true
			spec := decodeSpec[struct {
				ClusterIP string `json:"clusterIP"`
			}](t, s)
			if spec.ClusterIP != "None" {
				t.Errorf("%s: Service %s has clusterIP %q, want None (headless, for per-call balancing)", dir, name, spec.ClusterIP)
			}
		}
		if len(seen) != 3 {
			t.Errorf("%s: found Services %v, want auth, accounts and transactions", dir, seen)
		}
	}
}
