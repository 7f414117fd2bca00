package compose_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// readYAML decodes the YAML file at path, relative to the repository root.
func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestExemplarsLeadFromGrafanaToJaeger keeps every link of the path from a
// spike on the dashboard to the traces behind it: Prometheus asks for
// OpenMetrics (the only format with exemplars) and stores exemplars, the
// Prometheus data source sends an exemplar's trace_id to a Jaeger data
// source that exists, and the rejected-tokens panel asks for exemplars.
func TestExemplarsLeadFromGrafanaToJaeger(t *testing.T) {
	t.Parallel()
	if cmd := load(t).Services["prometheus"].Command; !slices.Contains(cmd, "--enable-feature=exemplar-storage") {
		t.Errorf("prometheus command = %v, want --enable-feature=exemplar-storage", cmd)
	}

	var prom struct {
		Global struct {
			ScrapeProtocols []string `yaml:"scrape_protocols"`
		} `yaml:"global"`
	}
	readYAML(t, "deploy/compose/prometheus/prometheus.yml", &prom)
	if p := prom.Global.ScrapeProtocols; len(p) == 0 || !strings.HasPrefix(p[0], "OpenMetricsText") {
		t.Errorf("prometheus scrape_protocols = %v, want OpenMetrics first", p)
	}

	var ds struct {
		Datasources []struct {
			UID      string `yaml:"uid"`
			Type     string `yaml:"type"`
			JSONData struct {
				Destinations []struct {
					Name          string `yaml:"name"`
					DatasourceUID string `yaml:"datasourceUid"`
				} `yaml:"exemplarTraceIdDestinations"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	readYAML(t, "deploy/compose/grafana/provisioning/datasources/prometheus.yml", &ds)
	types := map[string]string{}
	for _, d := range ds.Datasources {
		types[d.UID] = d.Type
	}
	linked := false
	for _, d := range ds.Datasources {
		for _, dest := range d.JSONData.Destinations {
			if d.Type == "prometheus" && dest.Name == "trace_id" && types[dest.DatasourceUID] == "jaeger" {
				linked = true
			}
		}
	}
	if !linked {
		t.Errorf("data sources %+v: want the Prometheus one to send exemplar trace_id to a Jaeger one", ds.Datasources)
	}

	raw, err := os.ReadFile(filepath.Join(root, "deploy/compose/grafana/dashboards/bastion.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr     string `json:"expr"`
				Exemplar bool   `json:"exemplar"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	for _, metric := range []string{"bank_token_rejections_total", "http_server_request_duration_seconds_bucket"} {
		found := false
		for _, p := range dash.Panels {
			for _, tg := range p.Targets {
				found = found || (strings.Contains(tg.Expr, metric) && tg.Exemplar)
			}
		}
		if !found {
			t.Errorf("no dashboard query of %s asks for exemplars", metric)
		}
	}
}
