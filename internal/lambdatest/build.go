package lambdatest

import (
	"bytes"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ceb179/ceb179/infra"
)

// GoTool returns the path of the go command: the one on PATH, else the
// one of the GOROOT this binary was built with.
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(build.Default.GOROOT, "bin", "go")
}

// Build compiles the main packages pkgs (paths relative to the repository
// root, such as "./functions/ingest") for goos/goarch into a temporary
// directory and returns the path of each executable by package. An empty
// goos or goarch means the host's. The build cache is shared with ordinary
// builds, so repeated runs are cheap.
func Build(tb testing.TB, goos, goarch string, pkgs ...string) map[string]string {
	tb.Helper()
	root, err := infra.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	out := map[string]string{}
	for _, p := range pkgs {
		exe := filepath.Join(dir, filepath.Base(p), "bootstrap")
		if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
			tb.Fatal(err)
		}
		out[p] = exe
	}
	// One go command per package keeps the output names fixed ("bootstrap",
	// as Lambda wants); the build cache makes the extra runs cheap.
	for _, p := range pkgs {
		cmd := exec.Command(GoTool(), "build", "-o", out[p], p)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if goos != "" {
			cmd.Env = append(cmd.Env, "GOOS="+goos)
		}
		if goarch != "" {
			cmd.Env = append(cmd.Env, "GOARCH="+goarch)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			tb.Fatalf("go build %s (GOOS=%s GOARCH=%s): %v\n%s", p, goos, goarch, err, stderr.String())
		}
	}
	return out
}
