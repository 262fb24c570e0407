package dynamo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ceb179/ceb179"
)

// The open index holds the requests that are not final, and nothing else:
// a request item carries the attribute openShard only while its state is
// not final (ceb179.State.Final), and every write that moves it to a final
// state removes the attribute in the same write. The index is partitioned
// by openShard (OpenShards values, so that a burst of writes spreads over
// several partitions) and sorted by deadline, so the settler reads what is
// open, oldest deadline first, however long the history of the table.
const (
	// IndexOpen is the name of the open index.
	IndexOpen = "openByDeadline"
	// attrOpen is the attribute that puts a request in the open index.
	attrOpen = "openShard"
	// OpenShards is how many partitions the open index spreads over.
	OpenShards = 8
)

// openShardOf returns the open index partition of a session.
func openShardOf(sessionID string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(sessionID))
	return strconv.Itoa(int(h.Sum32() % OpenShards))
}

// openShardFor returns the openShard value of a request item in state st:
// its partition while st is not final, "" (no attribute) when it is.
func openShardFor(sessionID string, st ceb179.State) string {
	if st == "" || !st.Final() {
		return openShardOf(sessionID)
	}
	return ""
}

// openClause returns what an update of a request item moving to state to
// adds to keep the open index right: a SET action ("openShard = :open",
// its value added to values) while to is not final, or a REMOVE action
// ("openShard") when it is. Exactly one of the two is not empty.
func openClause(sessionID string, to ceb179.State, values map[string]types.AttributeValue) (set, remove string) {
	if to.Final() {
		return "", attrOpen
	}
	values[":open"] = &types.AttributeValueMemberS{Value: openShardOf(sessionID)}
	return attrOpen + " = :open", ""
}

// updateExpr joins SET and REMOVE actions (empty ones left out) into an
// update expression.
func updateExpr(set, remove []string) string {
	set, remove = slices.DeleteFunc(set, isEmpty), slices.DeleteFunc(remove, isEmpty)
	var parts []string
	if len(set) > 0 {
		parts = append(parts, "SET "+strings.Join(set, ", "))
	}
	if len(remove) > 0 {
		parts = append(parts, "REMOVE "+strings.Join(remove, ", "))
	}
	return strings.Join(parts, " ")
}

func isEmpty(s string) bool { return s == "" }

// OpenPage is the size of one page read from the open index.
const OpenPage = 500

// OpenRequests calls fn with the requests that are not final and whose
// deadline (customs' deadline, kept on the request item through replays)
// is after from and not after until, reading the open index shard by
// shard, each shard oldest deadline first. It reads at most limit items in
// all (limit/OpenShards from each shard, rounded up, in pages of at most
// OpenPage) and reports whether it stopped there with items left. The
// index is read with eventual consistency: a request seen may have moved
// on since, so what fn does must be conditional. An error of fn stops the
// reading and is returned.
func (s *Store) OpenRequests(ctx context.Context, from, until time.Time, limit int, fn func(ceb179.RequestView) error) (truncated bool, err error) {
	if !until.After(from) || limit <= 0 {
		return false, nil
	}
	perShard := (limit + OpenShards - 1) / OpenShards
	for shard := range OpenShards {
		more, err := s.openShard(ctx, strconv.Itoa(shard), from, until, perShard, fn)
		if err != nil {
			return truncated, err
		}
		truncated = truncated || more
	}
	return truncated, nil
}

func (s *Store) openShard(ctx context.Context, shard string, from, until time.Time, budget int, fn func(ceb179.RequestView) error) (bool, error) {
	in := &dynamodb.QueryInput{
		TableName:                aws.String(s.tables.Requests),
		IndexName:                aws.String(IndexOpen),
		KeyConditionExpression:   aws.String("#o = :shard AND deadline BETWEEN :from AND :until"),
		ExpressionAttributeNames: map[string]string{"#o": attrOpen},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":shard": &types.AttributeValueMemberS{Value: shard},
			":from":  millis(from.Add(time.Millisecond)),
			":until": millis(until),
		},
	}
	for budget > 0 {
		in.Limit = aws.Int32(int32(min(budget, OpenPage)))
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return false, fmt.Errorf("query %s shard %s: %w", IndexOpen, shard, err)
		}
		budget -= int(max(page.ScannedCount, int32(len(page.Items))))
		for _, av := range page.Items {
			v, err := decodeView(av)
			if err != nil {
				return false, fmt.Errorf("decode request in %s: %w", IndexOpen, err)
			}
			if err := fn(v); err != nil {
				return false, err
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return false, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	return true, nil
}

// Open index backfill. Request items written before the open index
// existed lack openShard; the settler puts the open ones among them into
// the index once, scanning the byDay index day by day with a bounded
// budget per run and keeping its progress in a marker item. A request item
// also gets openShard on its next state change that is not final.
const (
	backfillKey = "MIGRATION#openIndex"
	skBackfill  = "MIGRATION"
)

// backfillItem is the marker item of the backfill.
type backfillItem struct {
	SessionID string `dynamodbav:"sessionID"`
	SK        string `dynamodbav:"sk"`
	// Done says every day has been scanned.
	Done bool `dynamodbav:"done"`
	// Day is the day being scanned; Last and LastAt the last request of it
	// scanned ("" and 0: none yet); Until the last day to scan. (Not
	// "day": the marker stays out of the byDay index.)
	Day    string `dynamodbav:"scanDay"`
	Last   string `dynamodbav:"last"`
	LastAt int64  `dynamodbav:"lastAt"`
	Until  string `dynamodbav:"scanUntil"`
	// Indexed counts the requests put into the open index so far.
	Indexed int `dynamodbav:"indexed"`
}

// BackfillOpen puts into the open index the request items that are not
// final and lack openShard, scanning the byDay index from day first to
// day last (yyyy-mm-dd, China) and reading at most limit items in this
// call; its progress is kept in a marker item, so the next call goes on
// where this one stopped. The days are fixed by the first call; once they
// are scanned every later call reads the marker only. It returns whether
// every day is scanned and how many requests this call indexed (the
// marker keeps the total, as indexed).
func (s *Store) BackfillOpen(ctx context.Context, first, last string, limit int) (done bool, indexed int, err error) {
	key := map[string]types.AttributeValue{
		"sessionID": &types.AttributeValueMemberS{Value: backfillKey},
		"sk":        &types.AttributeValueMemberS{Value: skBackfill},
	}
	var m backfillItem
	item, err := s.getItem(ctx, s.tables.Requests, key)
	switch {
	case errors.Is(err, ceb179.ErrNotFound):
		m = backfillItem{SessionID: backfillKey, SK: skBackfill, Day: first, Until: last}
	case err != nil:
		return false, 0, fmt.Errorf("read open index backfill: %w", err)
	default:
		if err := attributevalue.UnmarshalMap(item, &m); err != nil {
			return false, 0, fmt.Errorf("decode open index backfill: %w", err)
		}
	}
	for read := 1; !m.Done && read < limit; {
		in := &dynamodb.QueryInput{
			TableName:                 aws.String(s.tables.Requests),
			IndexName:                 aws.String(IndexByDay),
			KeyConditionExpression:    aws.String("#d = :d"),
			ExpressionAttributeNames:  map[string]string{"#d": "day"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":d": &types.AttributeValueMemberS{Value: m.Day}},
			// DynamoDB ends a page at 1 MB anyway.
			Limit: aws.Int32(int32(limit - read)),
		}
		if m.Last != "" {
			in.ExclusiveStartKey = map[string]types.AttributeValue{
				"day":        &types.AttributeValueMemberS{Value: m.Day},
				"receivedAt": &types.AttributeValueMemberN{Value: strconv.FormatInt(m.LastAt, 10)},
				"sessionID":  &types.AttributeValueMemberS{Value: m.Last},
				"sk":         &types.AttributeValueMemberS{Value: skRequest},
			}
		}
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return false, indexed, fmt.Errorf("backfill open index, day %s: %w", m.Day, err)
		}
		read += int(max(page.ScannedCount, int32(len(page.Items))))
		for _, av := range page.Items {
			var it requestItem
			if err := attributevalue.UnmarshalMap(av, &it); err != nil {
				return false, indexed, fmt.Errorf("decode request in %s %s: %w", IndexByDay, m.Day, err)
			}
			if it.SK != skRequest {
				continue
			}
			m.Last, m.LastAt = it.SessionID, it.ReceivedAt
			if it.OpenShard != "" || ceb179.State(it.State).Final() {
				continue
			}
			ok, err := s.indexOpen(ctx, it.SessionID)
			if err != nil {
				return false, indexed, err
			}
			if ok {
				m.Indexed++
				indexed++
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			if m.Day >= m.Until {
				m.Done = true
			} else {
				m.Day, m.Last, m.LastAt = nextDay(m.Day), "", 0
			}
		}
		if err := s.saveBackfill(ctx, key, m); err != nil {
			return false, indexed, err
		}
	}
	return m.Done, indexed, nil
}

// indexOpen gives a request that is not final and lacks openShard its
// open index partition. It reports false when the request is final or
// already indexed by now.
func (s *Store) indexOpen(ctx context.Context, sessionID string) (bool, error) {
	values := map[string]types.AttributeValue{}
	set, _ := openClause(sessionID, ceb179.StateReceived, values)
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(s.tables.Requests),
		Key:              requestKey(sessionID),
		UpdateExpression: aws.String("SET " + set),
		ConditionExpression: aws.String("attribute_exists(sessionID) AND attribute_not_exists(" + attrOpen + ") AND NOT (" +
			stateIn(values, ceb179.FinalStates) + ")"),
		ExpressionAttributeNames:  map[string]string{"#s": "state"},
		ExpressionAttributeValues: values,
	})
	if _, ok := conditionFailed(err); ok {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("index open request %s: %w", sessionID, err)
	}
	return true, nil
}

// nextDay returns the calendar day after day (yyyy-mm-dd).
func nextDay(day string) string {
	t, err := time.ParseInLocation(time.DateOnly, day, ceb179.China)
	if err != nil {
		return "9999-12-31"
	}
	return ceb179.Day(t.AddDate(0, 0, 1))
}

// saveBackfill writes the backfill's progress to its marker item (with
// UpdateItem: the settler may update items, never put them).
func (s *Store) saveBackfill(ctx context.Context, key map[string]types.AttributeValue, m backfillItem) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.tables.Requests),
		Key:                      key,
		UpdateExpression:         aws.String("SET done = :done, scanDay = :day, #l = :last, lastAt = :lastAt, scanUntil = :until, indexed = :n"),
		ExpressionAttributeNames: map[string]string{"#l": "last"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":done":   &types.AttributeValueMemberBOOL{Value: m.Done},
			":day":    &types.AttributeValueMemberS{Value: m.Day},
			":last":   &types.AttributeValueMemberS{Value: m.Last},
			":lastAt": &types.AttributeValueMemberN{Value: strconv.FormatInt(m.LastAt, 10)},
			":until":  &types.AttributeValueMemberS{Value: m.Until},
			":n":      &types.AttributeValueMemberN{Value: strconv.Itoa(m.Indexed)},
		},
	})
	if err != nil {
		return fmt.Errorf("save open index backfill: %w", err)
	}
	return nil
}
