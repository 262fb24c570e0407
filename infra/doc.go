// Package infra reads template.yaml, the AWS SAM template that deploys
// ceb179, and creates the same DynamoDB tables and SQS queues against any
// endpoint: the emulator that internal/dev/awstest starts inside `go test`,
// LocalStack, or a real account. The template stays the single source of
// truth; Verify reports where an endpoint's resources differ from it.
//
// The template is read as plain YAML. The SAM parts that libraries such as
// goformation drop or leave unresolved (Globals, !Ref and !GetAtt targets,
// the SQS event's FunctionResponseTypes) are interpreted here.
package infra
