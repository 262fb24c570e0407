package dynamo

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ceb179/ceb179"
)

// skRequest is the sort key of a request's own item.
const skRequest = "REQUEST"

// requestItem is the stored form of a ceb179.Request.
type requestItem struct {
	SessionID   string `dynamodbav:"sessionID"`
	SK          string `dynamodbav:"sk"`
	OrderNo     string `dynamodbav:"orderNo"`
	ServiceTime int64  `dynamodbav:"serviceTime"`
	ReceivedAt  int64  `dynamodbav:"receivedAt"`
	SourceIP    string `dynamodbav:"sourceIP"`
	Deadline    int64  `dynamodbav:"deadline"`
	Day         string `dynamodbav:"day"`
	State       string `dynamodbav:"state"`
	Enqueued    bool   `dynamodbav:"enqueued"`
	Reason      string `dynamodbav:"reason,omitempty"`
	Priority    int    `dynamodbav:"priority,omitempty"`
	ExpiresAt   int64  `dynamodbav:"expiresAt"`
	// OpenShard puts the item in the open index while the request is not
	// final (see open.go).
	OpenShard string `dynamodbav:"openShard,omitempty"`
}

func (it requestItem) request() ceb179.Request {
	return ceb179.Request{
		SessionID:   it.SessionID,
		OrderNo:     it.OrderNo,
		ServiceTime: it.ServiceTime,
		ReceivedAt:  time.UnixMilli(it.ReceivedAt),
		SourceIP:    it.SourceIP,
		Deadline:    time.UnixMilli(it.Deadline),
		State:       ceb179.State(it.State),
		Enqueued:    it.Enqueued,
		Reason:      it.Reason,
		Priority:    ceb179.Priority(it.Priority),
	}
}

func requestKey(sessionID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"sessionID": &types.AttributeValueMemberS{Value: sessionID},
		"sk":        &types.AttributeValueMemberS{Value: skRequest},
	}
}

// CreateRequest records r unless a request with the same sessionID exists.
// It returns the stored request (r, or the earlier one) and whether r was
// new. A request that is not final goes into the open index.
func (s *Store) CreateRequest(ctx context.Context, r ceb179.Request) (ceb179.Request, bool, error) {
	if r.State == "" {
		r.State = ceb179.StateReceived
	}
	item, err := attributevalue.MarshalMap(requestItem{
		SessionID:   r.SessionID,
		SK:          skRequest,
		OrderNo:     r.OrderNo,
		ServiceTime: r.ServiceTime,
		ReceivedAt:  r.ReceivedAt.UnixMilli(),
		SourceIP:    r.SourceIP,
		Deadline:    r.Deadline.UnixMilli(),
		Day:         ceb179.Day(r.ReceivedAt),
		State:       string(r.State),
		Enqueued:    r.Enqueued,
		Priority:    int(r.Priority),
		ExpiresAt:   s.expiresAt(r.ReceivedAt),
		OpenShard:   openShardFor(r.SessionID, r.State),
	})
	if err != nil {
		return ceb179.Request{}, false, fmt.Errorf("encode request %s: %w", r.SessionID, err)
	}
	var old requestItem
	created, err := putNew(ctx, s, &dynamodb.PutItemInput{
		TableName:           aws.String(s.tables.Requests),
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(sessionID)"),
	}, requestKey(r.SessionID), &old)
	switch {
	case err != nil:
		return ceb179.Request{}, false, fmt.Errorf("put request %s: %w", r.SessionID, err)
	case created:
		return r, true, nil
	}
	return old.request(), false, nil
}

// GetRequest returns the request recorded under sessionID, or ceb179.ErrNotFound.
func (s *Store) GetRequest(ctx context.Context, sessionID string) (ceb179.Request, error) {
	return get(ctx, s, s.tables.Requests, requestKey(sessionID), "request "+sessionID, requestItem.request)
}

// MarkEnqueued records that the request was handed to the assemble queue.
func (s *Store) MarkEnqueued(ctx context.Context, sessionID string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.tables.Requests),
		Key:                 requestKey(sessionID),
		UpdateExpression:    aws.String("SET enqueued = :t"),
		ConditionExpression: aws.String("attribute_exists(sessionID)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":t": &types.AttributeValueMemberBOOL{Value: true},
		},
	})
	if _, ok := conditionFailed(err); ok {
		return fmt.Errorf("mark request %s enqueued: %w", sessionID, ceb179.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("mark request %s enqueued: %w", sessionID, err)
	}
	return nil
}

// Per-order daily counters live in the requests table under a key of their
// own. They carry no orderNo, day or receivedAt attribute, so they stay out
// of the byOrder and byDay indexes and out of every report.
const (
	orderDayPrefix = "ORDERDAY#"
	skOrderDay     = "ORDERDAY"
	// orderDayKeep is how long a counter outlives its day before TTL
	// removes it.
	orderDayKeep = 48 * time.Hour
)

// CountOrderRequest counts the customs request sessionID for orderNo on
// the China calendar day of at against a cap of limit, and reports whether
// it is one of the first limit requests of that order and day.
//
// One conditional write on the order's counter item adds sessionID to the
// set of requests within the cap (inCap) and one to their number
// (requests), only while that number is below limit and the set does not
// hold sessionID yet. Counting the same sessionID again (customs repeating
// it, ingest retrying, or the SDK repeating a write whose answer was lost)
// finds it in the set and changes nothing, so a request is counted once
// and always gets the same answer. A request over the cap writes nothing.
// The set holds at most limit sessionIDs.
func (s *Store) CountOrderRequest(ctx context.Context, orderNo, sessionID string, at time.Time, limit int) (bool, error) {
	day := ceb179.Day(at)
	key := map[string]types.AttributeValue{
		"sessionID": &types.AttributeValueMemberS{Value: orderDayPrefix + day + "#" + orderNo},
		"sk":        &types.AttributeValueMemberS{Value: skOrderDay},
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.tables.Requests),
		Key:                      key,
		UpdateExpression:         aws.String("ADD #n :one, inCap :ids SET expiresAt = if_not_exists(expiresAt, :exp)"),
		ConditionExpression:      aws.String("(attribute_not_exists(#n) OR #n < :cap) AND NOT contains(inCap, :id)"),
		ExpressionAttributeNames: map[string]string{"#n": "requests"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one": &types.AttributeValueMemberN{Value: "1"},
			":ids": &types.AttributeValueMemberSS{Value: []string{sessionID}},
			":id":  &types.AttributeValueMemberS{Value: sessionID},
			":cap": &types.AttributeValueMemberN{Value: strconv.Itoa(limit)},
			":exp": &types.AttributeValueMemberN{Value: strconv.FormatInt(at.Add(orderDayKeep).Unix(), 10)},
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return true, nil
	}
	ccf, ok := conditionFailed(err)
	if !ok {
		return false, fmt.Errorf("count order %s on %s: %w", orderNo, day, err)
	}
	// Either the cap is reached or sessionID was counted before: the set
	// tells which.
	item := ccf.Item
	if len(item) == 0 {
		if item, err = s.getItem(ctx, s.tables.Requests, key); err != nil {
			return false, fmt.Errorf("count order %s on %s: %w", orderNo, day, err)
		}
	}
	var got struct {
		InCap []string `dynamodbav:"inCap,stringset"`
	}
	if err := attributevalue.UnmarshalMap(item, &got); err != nil {
		return false, fmt.Errorf("count order %s on %s: %w", orderNo, day, err)
	}
	return slices.Contains(got.InCap, sessionID), nil
}
