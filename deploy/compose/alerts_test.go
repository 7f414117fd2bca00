package compose_test

import (
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// TestPrometheusLoadsTheAlertRules: Compose's Prometheus loads the rule file
// that promtool tests (deploy/alerts/bastion.rules.yml) and no other from
// there (the audit-verify rules read kube-state-metrics, which Compose does
// not run), and labels its targets as the rules select them: job "bastion",
// and a process label for each process BastionServiceDown names.
func TestPrometheusLoadsTheAlertRules(t *testing.T) {
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "deploy/compose/prometheus/prometheus.yml", &prom)

	alerts, err := filepath.Abs(filepath.Join(root, "deploy/alerts"))
	if err != nil {
		t.Fatal(err)
	}
	var loaded []string
	for _, v := range load(t).Services["prometheus"].Volumes {
		if filepath.Dir(v.Source) != alerts {
			continue
		}
		for _, pattern := range prom.RuleFiles {
			if ok, err := path.Match(pattern, v.Target); err != nil {
				t.Fatalf("rule_files pattern %q: %v", pattern, err)
			} else if ok {
				loaded = append(loaded, filepath.Base(v.Source))
			}
		}
	}
	if want := []string{"bastion.rules.yml"}; !slices.Equal(loaded, want) {
		t.Errorf("Prometheus loads %v from deploy/alerts, want %v (mounted, and matched by rule_files %v)", loaded, want, prom.RuleFiles)
	}

	var processes []string
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName != "bastion" {
			continue
		}
		for _, st := range sc.StaticConfigs {
			processes = append(processes, st.Labels["process"])
		}
	}
	slices.Sort(processes)
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, "deploy/alerts/bastion.rules.yml", &rules)
	var want []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "BastionServiceDown" {
				for _, m := range regexp.MustCompile(`process="([a-z]+)"`).FindAllStringSubmatch(r.Expr, -1) {
					want = append(want, m[1])
				}
			}
		}
	}
	slices.Sort(want)
	if len(want) == 0 || !slices.Equal(processes, want) {
		t.Errorf("job bastion scrapes the processes %v, BastionServiceDown names %v: want the same", processes, want)
	}
}
