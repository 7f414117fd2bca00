package chaos

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes one row per phase: the attempts sent in it, their
// answers by status ("err" for no HTTP answer), the arrivals dropped
// because too many calls were outstanding, the 5xx other than 503,
// when what the fault broke listened again (from the fault's start), how
// long after that the probes recovered (marked when over budget), and the
// audit chains' verdict after it.
func WriteTable(w io.Writer, phases []*Phase, budget time.Duration) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tphase\trequests\tstatuses\tdropped\t5xx≠503\tlistening after\trecovered in\taudit chains (auth/accounts/ledger rows)")
	for i, p := range phases {
		n, statuses := p.Requests()
		listening, recovery, chain := "-", "-", "-"
		if p.Fault != nil {
			listening = p.Listening.Sub(p.Start).Round(100 * time.Millisecond).String()
			recovery = p.Recovery.Round(10 * time.Millisecond).String()
			if !p.Recovered || p.Recovery > budget {
				recovery += " SLOW"
			}
			chain = p.Chain
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\n", i, p.Name, n, Statuses(statuses), p.Dropped(), p.ServerErrors(), listening, recovery, chain)
	}
	return tw.Flush()
}

// Statuses spells a status count as "200:1200 409:3 503:40 err:12".
func Statuses(m map[int]int) string {
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(m)) {
		name := strconv.Itoa(s)
		if s == 0 {
			continue
		}
		parts = append(parts, name+":"+strconv.Itoa(m[s]))
	}
	if m[0] > 0 {
		parts = append(parts, "err:"+strconv.Itoa(m[0]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// The kinds of findings about the phases.
const (
	ServerError  = "5xx other than 503"
	SlowRecovery = "slow recovery"
	ChainBroken  = "audit chain not verified"
)

// Failures lists what in the phases fails the campaign: a 5xx other than
// 503, a recovery slower than budget after what a fault broke listened
// again (or none at all), an audit chain that did not verify.
func Failures(phases []*Phase, budget time.Duration) []Finding {
	var out []Finding
	for _, p := range phases {
		if n := p.ServerErrors(); n > 0 {
			_, statuses := p.Requests()
			out = append(out, Finding{ServerError, fmt.Sprintf("%s: %d answers (%s)", p.Name, n, Statuses(statuses))})
		}
		if p.Fault == nil {
			continue
		}
		switch {
		case !p.Recovered:
			out = append(out, Finding{SlowRecovery, fmt.Sprintf("%s: not recovered %s after %s listened again",
				p.Name, p.Recovery.Round(time.Second), p.Fault.Target)})
		case p.Recovery > budget:
			out = append(out, Finding{SlowRecovery, fmt.Sprintf("%s: recovered %s after %s listened again, budget %s",
				p.Name, p.Recovery.Round(10*time.Millisecond), p.Fault.Target, budget)})
		}
		if !p.ChainOK {
			out = append(out, Finding{ChainBroken, fmt.Sprintf("after %s: %s", p.Name, p.Chain)})
		}
	}
	return out
}

// Summarize groups findings by kind, in the order kinds first appear: one
// line per kind with its count, then up to examples of its findings.
func Summarize(findings []Finding, examples int) []string {
	var kinds []string
	byKind := map[string][]Finding{}
	for _, f := range findings {
		if _, seen := byKind[f.Kind]; !seen {
			kinds = append(kinds, f.Kind)
		}
		byKind[f.Kind] = append(byKind[f.Kind], f)
	}
	var out []string
	for _, k := range kinds {
		fs := byKind[k]
		out = append(out, fmt.Sprintf("%s: %d", k, len(fs)))
		for _, f := range fs[:min(examples, len(fs))] {
			out = append(out, "    "+f.Detail)
		}
		if len(fs) > examples {
			out = append(out, fmt.Sprintf("    … and %d more", len(fs)-examples))
		}
	}
	return out
}
