// Package dynamo is ceb179's adapter for Amazon DynamoDB. It stores customs
// requests and their pipeline state in the requests table, and payment
// records and certificates in the payments table (see docs/architecture.md
// for the keys), for every function that needs them.
package dynamo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/ceb179/ceb179"
)

// Tables names the tables the store uses.
type Tables struct {
	// Requests is the table of customs requests (env REQUESTS_TABLE).
	Requests string
	// Payments is the table of payment records and certificates (env PAYMENTS_TABLE).
	Payments string
}

// Store reads and writes ceb179's tables.
type Store struct {
	db        *dynamodb.Client
	tables    Tables
	retention time.Duration
}

// New returns a store over db. A retention shorter than ceb179.MinRetention is
// raised to ceb179.MinRetention; zero means ceb179.DefaultRetention.
func New(db *dynamodb.Client, tables Tables, retention time.Duration) *Store {
	if retention == 0 {
		retention = ceb179.DefaultRetention
	}
	retention = max(retention, ceb179.MinRetention)
	return &Store{db: db, tables: tables, retention: retention}
}

// Retention returns how long the store keeps what it writes.
func (s *Store) Retention() time.Duration { return s.retention }

// expiresAt is the TTL value, in epoch seconds, of an item about an event at t.
func (s *Store) expiresAt(t time.Time) int64 {
	return t.Add(s.retention).Unix()
}

// conditionFailed reports whether err is a failed condition on a write.
func conditionFailed(err error) (*types.ConditionalCheckFailedException, bool) {
	var ccf *types.ConditionalCheckFailedException
	ok := errors.As(err, &ccf)
	return ccf, ok
}

// putNew writes in.Item if in.ConditionExpression holds. When it does not,
// it decodes the item that stood in the way into old (taken from the error
// where the service returns it, else read consistently under key) and
// reports created false.
func putNew[T any](ctx context.Context, s *Store, in *dynamodb.PutItemInput, key map[string]types.AttributeValue, old *T) (created bool, err error) {
	in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	_, err = s.db.PutItem(ctx, in)
	if err == nil {
		return true, nil
	}
	ccf, ok := conditionFailed(err)
	if !ok {
		return false, err
	}
	item := ccf.Item
	if len(item) == 0 {
		if item, err = s.getItem(ctx, aws.ToString(in.TableName), key); err != nil {
			return false, err
		}
	}
	return false, attributevalue.UnmarshalMap(item, old)
}

// get reads the item under key consistently, decodes it as an I and
// returns conv of it; what names the item in errors. A missing item is
// ceb179.ErrNotFound, wrapped.
func get[I, T any](ctx context.Context, s *Store, table string, key map[string]types.AttributeValue, what string, conv func(I) T) (T, error) {
	var zero T
	item, err := s.getItem(ctx, table, key)
	if err != nil {
		return zero, fmt.Errorf("get %s: %w", what, err)
	}
	var it I
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return zero, fmt.Errorf("decode %s: %w", what, err)
	}
	return conv(it), nil
}

// query returns conv of every item in finds, decoded as I, reading page
// by page; what names the items in errors.
func query[I, T any](ctx context.Context, s *Store, in *dynamodb.QueryInput, what string, conv func(I) T) ([]T, error) {
	var out []T
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", what, err)
		}
		for _, av := range page.Items {
			var it I
			if err := attributevalue.UnmarshalMap(av, &it); err != nil {
				return nil, fmt.Errorf("decode %s: %w", what, err)
			}
			out = append(out, conv(it))
		}
	}
	return out, nil
}

// put encodes v as an item and writes it to table, on condition cond when
// it is not empty; what names the item in errors.
func (s *Store) put(ctx context.Context, table string, v any, cond string, what string) error {
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", what, err)
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}
	if cond != "" {
		in.ConditionExpression = aws.String(cond)
	}
	if _, err := s.db.PutItem(ctx, in); err != nil {
		return fmt.Errorf("put %s: %w", what, err)
	}
	return nil
}

// getItem reads the item under key consistently, or returns ceb179.ErrNotFound.
func (s *Store) getItem(ctx context.Context, table string, key map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            key,
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	if len(out.Item) == 0 {
		return nil, ceb179.ErrNotFound
	}
	return out.Item, nil
}

// querySession is query over the items of one request whose sort key
// begins with prefix, read consistently, in sort key order.
func querySession[I, T any](ctx context.Context, s *Store, sessionID, prefix, what string, conv func(I) T) ([]T, error) {
	return query(ctx, s, &dynamodb.QueryInput{
		TableName:              aws.String(s.tables.Requests),
		KeyConditionExpression: aws.String("sessionID = :id AND begins_with(sk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":id": &types.AttributeValueMemberS{Value: sessionID},
			":p":  &types.AttributeValueMemberS{Value: prefix},
		},
		ConsistentRead: aws.Bool(true),
	}, what, conv)
}

// condition compiles the transition t, asked at now, into a condition
// expression on a request item: one clause for each state t may start
// from, with that state's guards (window sets the due time after a
// replay). It adds the values it uses to values; "#s" must name the
// state. A transition without from-states is an error: it would allow
// nothing, and a caller that passes one has lost its rule.
func condition(t ceb179.Transition, now time.Time, window time.Duration, values map[string]types.AttributeValue) (string, error) {
	if len(t.From) == 0 {
		return "", fmt.Errorf("%s: no states to start from", cmp.Or(t.Name, "transition"))
	}
	window = cmp.Or(window, ceb179.Window)
	at := func(key string, tm time.Time) string {
		values[key] = millis(tm)
		return key
	}
	// pastDue is "now is after the due time plus late": the deadline, and
	// the window after the last replay, are both before now - late.
	pastDue := func(key string, late time.Duration) string {
		before := now.Add(-late)
		return fmt.Sprintf("deadline < %s AND (attribute_not_exists(lastReplayAt) OR lastReplayAt < %s)",
			at(key, before), at(key+"r", before.Add(-window)))
	}
	clauses := make([]string, len(t.From))
	for i, f := range t.From {
		if unknown := f.Guard &^ (ceb179.LeaseEnded | ceb179.NeverReplayed | ceb179.PastDue | ceb179.PastRetries); unknown != 0 {
			return "", fmt.Errorf("%s from %s: guard %b is not known here", t.Name, f.State, unknown)
		}
		key := fmt.Sprintf(":tf%d", i)
		values[key] = &types.AttributeValueMemberS{Value: string(f.State)}
		parts := []string{"#s = " + key}
		if f.Guard&ceb179.LeaseEnded != 0 {
			parts = append(parts, "(attribute_not_exists(leaseUntil) OR leaseUntil <= "+at(":tnow", now)+")")
		}
		if f.Guard&ceb179.NeverReplayed != 0 {
			parts = append(parts, "attribute_not_exists(replays)")
		}
		if f.Guard&ceb179.PastDue != 0 {
			parts = append(parts, pastDue(":tdue", 0))
		}
		if f.Guard&ceb179.PastRetries != 0 {
			parts = append(parts, pastDue(":tretry", ceb179.StuckAfter))
		}
		clauses[i] = "(" + strings.Join(parts, " AND ") + ")"
	}
	return "(" + strings.Join(clauses, " OR ") + ")", nil
}

// stateIn returns the condition "#s IN (:f0, :f1, ...)" for states (the
// root's FinalStates) and adds their values to values.
func stateIn(values map[string]types.AttributeValue, states []ceb179.State) string {
	keys := make([]string, len(states))
	for i, st := range states {
		keys[i] = fmt.Sprintf(":f%d", i)
		values[keys[i]] = &types.AttributeValueMemberS{Value: string(st)}
	}
	return "#s IN (" + strings.Join(keys, ", ") + ")"
}
