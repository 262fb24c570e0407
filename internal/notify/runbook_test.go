package notify_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"github.com/ceb179/ceb179/infra"
	"github.com/ceb179/ceb179/internal/notify"
)

// TestRunbooksMatchTemplateAndDocs keeps three things in step: every alarm
// of template.yaml names a runbook (its description's "Runbook:
// docs/operations.md, NAME."), every such runbook has a Chinese summary and
// first commands here, and docs/operations.md has a heading or anchor NAME
// for the messages' links to land on.
func TestRunbooksMatchTemplateAndDocs(t *testing.T) {
	t.Parallel()
	tpl, err := infra.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	root, err := infra.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#{2,4} ([a-z0-9-]+)\s*$`).FindAllSubmatch(doc, -1) {
		anchors[string(m[1])] = true
	}
	for _, m := range regexp.MustCompile(`<a id="([a-z0-9-]+)"></a>`).FindAllSubmatch(doc, -1) {
		anchors[string(m[1])] = true
	}
	named := map[string]bool{}
	for _, id := range tpl.IDs(infra.TypeAlarm) {
		var p struct {
			AlarmDescription string `yaml:"AlarmDescription"`
		}
		if err := tpl.Resources[id].Properties.Decode(&p); err != nil {
			t.Fatal(err)
		}
		c, _ := notify.ParseChange(`{"AlarmName":"x","NewStateValue":"ALARM","AlarmDescription":` + quote(p.AlarmDescription) + `}`)
		if c.Runbook == "" {
			t.Errorf("%s: description %q names no runbook", id, p.AlarmDescription)
			continue
		}
		named[c.Runbook] = true
	}
	var names []string
	for n := range named {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		rb, ok := notify.Runbooks[n]
		if !ok || rb.Summary == "" || len(rb.First) == 0 {
			t.Errorf("runbook %s: no Chinese summary and first commands in notify.Runbooks", n)
		}
		if !anchors[n] {
			t.Errorf("runbook %s: docs/operations.md has no heading or anchor %q for the messages' link", n, n)
		}
	}
	for n := range notify.Runbooks {
		if !named[n] {
			t.Errorf("notify.Runbooks has %s, which no alarm of template.yaml names", n)
		}
	}
}
