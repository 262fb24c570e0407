package lambdatest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// lambdaGetConfig is the GetFunctionConfiguration input.
type lambdaGetConfig = lambda.GetFunctionConfigurationInput

// osMkdirTemp makes a directory for executables shared by several tests.
func osMkdirTemp() (string, error) { return os.MkdirTemp("", "lambdatest-") }

// fatalRecorder records Fatal calls instead of ending the test.
type fatalRecorder struct {
	testing.TB
	fatal bool
	msg   string
}

// Fatalf records the failure and stops the calling goroutine.
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.fatal = true
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

// Fatal records the failure and stops the calling goroutine.
func (f *fatalRecorder) Fatal(args ...any) {
	f.fatal = true
	f.msg = fmt.Sprint(args...)
	panic(f)
}

// Helper does nothing.
func (f *fatalRecorder) Helper() {}

// TestMain removes the shared probe executable after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if probe.path != "" {
		_ = os.RemoveAll(filepath.Dir(filepath.Dir(probe.path)))
	}
	os.Exit(code)
}
