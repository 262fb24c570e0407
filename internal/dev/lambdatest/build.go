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
	return BuildTags(tb, goos, goarch, "", pkgs...)
}

// BuildTags is Build with the build tags tags (comma-separated; empty for
// none).
func BuildTags(tb testing.TB, goos, goarch, tags string, pkgs ...string) map[string]string {
	tb.Helper()
	root, err := infra.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	out := map[string]string{}
	for _, p := range pkgs {
		exe := filepath.Join(dir, filepath.Base(p)+".function", "bootstrap")
		if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
			tb.Fatal(err)
		}
		out[p] = exe
	}
	// One go command for all packages (the executables land in dir under
	// their package names), then each moves to <name>/bootstrap, the name
	// Lambda runs.
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	seen := map[string]bool{}
	for _, p := range pkgs {
		if seen[filepath.Base(p)] {
			tb.Fatalf("lambdatest: Build: two packages named %s", filepath.Base(p))
		}
		seen[filepath.Base(p)] = true
		args = append(args, p)
	}
	cmd := exec.Command(GoTool(), args...)
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
		tb.Fatalf("go build %v (GOOS=%s GOARCH=%s): %v\n%s", pkgs, goos, goarch, err, stderr.String())
	}
	for _, p := range pkgs {
		built := filepath.Join(dir, filepath.Base(p))
		if goos == "windows" {
			built += ".exe"
		}
		if err := os.Rename(built, out[p]); err != nil {
			tb.Fatalf("lambdatest: Build: %v", err)
		}
	}
	return out
}
