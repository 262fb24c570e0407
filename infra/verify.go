package infra

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ceb179/ceb179/internal/awsenv"
)

// Report is the outcome of Verify.
type Report struct {
	// Differences lists every way the endpoint's resources differ from the
	// template. Empty means they match.
	Differences []string
	// NotReported lists template settings the endpoint does not report
	// back (or refused as unknown operations), so they could not be
	// compared.
	NotReported []string
}

// Verify describes the stack's tables and queues through c and compares
// them with the template: exactly the template's tables (keys, attribute
// types, indexes, billing mode, TTL, point-in-time recovery) and queues
// (attributes, redrive policy), and no resource of the template missing.
func Verify(ctx context.Context, s *Stack, c *awsenv.Clients) (*Report, error) {
	r := &Report{NotReported: append([]string(nil), s.Unsupported...)}
	tables, err := s.Template.Tables()
	if err != nil {
		return nil, err
	}
	if len(tables) != len(s.Tables) {
		r.Differences = append(r.Differences, fmt.Sprintf("stack has %d tables, template %d", len(s.Tables), len(tables)))
	}
	for _, t := range tables {
		if err := r.table(ctx, s, c, t); err != nil {
			return nil, err
		}
	}
	queues, err := s.Template.Queues()
	if err != nil {
		return nil, err
	}
	if len(queues) != len(s.Queues) {
		r.Differences = append(r.Differences, fmt.Sprintf("stack has %d queues, template %d", len(s.Queues), len(queues)))
	}
	for _, q := range queues {
		if err := r.queue(ctx, s, c, q); err != nil {
			return nil, err
		}
	}
	sort.Strings(r.Differences)
	sort.Strings(r.NotReported)
	return r, nil
}

// table compares the stack's table t with the template: its description,
// its TTL and its point-in-time recovery.
func (r *Report) table(ctx context.Context, s *Stack, c *awsenv.Clients, t TableSpec) error {
	name := s.Tables[t.LogicalID]
	if name == "" {
		r.Differences = append(r.Differences, t.LogicalID+": not provisioned")
		return nil
	}
	out, err := c.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("describe table %s: %w", name, err)
	}
	for _, d := range diffTable(t, out.Table) {
		r.Differences = append(r.Differences, t.LogicalID+": "+d)
	}
	if out.Table.BillingModeSummary == nil {
		r.NotReported = append(r.NotReported, t.LogicalID+".BillingMode")
	}
	ttl, err := c.DynamoDB.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("describe TTL of %s: %w", name, err)
	}
	gotTTL := ""
	if d := ttl.TimeToLiveDescription; d != nil && (d.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabled || d.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabling) {
		gotTTL = aws.ToString(d.AttributeName)
	}
	if gotTTL != t.TTLAttribute {
		r.Differences = append(r.Differences, fmt.Sprintf("%s: TTL attribute %q, template %q", t.LogicalID, gotTTL, t.TTLAttribute))
	}
	if slices.Contains(s.Unsupported, t.LogicalID+".PointInTimeRecoverySpecification") {
		return nil
	}
	cb, err := c.DynamoDB.DescribeContinuousBackups(ctx, &dynamodb.DescribeContinuousBackupsInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("describe continuous backups of %s: %w", name, err)
	}
	pitr := false
	if d := cb.ContinuousBackupsDescription; d != nil && d.PointInTimeRecoveryDescription != nil {
		pitr = d.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus == ddbtypes.PointInTimeRecoveryStatusEnabled
	}
	if pitr != t.PointInTimeRecovery {
		r.Differences = append(r.Differences, fmt.Sprintf("%s: point-in-time recovery %t, template %t", t.LogicalID, pitr, t.PointInTimeRecovery))
	}
	return nil
}

// queue compares the stack's queue q with the template.
func (r *Report) queue(ctx context.Context, s *Stack, c *awsenv.Clients, q QueueSpec) error {
	url := s.Queues[q.LogicalID]
	if url == "" {
		r.Differences = append(r.Differences, q.LogicalID+": not provisioned")
		return nil
	}
	out, err := c.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		return fmt.Errorf("queue attributes of %s: %w", url, err)
	}
	diffs, missing := diffQueue(s, q, out.Attributes)
	for _, d := range diffs {
		r.Differences = append(r.Differences, q.LogicalID+": "+d)
	}
	for _, m := range missing {
		r.NotReported = append(r.NotReported, q.LogicalID+"."+m)
	}
	return nil
}

// diffTable compares a table description with its spec: key schema,
// attribute definitions, indexes and, when reported, billing mode.
func diffTable(t TableSpec, d *ddbtypes.TableDescription) []string {
	var diffs []string
	if got := keyOf(d.KeySchema); got != t.Key {
		diffs = append(diffs, fmt.Sprintf("key %+v, template %+v", got, t.Key))
	}
	got := map[string]string{}
	for _, a := range d.AttributeDefinitions {
		got[aws.ToString(a.AttributeName)] = string(a.AttributeType)
	}
	if !mapsEqual(got, t.Attributes) {
		diffs = append(diffs, fmt.Sprintf("attributes %v, template %v", got, t.Attributes))
	}
	if d.BillingModeSummary != nil && string(d.BillingModeSummary.BillingMode) != t.BillingMode {
		diffs = append(diffs, fmt.Sprintf("billing mode %s, template %s", d.BillingModeSummary.BillingMode, t.BillingMode))
	}
	var idx []IndexSpec
	for _, g := range d.GlobalSecondaryIndexes {
		s := IndexSpec{Name: aws.ToString(g.IndexName), Key: keyOf(g.KeySchema)}
		if g.Projection != nil {
			s.Projection = string(g.Projection.ProjectionType)
			s.NonKeyAttributes = g.Projection.NonKeyAttributes
		}
		idx = append(idx, s)
	}
	sort.Slice(idx, func(i, j int) bool { return idx[i].Name < idx[j].Name })
	if render(idx) != render(t.Indexes) {
		diffs = append(diffs, fmt.Sprintf("indexes %s, template %s", render(idx), render(t.Indexes)))
	}
	return diffs
}

// render prints indexes canonically.
func render(idx []IndexSpec) string {
	parts := make([]string, 0, len(idx))
	for _, g := range idx {
		nk := append([]string(nil), g.NonKeyAttributes...)
		sort.Strings(nk)
		parts = append(parts, fmt.Sprintf("%s(%s,%s;%s%v)", g.Name, g.Key.Partition, g.Key.Sort, g.Projection, nk))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// keyOf converts a key schema.
func keyOf(ks []ddbtypes.KeySchemaElement) KeySpec {
	var k KeySpec
	for _, e := range ks {
		switch e.KeyType {
		case ddbtypes.KeyTypeHash:
			k.Partition = aws.ToString(e.AttributeName)
		case ddbtypes.KeyTypeRange:
			k.Sort = aws.ToString(e.AttributeName)
		}
	}
	return k
}

// diffQueue compares a queue's attributes with its spec. It returns the
// differences and the template attributes the endpoint did not report.
func diffQueue(s *Stack, q QueueSpec, got map[string]string) (diffs, missing []string) {
	names := make([]string, 0, len(q.Attributes))
	for k := range q.Attributes {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v, ok := got[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		if v != q.Attributes[k] {
			diffs = append(diffs, fmt.Sprintf("%s = %s, template %s", k, v, q.Attributes[k]))
		}
	}
	rp, ok := got["RedrivePolicy"]
	switch {
	case q.DeadLetterQueue == "" && ok && rp != "":
		diffs = append(diffs, "has a RedrivePolicy the template does not: "+rp)
	case q.DeadLetterQueue != "" && !ok:
		diffs = append(diffs, "has no RedrivePolicy")
	case q.DeadLetterQueue != "":
		arn, n, err := parseRedrive(rp)
		if err != nil {
			diffs = append(diffs, err.Error())
			break
		}
		if want := s.QueueARNs[q.DeadLetterQueue]; arn != want {
			diffs = append(diffs, fmt.Sprintf("dead-letter target %s, template %s (%s)", arn, q.DeadLetterQueue, want))
		}
		if n != q.MaxReceiveCount {
			diffs = append(diffs, fmt.Sprintf("maxReceiveCount %d, template %d", n, q.MaxReceiveCount))
		}
	}
	return diffs, missing
}

// mapsEqual compares two string maps.
func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
