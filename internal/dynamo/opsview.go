package dynamo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ceb179/ceb179"
)

// Names of the requests table's global secondary indexes.
const (
	// IndexByDay is partitioned by day (yyyy-mm-dd, China) and sorted by receivedAt.
	IndexByDay = "byDay"
	// IndexByOrder is partitioned by orderNo and sorted by receivedAt.
	IndexByOrder = "byOrder"
)

// maxPages bounds the pages one operator query reads (a day of a million
// requests is far below it).
const maxPages = 100_000

// viewItem is the request item with every attribute operators read.
type viewItem struct {
	uploadItem
	Replays       int    `dynamodbav:"replays,omitempty"`
	LastReplayAt  int64  `dynamodbav:"lastReplayAt,omitempty"`
	LastReplayBy  string `dynamodbav:"lastReplayBy,omitempty"`
	LastReplayWhy string `dynamodbav:"lastReplayWhy,omitempty"`
	Settles       int    `dynamodbav:"settles,omitempty"`
	LastSettleAt  int64  `dynamodbav:"lastSettleAt,omitempty"`
	LastSettleWhy string `dynamodbav:"lastSettleWhy,omitempty"`
}

func (it viewItem) view() ceb179.RequestView {
	c := it.claim()
	v := ceb179.RequestView{Request: c.Request, LastAttemptAt: c.LastAttemptAt, LeaseOwner: c.Owner, LeaseUntil: c.LeaseUntil,
		Replays: it.Replays, LastReplayBy: it.LastReplayBy, LastReplayWhy: it.LastReplayWhy,
		Settles: it.Settles, LastSettleWhy: it.LastSettleWhy}
	if it.LastReplayAt > 0 {
		v.LastReplayAt = time.UnixMilli(it.LastReplayAt)
	}
	if it.LastSettleAt > 0 {
		v.LastSettleAt = time.UnixMilli(it.LastSettleAt)
	}
	return v
}

func decodeView(av map[string]types.AttributeValue) (ceb179.RequestView, error) {
	var it viewItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return ceb179.RequestView{}, err
	}
	return it.view(), nil
}

// GetRequestView returns the request item of sessionID as operators see
// it, or ceb179.ErrNotFound (wrapped).
func (s *Store) GetRequestView(ctx context.Context, sessionID string) (ceb179.RequestView, error) {
	return get(ctx, s, s.tables.Requests, requestKey(sessionID), "request "+sessionID, viewItem.view)
}

// RequestsOfDay calls fn with every request received on day (yyyy-mm-dd,
// China time), oldest first, reading the byDay index page by page. It stops
// at fn's first error.
func (s *Store) RequestsOfDay(ctx context.Context, day string, fn func(ceb179.RequestView) error) error {
	return s.queryIndex(ctx, IndexByDay, "#k = :v", map[string]string{"#k": "day"}, day, fn)
}

// RequestsOfOrder returns every request customs made for orderNo, oldest
// first (byOrder index).
func (s *Store) RequestsOfOrder(ctx context.Context, orderNo string) ([]ceb179.RequestView, error) {
	var out []ceb179.RequestView
	err := s.queryIndex(ctx, IndexByOrder, "orderNo = :v", nil, orderNo, func(v ceb179.RequestView) error {
		out = append(out, v)
		return nil
	})
	return out, err
}

func (s *Store) queryIndex(ctx context.Context, index, cond string, names map[string]string, value string, fn func(ceb179.RequestView) error) error {
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:                 aws.String(s.tables.Requests),
		IndexName:                 aws.String(index),
		KeyConditionExpression:    aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: value}},
	})
	for pages := 0; p.HasMorePages(); pages++ {
		if pages >= maxPages {
			return fmt.Errorf("query %s %s: more than %d pages", index, value, maxPages)
		}
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("query %s %s: %w", index, value, err)
		}
		for _, av := range page.Items {
			if sk, ok := av["sk"].(*types.AttributeValueMemberS); ok && sk.Value != skRequest {
				continue
			}
			v, err := decodeView(av)
			if err != nil {
				return fmt.Errorf("decode request in %s %s: %w", index, value, err)
			}
			if err := fn(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// batchGetMax is BatchGetItem's limit of keys per call.
const batchGetMax = 100

// EbpCodes returns the ebpCode of the pending upload of each of
// sessionIDs that has one (sessions that were never assembled have none),
// reading only that attribute, 100 keys per call.
func (s *Store) EbpCodes(ctx context.Context, sessionIDs []string) (map[string]string, error) {
	out := make(map[string]string, len(sessionIDs))
	for start := 0; start < len(sessionIDs); start += batchGetMax {
		seen := map[string]bool{}
		var keys []map[string]types.AttributeValue
		for _, id := range sessionIDs[start:min(start+batchGetMax, len(sessionIDs))] {
			if !seen[id] {
				seen[id] = true
				keys = append(keys, pendingKey(id))
			}
		}
		req := map[string]types.KeysAndAttributes{s.tables.Requests: {
			Keys:                 keys,
			ProjectionExpression: aws.String("sessionID, ebpCode"),
		}}
		for try := 0; len(req) > 0; try++ {
			if try >= 10 {
				return nil, errors.New("batch get ebpCodes: keys still unprocessed after 10 tries")
			}
			if try > 0 {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(time.Duration(try*50) * time.Millisecond):
				}
			}
			res, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("batch get ebpCodes: %w", err)
			}
			for _, av := range res.Responses[s.tables.Requests] {
				var it struct {
					SessionID string `dynamodbav:"sessionID"`
					EbpCode   string `dynamodbav:"ebpCode"`
				}
				if err := attributevalue.UnmarshalMap(av, &it); err != nil {
					return nil, fmt.Errorf("decode ebpCode: %w", err)
				}
				out[it.SessionID] = it.EbpCode
			}
			req = res.UnprocessedKeys
		}
	}
	return out, nil
}

// BeginReplay resets the request of r.SessionID for a replay, in one
// conditional write: state RECEIVED, any upload lease removed, the replay
// counted (replays + 1) and recorded (lastReplayAt, lastReplayBy,
// lastReplayWhy, and as reason), and the request back in the open index,
// where the settler finds it whatever day it was received. The condition
// is the root's ceb179.Replayable(r.Force) asked at r.At; when it fails,
// BeginReplay returns the request as found and the root's refusal
// (ceb179.ErrRefused, wrapped). Otherwise it returns the request as stored
// after the write, whose Replays is the new replay number.
func (s *Store) BeginReplay(ctx context.Context, r ceb179.Replay) (ceb179.RequestView, error) {
	at := strconv.FormatInt(r.At.UnixMilli(), 10)
	values := map[string]types.AttributeValue{
		":received": &types.AttributeValueMemberS{Value: string(ceb179.StateReceived)},
		":zero":     &types.AttributeValueMemberN{Value: "0"},
		":one":      &types.AttributeValueMemberN{Value: "1"},
		":at":       &types.AttributeValueMemberN{Value: at},
		":by":       &types.AttributeValueMemberS{Value: r.By},
		":why":      &types.AttributeValueMemberS{Value: r.Why},
		":reason":   &types.AttributeValueMemberS{Value: "replay asked by " + r.By + ": " + r.Why},
	}
	replayable := ceb179.Replayable(r.Force)
	cond, err := condition(replayable, r.At, r.Window, values)
	if err != nil {
		return ceb179.RequestView{}, fmt.Errorf("replay %s: %w", r.SessionID, err)
	}
	cond = "attribute_exists(sessionID) AND " + cond
	open, _ := openClause(r.SessionID, ceb179.StateReceived, values)
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.tables.Requests),
		Key:       requestKey(r.SessionID),
		UpdateExpression: aws.String("SET #s = :received, #r = :reason, replays = if_not_exists(replays, :zero) + :one, " +
			"lastReplayAt = :at, lastReplayBy = :by, lastReplayWhy = :why, " + open + " REMOVE leaseOwner, leaseUntil"),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            map[string]string{"#s": "state", "#r": "reason"},
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if _, ok := conditionFailed(err); ok {
		found, gerr := s.GetRequestView(ctx, r.SessionID)
		if gerr != nil {
			return ceb179.RequestView{}, gerr
		}
		refusal := replayable.Refusal(found, r.At, cmp.Or(r.Window, ceb179.Window))
		if refusal == nil {
			// The request changed between the write and the read.
			refusal = fmt.Errorf("it changed while being replayed (now %s): %w", found.State, ceb179.ErrRefused)
		}
		return found, fmt.Errorf("replay %s: %w", r.SessionID, refusal)
	}
	if err != nil {
		return ceb179.RequestView{}, fmt.Errorf("replay %s: %w", r.SessionID, err)
	}
	v, err := decodeView(out.Attributes)
	if err != nil {
		return ceb179.RequestView{}, fmt.Errorf("decode request %s: %w", r.SessionID, err)
	}
	return v, nil
}
