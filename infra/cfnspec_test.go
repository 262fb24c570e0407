package infra_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ceb179/ceb179/infra"
)

// loadSpec reads the cached CloudFormation specification. `make test`
// fetches it first (`make cfnspec`, with npm) and requires it by setting
// CEB179_CFNSPEC; a plain `go test` without the cache skips.
func loadSpec(t *testing.T) *infra.Spec {
	t.Helper()
	path, err := infra.SpecPath()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil && os.Getenv("CEB179_CFNSPEC") == "" {
		t.Skipf("no CloudFormation specification at %s: run make cfnspec (npm pack %s)", path, infra.SpecPackage)
	}
	spec, err := infra.LoadSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestSpecPackagePinned checks that the Makefile fetches the version of the
// specification this package names.
func TestSpecPackagePinned(t *testing.T) {
	root, err := infra.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mk, err := readFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(mk, "CFNSPEC_PACKAGE := "+infra.SpecPackage+"\n") {
		t.Errorf("the Makefile's CFNSPEC_PACKAGE is not %s", infra.SpecPackage)
	}
}

// TestTemplateMatchesCloudFormationSpec checks every resource of
// template.yaml against the CloudFormation resource specification (what
// `sam validate` would catch that the other template tests do not), and
// that the check catches the mistakes it is for.
func TestTemplateMatchesCloudFormationSpec(t *testing.T) {
	spec := loadSpec(t)
	tpl := loadTemplate(t)
	text, err := readFile(tpl.Path)
	if err != nil {
		t.Fatal(err)
	}
	if problems := spec.CheckSpec([]byte(text)); len(problems) > 0 {
		t.Fatalf("template.yaml does not match the CloudFormation specification:\n%s", strings.Join(problems, "\n"))
	}

	tests := []struct {
		name, old, new, want string
	}{
		{"fail misspelt property", "      VisibilityTimeout: 180\n", "      VisibiltyTimeout: 180\n",
			"Resources.AssembleQueue.Properties.VisibiltyTimeout: not a property of AWS::SQS::Queue (did you mean VisibilityTimeout?)"},
		{"fail misspelt nested property", "        - { Key: lambda.multi_value_headers.enabled, Value: \"true\" }",
			"        - { Kye: lambda.multi_value_headers.enabled, Value: \"true\" }",
			"Resources.FrontDoorTargetGroup.Properties.TargetGroupAttributes[0].Kye: not a property of TargetGroupAttribute (did you mean Key?)"},
		{"fail misspelt property in an Fn::If branch", "                CustomResponse:\n", "                CustomRespons:\n",
			"Resources.FrontDoorWebAcl.Properties.Rules[0].Action(Fn::If 1).Block.CustomRespons: not a property of BlockAction"},
		{"fail misspelt SAM event property", "            PayloadFormatVersion: \"2.0\"\n            Auth:", "            PayloadFormatVersoin: \"2.0\"\n            Auth:",
			"Resources.PaymentsFunction.Properties.Events.RecordPayment.Properties.PayloadFormatVersoin: not a property of HttpApiEvent"},
		{"fail misspelt global", "    MemorySize: 256\n", "    MemorySise: 256\n", "Globals.Function.MemorySise: not a property of AWS::Serverless::Function"},
		{"fail unknown resource type", "    Type: AWS::SQS::Queue\n", "    Type: AWS::SQS::Queu\n", `unknown resource type "AWS::SQS::Queu"`},
		{"fail missing required property", "      LoadBalancerArn: !Ref FrontDoorLoadBalancer\n      Port: 80\n", "      Port: 80\n",
			"Resources.FrontDoorHttpListener.Properties: required property LoadBalancerArn of AWS::ElasticLoadBalancingV2::Listener is missing"},
		{"fail a number that is not one", "      MessageRetentionPeriod: 86400\n", "      MessageRetentionPeriod: one day\n", `MessageRetentionPeriod: "one day" is not a number`},
		{"fail a list where a mapping belongs", "      DefaultAction: { Allow: {} }", "      DefaultAction: [Allow]", "Resources.FrontDoorWebAcl.Properties.DefaultAction: want a mapping of DefaultAction properties"},
		{"fail misspelt resource attribute", "    DependsOn: FrontDoorInvokePermission\n", "    DependOn: FrontDoorInvokePermission\n",
			"Resources.FrontDoorTargetGroup.DependOn: not a resource attribute (did you mean DependsOn?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(text, tt.old) {
				t.Fatalf("template.yaml no longer holds %q; pick another line", tt.old)
			}
			problems := spec.CheckSpec([]byte(strings.Replace(text, tt.old, tt.new, 1)))
			found := false
			for _, p := range problems {
				found = found || strings.Contains(p, tt.want)
			}
			if !found {
				t.Fatalf("problems %q, want one containing %q", problems, tt.want)
			}
		})
	}
}
