package awstest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/dev/awstest"
)

func TestNew(t *testing.T) {
	t.Parallel()
	env := awstest.New(t)
	ctx := context.Background()

	if !strings.HasPrefix(env.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("Endpoint = %q, want a loopback URL", env.Endpoint)
	}
	table := env.Table("RequestsTable")
	if !strings.HasPrefix(table, env.Prefix) {
		t.Errorf("Table = %q, want prefix %q", table, env.Prefix)
	}
	_, err := env.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item: map[string]types.AttributeValue{
			"sessionID": &types.AttributeValueMemberS{Value: "s1"},
			"sk":        &types.AttributeValueMemberS{Value: "REQUEST"},
		},
	})
	if err != nil {
		t.Fatalf("PutItem: %v", err)
	}
	if _, err := env.SQS.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:    aws.String(env.Queue("AssembleQueue")),
		MessageBody: aws.String(`{"sessionID":"s1"}`),
	}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}

	vars := env.Env()
	for _, k := range []string{"REQUESTS_TABLE", "PAYMENTS_TABLE", "ASSEMBLE_QUEUE_URL", "SIGN_QUEUE_URL",
		"CUSTOMS_UPLOAD_URL", "RETENTION_DAYS", "UPLOAD_FUNCTION", "AWS_ENDPOINT_URL", "AWS_REGION"} {
		if vars[k] == "" {
			t.Errorf("Env()[%s] is empty", k)
		}
	}
	if vars["REQUESTS_TABLE"] != table || vars["SIGN_QUEUE_URL"] != env.Queue("SignQueue") {
		t.Errorf("Env() = %v, does not match Table/Queue", vars)
	}
	if vars["CUSTOMS_UPLOAD_URL"] != awstest.UnreachableCustomsURL {
		t.Errorf("CUSTOMS_UPLOAD_URL = %q, want the unreachable loopback default", vars["CUSTOMS_UPLOAD_URL"])
	}
	if vars["RETENTION_DAYS"] != "1125" {
		t.Errorf("RETENTION_DAYS = %q, want the template default 1125", vars["RETENTION_DAYS"])
	}
	if got := env.FunctionEnv("IngestFunction"); got["ASSEMBLE_QUEUE_URL"] == "" || got["SIGN_QUEUE_URL"] != "" {
		t.Errorf("FunctionEnv(IngestFunction) = %v, want only ingest's variables", got)
	}
}

func TestNewPrefixesAreUnique(t *testing.T) {
	t.Parallel()
	a, b := awstest.New(t), awstest.New(t)
	if a.Prefix == b.Prefix || a.Table("PaymentsTable") == b.Table("PaymentsTable") {
		t.Fatalf("two environments share names: %q %q", a.Prefix, b.Prefix)
	}
	if a.Endpoint != b.Endpoint {
		t.Fatalf("two emulators started: %s %s", a.Endpoint, b.Endpoint)
	}
}

func TestWithParameters(t *testing.T) {
	t.Parallel()
	env := awstest.New(t, awstest.WithParameters(map[string]string{"CustomsUploadUrl": "http://127.0.0.1:1/x", "RetentionDays": "1200"}))
	vars := env.Env()
	if vars["CUSTOMS_UPLOAD_URL"] != "http://127.0.0.1:1/x" || vars["RETENTION_DAYS"] != "1200" {
		t.Fatalf("Env() = %v, parameters not applied", vars)
	}
}

func TestSetenvReachesEmulatorThroughAwsenv(t *testing.T) {
	env := awstest.New(t)
	env.Setenv(t)
	c, err := awsenv.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(c.Config.BaseEndpoint); got != env.Endpoint {
		t.Fatalf("BaseEndpoint = %q, want %q (AWS_ENDPOINT_URL not honoured)", got, env.Endpoint)
	}
	out, err := c.DynamoDB.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(env.Table("RequestsTable"))})
	if err != nil {
		t.Fatalf("DescribeTable through awsenv.Load: %v", err)
	}
	if aws.ToString(out.Table.TableName) != env.Table("RequestsTable") {
		t.Fatalf("DescribeTable = %v", out.Table.TableName)
	}
}

func TestConfigDialsLoopbackOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		endpoint string
		wantErr  bool
	}{
		{"ok loopback", awstest.Endpoint(t), false},
		{"fail public address", "http://192.0.2.1:80", true},
		{"fail AWS host name", "https://dynamodb.us-east-1.amazonaws.com", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := awsenv.New(awstest.Config(tc.endpoint), awsenv.WithEmulator())
			ctx, cancel := context.WithTimeout(context.Background(), 5e9)
			defer cancel()
			_, err := c.DynamoDB.ListTables(ctx, &dynamodb.ListTablesInput{})
			if (err != nil) != tc.wantErr {
				t.Fatalf("ListTables err = %v, wantErr %t", err, tc.wantErr)
			}
			if tc.wantErr && !strings.Contains(err.Error(), "non-loopback") {
				t.Fatalf("err = %v, want the loopback guard", err)
			}
		})
	}
}
