package infra_test

import (
	"context"
	"os"
	"testing"

	"github.com/ceb179/ceb179/infra"
	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/dev/awstest"
)

// EnvTestEndpoint names the variable that points TestProvisionAgainstEndpoint
// at another emulator on this machine, for example LocalStack:
//
//	CEB179_TEST_AWS_ENDPOINT=http://localhost:4566 go test ./infra -run TestProvisionAgainstEndpoint -v
const EnvTestEndpoint = "CEB179_TEST_AWS_ENDPOINT"

// TestProvisionAgainstEndpoint provisions template.yaml against the
// emulator named by CEB179_TEST_AWS_ENDPOINT and verifies the result. It is
// skipped when the variable is unset; it refuses endpoints that are not on
// a loopback address, so it can never create resources in an AWS account.
func TestProvisionAgainstEndpoint(t *testing.T) {
	endpoint := os.Getenv(EnvTestEndpoint)
	if endpoint == "" {
		t.Skip(EnvTestEndpoint + " is not set; the embedded emulator is covered by TestProvisionMatchesTemplate")
	}
	if !awsenv.IsLoopbackEndpoint(endpoint) {
		t.Fatalf("%s=%s is not a loopback address", EnvTestEndpoint, endpoint)
	}
	c := awsenv.New(awstest.Config(endpoint), awsenv.WithEmulator())
	ctx := context.Background()
	stack, err := infra.Provision(ctx, loadTemplate(t), c, infra.Options{Prefix: awstest.NewPrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	report, err := infra.Verify(ctx, stack, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range report.Differences {
		t.Errorf("differs from template: %s", d)
	}
	for _, n := range report.NotReported {
		t.Logf("not reported by %s: %s", endpoint, n)
	}
	for id, name := range stack.Tables {
		t.Logf("table %s = %s", id, name)
	}
	for id, url := range stack.Queues {
		t.Logf("queue %s = %s", id, url)
	}
}
