package lambdatest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/ceb179/ceb179/infra"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dev/lambdatest"
)

// makeBootstrap builds a function's bootstrap with the Makefile's
// build-<LogicalId> target, the one `sam build` runs, for linux/goarch.
func makeBootstrap(b *testing.B, logicalID, goarch string) string {
	b.Helper()
	root, err := infra.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "build-"+logicalID, "ARTIFACTS_DIR="+dir,
		"LAMBDA_ENV=GOOS=linux GOARCH="+goarch+" CGO_ENABLED=0")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("make build-%s: %v\n%s", logicalID, err, out)
	}
	return filepath.Join(dir, "bootstrap")
}

// BenchmarkBootstrap reports, for each function of template.yaml, the size
// of its linux/arm64 bootstrap as deployed (goal: at most 15 MB) and its
// init time: from starting the process (built the same way for this
// machine's architecture) to its first poll of the Runtime API, with the
// template's environment against the emulator (goal: at most 50 ms).
func BenchmarkBootstrap(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("bootstraps run on linux")
	}
	tpl, err := infra.LoadDefault()
	if err != nil {
		b.Fatal(err)
	}
	fns, err := tpl.Functions()
	if err != nil {
		b.Fatal(err)
	}
	for _, fn := range fns {
		b.Run(fn.LogicalID, func(b *testing.B) {
			st, err := os.Stat(makeBootstrap(b, fn.LogicalID, "arm64"))
			if err != nil {
				b.Fatal(err)
			}
			exe := makeBootstrap(b, fn.LogicalID, runtime.GOARCH)
			var inits []time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				env := awstest.New(b)
				b.StartTimer()
				f := lambdatest.StartBinary(b, env, fn.LogicalID, lambdatest.WithExecutable(exe))
				inits = append(inits, f.Init)
			}
			b.StopTimer()
			slices.Sort(inits)
			b.ReportMetric(float64(inits[len(inits)/2].Microseconds())/1000, "init-ms-p50")
			b.ReportMetric(float64(st.Size())/1e6, "arm64-MB")
		})
	}
}
