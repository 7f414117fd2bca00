package k8s_test

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"go.yaml.in/yaml/v3"
)

// alertsDir holds the Prometheus rule files (deploy/alerts), which the
// monitoring kustomization ships as a ConfigMap.
const alertsDir = "../alerts"

// TestMonitoringShipsTheRulesUnchanged: `kubectl apply -k monitoring` makes
// exactly two ConfigMaps in namespace "monitoring", one carrying every rule
// file of deploy/alerts as it is on disk (the files promtool tests), the
// other the scrape job; nothing there runs.
func TestMonitoringShipsTheRulesUnchanged(t *testing.T) {
	t.Parallel()
	rules, err := filepath.Glob(filepath.Join(alertsDir, "*.rules.yml"))
	if err != nil || len(rules) == 0 {
		t.Fatalf("no rule files in %s (%v)", alertsDir, err)
	}
	want := map[string]map[string]string{
		"bastion-alert-rules":       {},
		"bastion-prometheus-scrape": {"scrape.yml": readFile(t, "monitoring/scrape.yml")},
	}
	for _, path := range rules {
		want["bastion-alert-rules"][filepath.Base(path)] = readFile(t, path)
	}
	objs := render(t, "monitoring")
	if len(objs) != len(want) {
		t.Errorf("monitoring renders %v, want only the ConfigMaps %v", objs, slices.Sorted(maps.Keys(want)))
	}
	for _, o := range objs {
		data, ok := want[o.Metadata.Name]
		if o.Kind != "ConfigMap" || !ok {
			t.Errorf("monitoring renders %s, want only the ConfigMaps %v", o, slices.Sorted(maps.Keys(want)))
			continue
		}
		if o.Metadata.Namespace != "monitoring" {
			t.Errorf("%s is in namespace %q, want monitoring (where the network policies let Prometheus scrape from)", o, o.Metadata.Namespace)
		}
		for key, text := range data {
			if o.Data[key] != text {
				t.Errorf("%s[%s] differs from the file it is made from", o, key)
			}
		}
		if len(o.Data) != len(data) {
			t.Errorf("%s has keys %v, want %v", o, slices.Sorted(maps.Keys(o.Data)), slices.Sorted(maps.Keys(data)))
		}
	}
}

// scrapeJob is the part of a Prometheus scrape job the check reads.
type scrapeJob struct {
	JobName             string `yaml:"job_name"`
	KubernetesSDConfigs []struct {
		Role       string `yaml:"role"`
		Namespaces struct {
			Names []string `yaml:"names"`
		} `yaml:"namespaces"`
	} `yaml:"kubernetes_sd_configs"`
	RelabelConfigs []struct {
		SourceLabels []string `yaml:"source_labels"`
		Regex        string   `yaml:"regex"`
		Action       string   `yaml:"action"`
		TargetLabel  string   `yaml:"target_label"`
	} `yaml:"relabel_configs"`
}

// TestScrapeGivesTheLabelsTheRulesUse: the alerts select job="bastion" and
// name each process (BastionServiceDown fires for a process with no target
// at all), so the Kubernetes scrape job must be called bastion, find the
// pods in namespace bastion by their prometheus.io/scrape annotation and
// port named metrics, and take process from app.kubernetes.io/name, and
// every Deployment must be one of the processes the rules name, scrapable
// that way.
func TestScrapeGivesTheLabelsTheRulesUse(t *testing.T) {
	t.Parallel()
	var cfg struct {
		ScrapeConfigs []scrapeJob `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "monitoring/scrape.yml")), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.ScrapeConfigs) != 1 {
		t.Fatalf("scrape.yml has %d jobs, want 1", len(cfg.ScrapeConfigs))
	}
	job := cfg.ScrapeConfigs[0]
	if job.JobName != "bastion" {
		t.Errorf("job_name = %q, want bastion (the rules select up{job=\"bastion\"})", job.JobName)
	}
	if len(job.KubernetesSDConfigs) != 1 || job.KubernetesSDConfigs[0].Role != "pod" ||
		!slices.Equal(job.KubernetesSDConfigs[0].Namespaces.Names, []string{"bastion"}) {
		t.Errorf("kubernetes_sd_configs = %+v, want pods of namespace bastion", job.KubernetesSDConfigs)
	}
	var keepsAnnotated, keepsMetricsPort, setsProcess bool
	for _, r := range job.RelabelConfigs {
		src := r.SourceLabels
		switch {
		case r.Action == "keep" && slices.Equal(src, []string{"__meta_kubernetes_pod_annotation_prometheus_io_scrape"}) && r.Regex == "true":
			keepsAnnotated = true
		case r.Action == "keep" && slices.Equal(src, []string{"__meta_kubernetes_pod_container_port_name"}) && r.Regex == "metrics":
			keepsMetricsPort = true
		case r.TargetLabel == "process" && slices.Equal(src, []string{"__meta_kubernetes_pod_label_app_kubernetes_io_name"}) &&
			(r.Action == "" || r.Action == "replace") && (r.Regex == "" || r.Regex == "(.*)"):
			setsProcess = true
		}
	}
	if !keepsAnnotated || !keepsMetricsPort || !setsProcess {
		t.Errorf("relabel_configs keep annotated pods %v, keep the port named metrics %v, set process from app.kubernetes.io/name %v; want all",
			keepsAnnotated, keepsMetricsPort, setsProcess)
	}

	processes := ruleProcesses(t)
	var deployed []string
	for _, o := range ofKind(render(t, "base"), "Deployment") {
		spec := decodeSpec[struct {
			Template struct {
				Metadata struct {
					Labels      map[string]string `json:"labels"`
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
				Spec podSpec `json:"spec"`
			} `json:"template"`
		}](t, o)
		meta := spec.Template.Metadata
		name := meta.Labels["app.kubernetes.io/name"]
		deployed = append(deployed, name)
		if meta.Annotations["prometheus.io/scrape"] != "true" {
			t.Errorf("%s: pods lack prometheus.io/scrape: \"true\"; nothing would scrape them", o)
		}
		port := -1
		for _, c := range spec.Template.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == "metrics" {
					port = p.ContainerPort
				}
			}
		}
		if port < 0 || meta.Annotations["prometheus.io/port"] != strconv.Itoa(port) {
			t.Errorf("%s: metrics port %d, prometheus.io/port %q; want a port named metrics, annotated", o, port, meta.Annotations["prometheus.io/port"])
		}
	}
	slices.Sort(deployed)
	if !slices.Equal(deployed, processes) {
		t.Errorf("Deployments %v, but BastionServiceDown names the processes %v: a process missing from the rules would vanish unnoticed", deployed, processes)
	}
}

// ruleProcesses returns, sorted, the processes BastionServiceDown names.
func ruleProcesses(t *testing.T) []string {
	t.Helper()
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(alertsDir, "bastion.rules.yml"))), &rules); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert != "BastionServiceDown" {
				continue
			}
			for _, m := range regexp.MustCompile(`process="([a-z]+)"`).FindAllStringSubmatch(r.Expr, -1) {
				out = append(out, m[1])
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("bastion.rules.yml: BastionServiceDown names no process")
	}
	slices.Sort(out)
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
