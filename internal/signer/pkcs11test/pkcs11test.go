// Package pkcs11test builds a fake PKCS#11 module for tests: a real
// shared library, loaded through the same cgo calls as a vendor's, whose
// login can refuse, fail with any code, or hang, and which counts the
// logins (they carry the PIN) as they enter.
package pkcs11test

import (
	_ "embed"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

//go:embed fakemodule.c.in
var source string

// Module is a fake PKCS#11 module built for one test.
type Module struct {
	// Path is the shared library to give as a signer's module.
	Path string
	dir  string
}

// Token is the label, and Serial the serial number, of the module's one
// token (in slot 1).
const (
	Token  = "fake"
	Serial = "FAKE0001"
)

// Build compiles the module with the C compiler cgo uses (go env CC) into
// a temporary directory. Its login succeeds until SetLogin says otherwise.
func Build(t *testing.T) *Module {
	t.Helper()
	gotool, err := exec.LookPath("go")
	if err != nil {
		gotool = filepath.Join(build.Default.GOROOT, "bin", "go")
	}
	goenv := func(args ...string) string {
		// Run in the test's package folder, inside the module.
		out, err := exec.Command(gotool, args...).Output()
		if err != nil {
			t.Fatalf("go %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	headers := goenv("list", "-m", "-f", "{{.Dir}}", "github.com/miekg/pkcs11")
	cc := strings.Fields(goenv("env", "CC"))
	dir := t.TempDir()
	src := filepath.Join(dir, "fakemodule.c")
	if err := os.WriteFile(src, []byte(source), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Module{Path: filepath.Join(dir, "fakepkcs11.so"), dir: dir}
	args := append(cc[1:], "-shared", "-fPIC", "-O1", "-I", headers, "-DFAKE_DIR=\""+dir+"\"", "-o", m.Path, src)
	if out, err := exec.Command(cc[0], args...).CombinedOutput(); err != nil {
		t.Fatalf("build the fake PKCS#11 module: %v\n%s", err, out)
	}
	t.Cleanup(m.Release)
	return m
}

// SetLogin sets how C_Login answers from now on: "hang" (until Release),
// or a CK_RV such as "0xA0" (CKR_PIN_INCORRECT); "0x0" logs in.
func (m *Module) SetLogin(mode string) {
	if err := os.WriteFile(filepath.Join(m.dir, "mode"), []byte(mode), 0o600); err != nil {
		panic(err)
	}
}

// Logins returns how many C_Login calls entered the module.
func (m *Module) Logins() int {
	b, _ := os.ReadFile(filepath.Join(m.dir, "logins"))
	return len(b)
}

// Release ends hung logins (they return CKR_DEVICE_ERROR).
func (m *Module) Release() {
	_ = os.WriteFile(filepath.Join(m.dir, "release"), nil, 0o600)
}
