package k8s_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type cronJobSpec struct {
	Schedule                   string `json:"schedule"`
	ConcurrencyPolicy          string `json:"concurrencyPolicy"`
	StartingDeadlineSeconds    *int64 `json:"startingDeadlineSeconds"`
	SuccessfulJobsHistoryLimit *int32 `json:"successfulJobsHistoryLimit"`
	FailedJobsHistoryLimit     *int32 `json:"failedJobsHistoryLimit"`
	JobTemplate                struct {
		Spec struct {
			BackoffLimit          *int32 `json:"backoffLimit"`
			ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds"`
			Template              struct {
				Spec struct {
					RestartPolicy string `json:"restartPolicy"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	} `json:"jobTemplate"`
}

// cronJobProblems lists what is wrong with a CronJob's scheduling: runs
// must not pile up, a hung run must end before the next is due, and failed
// runs must stay around long enough to be looked at.
func cronJobProblems(spec cronJobSpec) []string {
	var p []string
	fields := strings.Fields(spec.Schedule)
	if len(fields) != 5 {
		p = append(p, fmt.Sprintf("schedule %q is not five cron fields", spec.Schedule))
	}
	if spec.ConcurrencyPolicy != "Forbid" {
		p = append(p, fmt.Sprintf("concurrencyPolicy %q, want Forbid", spec.ConcurrencyPolicy))
	}
	if spec.StartingDeadlineSeconds == nil {
		p = append(p, "no startingDeadlineSeconds: after a controller outage, missed runs start late")
	}
	if h := spec.SuccessfulJobsHistoryLimit; h == nil || *h < 1 || *h > 10 {
		p = append(p, "successfulJobsHistoryLimit is not set between 1 and 10")
	}
	if h := spec.FailedJobsHistoryLimit; h == nil || *h < 1 || *h > 10 {
		p = append(p, "failedJobsHistoryLimit is not set between 1 and 10: a failure must stay visible")
	}
	job := spec.JobTemplate.Spec
	if job.BackoffLimit == nil || *job.BackoffLimit > 3 {
		p = append(p, "backoffLimit is unset (6) or above 3")
	}
	deadline := job.ActiveDeadlineSeconds
	if deadline == nil || *deadline <= 0 {
		p = append(p, "no activeDeadlineSeconds: a hung run would block every later one")
	} else if every, ok := minutesApart(fields); ok && *deadline >= int64(every*60) {
		p = append(p, fmt.Sprintf("activeDeadlineSeconds %d does not end a run before the next is due (%d minutes)", *deadline, every))
	}
	if rp := job.Template.Spec.RestartPolicy; rp != "Never" {
		p = append(p, fmt.Sprintf("restartPolicy %q, want Never (a failed pod, and its log, is kept)", rp))
	}
	return p
}

// minutesApart reads "*/N * * * *", the one schedule shape whose period it
// knows.
func minutesApart(fields []string) (int, bool) {
	if len(fields) != 5 || !strings.HasPrefix(fields[0], "*/") || slices.ContainsFunc(fields[1:], func(f string) bool { return f != "*" }) {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(fields[0], "*/"))
	return n, err == nil && n > 0
}

func TestCronJobsAreScheduledSafely(t *testing.T) {
	t.Parallel()
	for _, dir := range kustomizations {
		for _, o := range ofKind(render(t, dir), "CronJob") {
			for _, p := range cronJobProblems(decodeSpec[cronJobSpec](t, o)) {
				t.Errorf("%s: %s: %s", dir, o, p)
			}
		}
	}
}

func TestCronJobChecksCatchWeakenedSchedules(t *testing.T) {
	t.Parallel()
	i := slices.IndexFunc(render(t, "base"), func(o object) bool { return o.String() == "CronJob/audit-verify" })
	if i < 0 {
		t.Fatal("no CronJob/audit-verify in base")
	}
	good := func() cronJobSpec { return decodeSpec[cronJobSpec](t, render(t, "base")[i]) }
	if p := cronJobProblems(good()); len(p) != 0 {
		t.Fatalf("the audit-verify CronJob itself has problems: %v", p)
	}
	long, six := int64(3600), int32(6)
	for name, weaken := range map[string]func(*cronJobSpec){
		"no schedule":             func(s *cronJobSpec) { s.Schedule = "" },
		"runs allowed to overlap": func(s *cronJobSpec) { s.ConcurrencyPolicy = "Allow" },
		"runs replaced":           func(s *cronJobSpec) { s.ConcurrencyPolicy = "Replace" },
		"no starting deadline":    func(s *cronJobSpec) { s.StartingDeadlineSeconds = nil },
		"no failed history":       func(s *cronJobSpec) { s.FailedJobsHistoryLimit = nil },
		"default backoff":         func(s *cronJobSpec) { s.JobTemplate.Spec.BackoffLimit = nil },
		"many retries":            func(s *cronJobSpec) { s.JobTemplate.Spec.BackoffLimit = &six },
		"no deadline":             func(s *cronJobSpec) { s.JobTemplate.Spec.ActiveDeadlineSeconds = nil },
		"deadline past next run":  func(s *cronJobSpec) { s.JobTemplate.Spec.ActiveDeadlineSeconds = &long },
		"restarted in place":      func(s *cronJobSpec) { s.JobTemplate.Spec.Template.Spec.RestartPolicy = "OnFailure" },
	} {
		s := good()
		weaken(&s)
		if len(cronJobProblems(s)) == 0 {
			t.Errorf("cronJobProblems(%s) = none, want the weakness caught", name)
		}
	}
}

// auditVerifyContainer is what TestAuditVerifyChecksEveryChain reads of the
// audit-verify pod.
type auditVerifyContainer struct {
	Args         []string      `json:"args"`
	Env          []envVar      `json:"env"`
	VolumeMounts []volumeMount `json:"volumeMounts"`
}

type envVar struct {
	Name      string `json:"name"`
	ValueFrom *struct {
		SecretKeyRef *secretKeyRef `json:"secretKeyRef"`
	} `json:"valueFrom"`
}

type secretKeyRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

type volumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
}

// TestAuditVerifyChecksEveryChain: every cluster gets the scheduled check,
// it verifies all three schemas, it logs in as the audit reader (never as a
// service role, which could rewrite the chain it checks), and it takes
// anchors from a ConfigMap the manifests do not carry, so applying them
// again never resets the anchors an operator stored.
func TestAuditVerifyChecksEveryChain(t *testing.T) {
	t.Parallel()
	for _, dir := range kustomizations {
		objs := render(t, dir)
		for _, o := range objs {
			if (o.Kind == "ConfigMap" || o.Kind == "Secret") && strings.HasPrefix(o.Metadata.Name, "bastion-audit-anchors") {
				t.Errorf("%s: %s is in the manifests; applying them would reset the anchors", dir, o)
			}
		}
		var found []object
		for _, o := range ofKind(objs, "CronJob") {
			if o.Metadata.Name == "audit-verify" {
				found = append(found, o)
			}
		}
		if len(found) != 1 {
			t.Errorf("%s: %d CronJob/audit-verify, want 1", dir, len(found))
			continue
		}
		var spec struct {
			JobTemplate struct {
				Spec struct {
					Template struct {
						Spec struct {
							Containers []auditVerifyContainer `json:"containers"`
							Volumes    []struct {
								Name      string `json:"name"`
								ConfigMap *struct {
									Name     string `json:"name"`
									Optional *bool  `json:"optional"`
								} `json:"configMap"`
							} `json:"volumes"`
						} `json:"spec"`
					} `json:"template"`
				} `json:"spec"`
			} `json:"jobTemplate"`
		}
		if err := json.Unmarshal(found[0].Spec, &spec); err != nil {
			t.Fatal(err)
		}
		pod := spec.JobTemplate.Spec.Template.Spec
		if len(pod.Containers) != 1 {
			t.Fatalf("%s: %d containers, want 1", dir, len(pod.Containers))
		}
		for _, p := range auditVerifyProblems(pod.Containers[0], func(volume string) (string, bool) {
			for _, v := range pod.Volumes {
				if v.Name == volume && v.ConfigMap != nil {
					return v.ConfigMap.Name, isTrue(v.ConfigMap.Optional)
				}
			}
			return "", false
		}) {
			t.Errorf("%s: %s", dir, p)
		}
	}
}

// auditVerifyProblems checks the container's command line and credentials;
// configMap says which ConfigMap a volume is and whether it is optional.
func auditVerifyProblems(c auditVerifyContainer, configMap func(volume string) (string, bool)) []string {
	var p []string
	args := slices.Clone(c.Args)
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(strings.TrimLeft(a, "-"), "record") }) {
		p = append(p, "sets -record: each run must record the head it verified, for the next to check against")
	}
	anchorDir := ""
	if i := slices.Index(args, "-anchor-dir"); i >= 0 && i+1 < len(args) {
		anchorDir = args[i+1]
		args = slices.Delete(args, i, i+2)
	}
	if len(args) < 2 || args[0] != "env:DATABASE_URL" {
		return append(p, fmt.Sprintf("args %q: want [-anchor-dir DIR] env:DATABASE_URL SCHEMA... (a password on the command line is visible to the host)", c.Args))
	}
	schemas := slices.Sorted(slices.Values(args[1:]))
	if !slices.Equal(schemas, []string{"accounts", "auth", "ledger"}) {
		p = append(p, fmt.Sprintf("verifies %v, want auth, accounts and ledger", args[1:]))
	}
	i := slices.IndexFunc(c.Env, func(e envVar) bool { return e.Name == "DATABASE_URL" })
	switch {
	case i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.SecretKeyRef == nil:
		p = append(p, "DATABASE_URL does not come from a Secret")
	case !isGenerated(c.Env[i].ValueFrom.SecretKeyRef.Name, "bastion-db-audit"):
		p = append(p, fmt.Sprintf("DATABASE_URL comes from %s, want bastion-db-audit (the read-only audit reader)", c.Env[i].ValueFrom.SecretKeyRef.Name))
	}
	if anchorDir == "" {
		return append(p, "no -anchor-dir: the runs cannot be anchored")
	}
	m := slices.IndexFunc(c.VolumeMounts, func(m volumeMount) bool { return m.MountPath == anchorDir })
	if m < 0 {
		return append(p, "nothing is mounted at -anchor-dir "+anchorDir)
	}
	if name, optional := configMap(c.VolumeMounts[m].Name); name != "bastion-audit-anchors" || !optional {
		p = append(p, fmt.Sprintf("%s is ConfigMap %q (optional %v), want the optional bastion-audit-anchors", anchorDir, name, optional))
	}
	return p
}

// isGenerated says whether name is base, or base with the hash suffix a
// kustomize generator adds.
func isGenerated(name, base string) bool {
	return name == base || (strings.HasPrefix(name, base+"-") && !strings.Contains(name[len(base)+1:], "-"))
}

func TestAuditVerifyChecksCatchWeakenedJobs(t *testing.T) {
	t.Parallel()
	good := func() auditVerifyContainer {
		c := auditVerifyContainer{
			Args:         []string{"-anchor-dir", "/anchors", "env:DATABASE_URL", "auth", "accounts", "ledger"},
			Env:          []envVar{{Name: "DATABASE_URL"}},
			VolumeMounts: []volumeMount{{Name: "anchors", MountPath: "/anchors"}},
		}
		c.Env[0].ValueFrom = &struct {
			SecretKeyRef *secretKeyRef `json:"secretKeyRef"`
		}{&secretKeyRef{Name: "bastion-db-audit-k7h2", Key: "url"}}
		return c
	}
	anchors := func(optional bool) func(string) (string, bool) {
		return func(v string) (string, bool) {
			if v == "anchors" {
				return "bastion-audit-anchors", optional
			}
			return "", false
		}
	}
	if p := auditVerifyProblems(good(), anchors(true)); len(p) != 0 {
		t.Fatalf("the good container has problems: %v", p)
	}
	for name, weaken := range map[string]func(*auditVerifyContainer){
		"a schema left out":      func(c *auditVerifyContainer) { c.Args = c.Args[:len(c.Args)-1] },
		"a service's role":       func(c *auditVerifyContainer) { c.Env[0].ValueFrom.SecretKeyRef.Name = "bastion-db-transactions" },
		"a service's generated":  func(c *auditVerifyContainer) { c.Env[0].ValueFrom.SecretKeyRef.Name = "bastion-db-auth-k7h2" },
		"URL in plain text":      func(c *auditVerifyContainer) { c.Env[0].ValueFrom = nil },
		"URL in the args":        func(c *auditVerifyContainer) { c.Args[2] = "postgres://postgres@db/bank" },
		"URL expanded into argv": func(c *auditVerifyContainer) { c.Args[2] = "$(DATABASE_URL)" },
		"no anchors":             func(c *auditVerifyContainer) { c.Args = c.Args[2:] },
		"heads not recorded":     func(c *auditVerifyContainer) { c.Args = append([]string{"-record=false"}, c.Args...) },
		"anchors not mounted":    func(c *auditVerifyContainer) { c.VolumeMounts = nil },
	} {
		c := good()
		weaken(&c)
		if len(auditVerifyProblems(c, anchors(true))) == 0 {
			t.Errorf("auditVerifyProblems(%s) = none, want the weakness caught", name)
		}
	}
	if len(auditVerifyProblems(good(), anchors(false))) == 0 {
		t.Error("a required anchors ConfigMap was not caught: the job could not start before an operator made one")
	}
}
