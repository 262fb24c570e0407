package infra_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ceb179/ceb179/infra"
)

// readFile returns a file's text.
func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// fakeResolver resolves every Ref to "ref:<name>" and every GetAtt to
// "<id>.<att>", and fails on "Missing".
type fakeResolver struct{}

func (fakeResolver) Ref(name string) (string, error) {
	if name == "Missing" {
		return "", fmt.Errorf("cannot resolve %s", name)
	}
	return "ref:" + name, nil
}

func (fakeResolver) GetAtt(id, att string) (string, error) { return id + "." + att, nil }

func TestExprResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		yaml     string
		want     string
		wantRefs string
		wantErr  bool
	}{
		{"ok literal", `plain text`, "plain text", "", false},
		{"ok number literal", `1125`, "1125", "", false},
		{"ok short Ref", `!Ref RequestsTable`, "ref:RequestsTable", "RequestsTable", false},
		{"ok long Ref", `{Ref: SignQueue}`, "ref:SignQueue", "SignQueue", false},
		{"ok short GetAtt", `!GetAtt SignQueue.Arn`, "SignQueue.Arn", "SignQueue", false},
		{"ok long GetAtt", `{"Fn::GetAtt": [UploadFunction, Arn]}`, "UploadFunction.Arn", "UploadFunction", false},
		{"ok Sub", `!Sub "${PaymentsTable.Arn}/index/byOrder in ${AWS::Region}"`, "PaymentsTable.Arn/index/byOrder in ref:AWS::Region", "PaymentsTable", false},
		{"ok long Sub", `{"Fn::Sub": "/aws/lambda/${AWS::StackName}-ingest"}`, "/aws/lambda/ref:AWS::StackName-ingest", "", false},
		{"fail Ref unresolvable", `!Ref Missing`, "", "Missing", true},
		{"fail Sub unterminated", `!Sub "${Oops"`, "", "", true},
		{"fail unsupported function", `{"Fn::Join": ["", [a, b]]}`, "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tc.yaml), &doc); err != nil {
				t.Fatal(err)
			}
			e := infra.ExprOf(doc.Content[0])
			got, err := e.Resolve(fakeResolver{})
			if (err != nil) != tc.wantErr {
				t.Fatalf("Resolve = %q, %v; wantErr %t", got, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("Resolve = %q, want %q", got, tc.want)
			}
			if refs := strings.Join(e.References(), ","); refs != tc.wantRefs {
				t.Errorf("References = %q, want %q", refs, tc.wantRefs)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
	}{
		{"fail not a mapping", "- a\n- b\n"},
		{"fail no resources", "Transform: AWS::Serverless-2016-10-31\n"},
		{"fail resource without type", "Resources:\n  Q:\n    Properties: {}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := infra.Parse([]byte(tc.text)); err == nil {
				t.Fatal("Parse accepted it")
			}
		})
	}
}

func TestQueuesRejectUnknownProperty(t *testing.T) {
	t.Parallel()
	tpl, err := infra.Parse([]byte("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      KmsDataKeyReusePeriodSeconds: 300\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tpl.Queues(); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("Queues() err = %v, want a refusal of the unknown property", err)
	}
}
