package infra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/ceb179/ceb179/internal/awsenv"
)

// Options chooses the names and parameter values of a provisioned stack.
type Options struct {
	// Prefix is prepended to the logical ID to name every table, queue and
	// function (for example "t1x2-" gives "t1x2-RequestsTable"). It plays
	// the role of the CloudFormation stack name. Empty means "ceb179-".
	Prefix string
	// Parameters override the template's parameter defaults.
	Parameters map[string]string
	// AccountID is used in the ARNs of functions; "" means 000000000000.
	AccountID string
}

// Stack is what Provision created: resolved names, URLs and ARNs by
// logical ID.
type Stack struct {
	// Template is the template the stack was provisioned from.
	Template *Template
	// Prefix is the name prefix used.
	Prefix string
	// Region is the region of the clients used.
	Region string
	// AccountID is the account used in synthesised ARNs.
	AccountID string
	// Parameters are the parameter values used.
	Parameters map[string]string
	// Tables maps table logical IDs to table names.
	Tables map[string]string
	// TableARNs maps table logical IDs to table ARNs.
	TableARNs map[string]string
	// Queues maps queue logical IDs to queue URLs.
	Queues map[string]string
	// QueueARNs maps queue logical IDs to queue ARNs.
	QueueARNs map[string]string
	// Functions maps function logical IDs to the names the functions get
	// (Provision does not create functions; see internal/dev/lambdatest).
	Functions map[string]string
	// Unsupported lists template settings the endpoint refused as unknown
	// operations (for example point-in-time recovery on an emulator).
	Unsupported []string
}

// Provision creates the template's tables and queues through c, named
// opts.Prefix + logical ID (or + the template's fixed name). Resources that
// already exist are kept when they match the template, which makes
// Provision safe to run again against persisted state. Every other
// resource type (functions, APIs, roles, log groups, alarms, the
// dashboard, SNS topics) is left to CloudFormation and not created.
func Provision(ctx context.Context, tpl *Template, c *awsenv.Clients, opts Options) (*Stack, error) {
	params, err := tpl.ParameterValues(opts.Parameters)
	if err != nil {
		return nil, err
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = defaultStackPrefix + "-"
	}
	account := opts.AccountID
	if account == "" {
		account = defaultAccountID
	}
	s := &Stack{
		Template:   tpl,
		Prefix:     prefix,
		Region:     c.Config.Region,
		AccountID:  account,
		Parameters: params,
		Tables:     map[string]string{},
		TableARNs:  map[string]string{},
		Queues:     map[string]string{},
		QueueARNs:  map[string]string{},
		Functions:  map[string]string{},
	}
	for _, id := range tpl.IDs(TypeFunction) {
		s.Functions[id] = prefix + id
	}
	tables, err := tpl.Tables()
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		if err := s.createTable(ctx, c.DynamoDB, t); err != nil {
			return nil, err
		}
	}
	queues, err := tpl.Queues()
	if err != nil {
		return nil, err
	}
	if err := s.createQueues(ctx, c.SQS, queues); err != nil {
		return nil, err
	}
	return s, nil
}

// Table returns the name of the table with the logical ID id, or "".
func (s *Stack) Table(id string) string { return s.Tables[id] }

// Queue returns the URL of the queue with the logical ID id, or "".
func (s *Stack) Queue(id string) string { return s.Queues[id] }

// Function returns the name of the function with the logical ID id, or "".
func (s *Stack) Function(id string) string { return s.Functions[id] }

// FunctionEnv returns the environment variables the template gives the
// function id (Globals merged), resolved against the stack.
func (s *Stack) FunctionEnv(id string) (map[string]string, error) {
	fns, err := s.Template.Functions()
	if err != nil {
		return nil, err
	}
	for _, f := range fns {
		if f.LogicalID != id {
			continue
		}
		env := map[string]string{}
		for name, e := range f.Environment {
			v, err := e.Resolve(s)
			if err != nil {
				return nil, fmt.Errorf("function %s variable %s: %w", id, name, err)
			}
			env[name] = v
		}
		return env, nil
	}
	return nil, fmt.Errorf("function %s is not in the template", id)
}

// Env returns the union of every function's environment plus
// UPLOAD_FUNCTION, the upload function's name that hsmbridge reads.
func (s *Stack) Env() (map[string]string, error) {
	env := map[string]string{}
	for _, id := range s.Template.IDs(TypeFunction) {
		fe, err := s.FunctionEnv(id)
		if err != nil {
			return nil, err
		}
		for k, v := range fe {
			env[k] = v
		}
	}
	if name, ok := s.Functions["UploadFunction"]; ok {
		env["UPLOAD_FUNCTION"] = name
	}
	return env, nil
}

// Ref resolves Ref name against the stack (Resolver).
func (s *Stack) Ref(name string) (string, error) {
	switch name {
	case pseudoRegion:
		return s.Region, nil
	case pseudoAccountID:
		return s.AccountID, nil
	case pseudoStackName:
		return strings.TrimSuffix(s.Prefix, "-"), nil
	case pseudoURLSuffix:
		return "amazonaws.com", nil
	case pseudoPartition:
		return "aws", nil
	}
	if v, ok := s.Parameters[name]; ok {
		return v, nil
	}
	if v, ok := s.Tables[name]; ok {
		return v, nil
	}
	if v, ok := s.Queues[name]; ok {
		return v, nil
	}
	if v, ok := s.Functions[name]; ok {
		return v, nil
	}
	return "", fmt.Errorf("cannot resolve !Ref %s", name)
}

// GetAtt resolves Fn::GetAtt id.att against the stack (Resolver).
func (s *Stack) GetAtt(id, att string) (string, error) {
	switch {
	case att == "Arn" && s.TableARNs[id] != "":
		return s.TableARNs[id], nil
	case att == "Arn" && s.QueueARNs[id] != "":
		return s.QueueARNs[id], nil
	case att == "QueueUrl" && s.Queues[id] != "":
		return s.Queues[id], nil
	case att == "QueueName" && s.QueueARNs[id] != "":
		return s.QueueARNs[id][strings.LastIndex(s.QueueARNs[id], ":")+1:], nil
	case att == "Arn" && s.Functions[id] != "":
		return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", s.Region, s.AccountID, s.Functions[id]), nil
	}
	return "", fmt.Errorf("cannot resolve !GetAtt %s.%s", id, att)
}

var _ Resolver = (*Stack)(nil)

// tableName returns the name a table gets.
func (s *Stack) tableName(t TableSpec) string {
	if t.TableName != "" {
		return s.Prefix + t.TableName
	}
	return s.Prefix + t.LogicalID
}

// createTable creates one table (or accepts a matching existing one), then
// sets its TTL and point-in-time recovery.
func (s *Stack) createTable(ctx context.Context, db *dynamodb.Client, t TableSpec) error {
	name := s.tableName(t)
	_, err := db.CreateTable(ctx, createTableInput(name, t))
	var inUse *ddbtypes.ResourceInUseException
	existed := errors.As(err, &inUse)
	if err != nil && !existed {
		return fmt.Errorf("create table %s (%s): %w", t.LogicalID, name, err)
	}
	desc, err := waitTableActive(ctx, db, name)
	if err != nil {
		return fmt.Errorf("table %s (%s): %w", t.LogicalID, name, err)
	}
	s.Tables[t.LogicalID] = name
	s.TableARNs[t.LogicalID] = aws.ToString(desc.TableArn)
	if existed {
		if diffs := diffTable(t, desc); len(diffs) > 0 {
			return fmt.Errorf("table %s (%s) exists and differs from the template: %s", t.LogicalID, name, strings.Join(diffs, "; "))
		}
	}
	if t.TTLAttribute != "" {
		if err := enableTTL(ctx, db, name, t.TTLAttribute); err != nil {
			return err
		}
	}
	if t.PointInTimeRecovery {
		_, err := db.UpdateContinuousBackups(ctx, &dynamodb.UpdateContinuousBackupsInput{
			TableName: aws.String(name),
			PointInTimeRecoverySpecification: &ddbtypes.PointInTimeRecoverySpecification{
				PointInTimeRecoveryEnabled: aws.Bool(true),
			},
		})
		switch {
		case isUnknownOperation(err):
			s.unsupported(t.LogicalID + ".PointInTimeRecoverySpecification")
		case err != nil:
			return fmt.Errorf("enable point-in-time recovery on %s: %w", name, err)
		}
	}
	return nil
}

// createTableInput is the CreateTable call that makes table t as name.
func createTableInput(name string, t TableSpec) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:                 aws.String(name),
		BillingMode:               ddbtypes.BillingMode(t.BillingMode),
		KeySchema:                 keySchema(t.Key),
		DeletionProtectionEnabled: aws.Bool(t.DeletionProtection),
	}
	attrs := make([]string, 0, len(t.Attributes))
	for a := range t.Attributes {
		attrs = append(attrs, a)
	}
	sort.Strings(attrs)
	for _, a := range attrs {
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{
			AttributeName: aws.String(a),
			AttributeType: ddbtypes.ScalarAttributeType(t.Attributes[a]),
		})
	}
	for _, g := range t.Indexes {
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, ddbtypes.GlobalSecondaryIndex{
			IndexName: aws.String(g.Name),
			KeySchema: keySchema(g.Key),
			Projection: &ddbtypes.Projection{
				ProjectionType:   ddbtypes.ProjectionType(g.Projection),
				NonKeyAttributes: g.NonKeyAttributes,
			},
		})
	}
	return in
}

// enableTTL turns on the expiry of table name's items by attribute attr,
// unless it is on already.
func enableTTL(ctx context.Context, db *dynamodb.Client, name, attr string) error {
	ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("describe TTL of %s: %w", name, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil && d.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabled && aws.ToString(d.AttributeName) == attr {
		return nil
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{
			AttributeName: aws.String(attr),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s: %w", name, err)
	}
	return nil
}

// unsupported records a setting the endpoint does not implement.
func (s *Stack) unsupported(what string) {
	for _, u := range s.Unsupported {
		if u == what {
			return
		}
	}
	s.Unsupported = append(s.Unsupported, what)
}

// isUnknownOperation reports whether err says the endpoint does not
// implement the operation at all.
func isUnknownOperation(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode() {
	case "UnknownOperationException", "UnknownOperation", "InvalidAction", "NotImplemented", "InternalFailure":
		return true
	}
	return strings.Contains(strings.ToLower(api.ErrorMessage()), "unknown operation") ||
		strings.Contains(strings.ToLower(api.ErrorMessage()), "not supported") ||
		strings.Contains(strings.ToLower(api.ErrorMessage()), "not implemented")
}

// waitTableActive waits until the table is ACTIVE and returns its
// description.
func waitTableActive(ctx context.Context, db *dynamodb.Client, name string) (*ddbtypes.TableDescription, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	delay := 50 * time.Millisecond
	for {
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("describe: %w", err)
		}
		if out.Table.TableStatus == ddbtypes.TableStatusActive {
			return out.Table, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for ACTIVE: %w", ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// keySchema converts a KeySpec.
func keySchema(k KeySpec) []ddbtypes.KeySchemaElement {
	ks := []ddbtypes.KeySchemaElement{{AttributeName: aws.String(k.Partition), KeyType: ddbtypes.KeyTypeHash}}
	if k.Sort != "" {
		ks = append(ks, ddbtypes.KeySchemaElement{AttributeName: aws.String(k.Sort), KeyType: ddbtypes.KeyTypeRange})
	}
	return ks
}

// queueNameRE is what SQS accepts as a queue name.
var queueNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}(\.fifo)?$`)

// queueName returns the name a queue gets.
func (s *Stack) queueName(q QueueSpec) string {
	base := q.LogicalID
	if q.QueueName != "" {
		base = q.QueueName
	}
	name := s.Prefix + base
	if q.Attributes["FifoQueue"] == "true" && !strings.HasSuffix(name, ".fifo") {
		name += ".fifo"
	}
	return name
}

// createQueues creates the queues, dead-letter queues first.
func (s *Stack) createQueues(ctx context.Context, sq *sqs.Client, queues []QueueSpec) error {
	pending := append([]QueueSpec(nil), queues...)
	for len(pending) > 0 {
		var next []QueueSpec
		for _, q := range pending {
			if q.DeadLetterQueue != "" && s.QueueARNs[q.DeadLetterQueue] == "" {
				next = append(next, q)
				continue
			}
			if err := s.createQueue(ctx, sq, q); err != nil {
				return err
			}
		}
		if len(next) == len(pending) {
			var ids []string
			for _, q := range next {
				ids = append(ids, q.LogicalID+"→"+q.DeadLetterQueue)
			}
			return fmt.Errorf("queues with unknown dead-letter targets: %s", strings.Join(ids, ", "))
		}
		pending = next
	}
	return nil
}

// createQueue creates one queue. CreateQueue is idempotent for equal
// attributes; SQS refuses different ones.
func (s *Stack) createQueue(ctx context.Context, sq *sqs.Client, q QueueSpec) error {
	name := s.queueName(q)
	if !queueNameRE.MatchString(name) {
		return fmt.Errorf("queue %s: name %q is not a valid SQS queue name", q.LogicalID, name)
	}
	attrs, err := s.queueAttributes(q)
	if err != nil {
		return err
	}
	out, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return fmt.Errorf("create queue %s (%s): %w", q.LogicalID, name, err)
	}
	url := aws.ToString(out.QueueUrl)
	got, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return fmt.Errorf("queue %s (%s): %w", q.LogicalID, name, err)
	}
	s.Queues[q.LogicalID] = url
	s.QueueARNs[q.LogicalID] = got.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	return nil
}

// queueAttributes returns the CreateQueue attributes of q, with the
// redrive target resolved.
func (s *Stack) queueAttributes(q QueueSpec) (map[string]string, error) {
	attrs := map[string]string{}
	for k, v := range q.Attributes {
		attrs[k] = v
	}
	if q.DeadLetterQueue != "" {
		p, err := json.Marshal(struct {
			DeadLetterTargetArn string `json:"deadLetterTargetArn"`
			MaxReceiveCount     int    `json:"maxReceiveCount"`
		}{s.QueueARNs[q.DeadLetterQueue], q.MaxReceiveCount})
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", q.LogicalID, err)
		}
		attrs["RedrivePolicy"] = string(p)
	}
	return attrs, nil
}

// parseRedrive reads a RedrivePolicy attribute; maxReceiveCount may be a
// number or a string.
func parseRedrive(s string) (arn string, maxReceive int, err error) {
	var p struct {
		DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
		MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return "", 0, fmt.Errorf("RedrivePolicy %q: %w", s, err)
	}
	n := strings.Trim(string(p.MaxReceiveCount), `"`)
	maxReceive, err = strconv.Atoi(n)
	if err != nil {
		return "", 0, fmt.Errorf("RedrivePolicy %q: maxReceiveCount: %w", s, err)
	}
	return p.DeadLetterTargetArn, maxReceive, nil
}
