package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/ceb179/ceb179/internal/ops"
	"github.com/ceb179/ceb179/internal/ops/opstest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenDay is a day of its own in the shared tables, seeded for the
// golden files and touched by no other test.
const goldenDay = "2026-11-10"

// generatedAt matches the one field of the status that changes per run.
var generatedAt = regexp.MustCompile(`"generatedAt": "[^"]*"`)

// TestOperatorJSONGolden checks the JSON of `status --json` and `show
// --json`, a public interface, against golden files: camelCase names,
// latencies in milliseconds under *Ms names, [] for empty lists, no zero
// times.
func TestOperatorJSONGolden(t *testing.T) {
	b := theOpsBed(t)
	seeded, err := opstest.SeedDay(context.Background(), b.store, goldenDay, 40, "GOLD-", 11)
	if err != nil {
		t.Fatal(err)
	}
	status := runCLI(t, nil, "status", "--local", "--data", b.data, "--day", goldenDay, "--days", "2", "--json")
	if status.code != exitOK {
		t.Fatalf("status: exit %d %s", status.code, status.stderr)
	}
	golden(t, "status.golden.json", generatedAt.ReplaceAllString(status.stdout, `"generatedAt": "-"`))

	quiet := runCLI(t, nil, "status", "--local", "--data", b.data, "--day", "2026-11-09", "--days", "1", "--json")
	golden(t, "status-quiet.golden.json", generatedAt.ReplaceAllString(quiet.stdout, `"generatedAt": "-"`))

	for _, o := range []ops.Outcome{ops.OutcomeFailed, ops.OutcomeNoData} {
		sid := seeded.Sessions[o][0]
		show := runCLI(t, nil, "show", "--local", "--data", b.data, "--json", sid)
		if show.code != exitOK {
			t.Fatalf("show %s: exit %d %s", sid, show.code, show.stderr)
		}
		golden(t, "show-"+string(o)+".golden.json", show.stdout)
	}
}

// golden compares got with testdata/name, or writes it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n%s", name, got)
	}
}
