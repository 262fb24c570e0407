package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ceb179/ceb179"
)

// skPending is the sort key of a session's assembled upload.
const skPending = "PENDING"

// pendingItem is the stored form of a ceb179.Pending. Head and Lists are
// strings holding the exact JSON bytes.
type pendingItem struct {
	SessionID   string `dynamodbav:"sessionID"`
	SK          string `dynamodbav:"sk"`
	EbpCode     string `dynamodbav:"ebpCode"`
	GUID        string `dynamodbav:"guid"`
	Head        string `dynamodbav:"head"`
	Lists       string `dynamodbav:"lists"`
	ServiceTime string `dynamodbav:"serviceTime"`
	Digest      string `dynamodbav:"digest"`
	Deadline    int64  `dynamodbav:"deadline"`
	CreatedAt   int64  `dynamodbav:"createdAt"`
	Replay      int    `dynamodbav:"replay"`
	ExpiresAt   int64  `dynamodbav:"expiresAt"`
}

func (it pendingItem) pending() ceb179.Pending {
	return ceb179.Pending{
		SessionID:   it.SessionID,
		EbpCode:     it.EbpCode,
		GUID:        it.GUID,
		Head:        []byte(it.Head),
		Lists:       []byte(it.Lists),
		ServiceTime: it.ServiceTime,
		Digest:      it.Digest,
		Deadline:    time.UnixMilli(it.Deadline),
		CreatedAt:   time.UnixMilli(it.CreatedAt),
		Replay:      it.Replay,
	}
}

func pendingKey(sessionID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"sessionID": &types.AttributeValueMemberS{Value: sessionID},
		"sk":        &types.AttributeValueMemberS{Value: skPending},
	}
}

// CreatePending stores p unless the session already has an assembled upload
// with the same or a later replay number. It returns the stored upload (p, or
// the earlier one) and whether p was written: a repeated delivery of the same
// work writes nothing and gets the first result back. An upload it replaces
// (p is a replay) is kept first under PENDING#<its replay number>, so that
// its attempts can still be rebuilt and the trail shows every assembly.
func (s *Store) CreatePending(ctx context.Context, p ceb179.Pending) (ceb179.Pending, bool, error) {
	if p.Replay > 0 {
		if err := s.keepPending(ctx, p.SessionID, p.Replay); err != nil {
			return ceb179.Pending{}, false, err
		}
	}
	item, err := attributevalue.MarshalMap(pendingItem{
		SessionID:   p.SessionID,
		SK:          skPending,
		EbpCode:     p.EbpCode,
		GUID:        p.GUID,
		Head:        string(p.Head),
		Lists:       string(p.Lists),
		ServiceTime: p.ServiceTime,
		Digest:      p.Digest,
		Deadline:    p.Deadline.UnixMilli(),
		CreatedAt:   p.CreatedAt.UnixMilli(),
		Replay:      p.Replay,
		ExpiresAt:   s.expiresAt(p.CreatedAt),
	})
	if err != nil {
		return ceb179.Pending{}, false, fmt.Errorf("encode pending upload %s: %w", p.SessionID, err)
	}
	var old pendingItem
	created, err := putNew(ctx, s, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.tables.Requests),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(sessionID) OR replay < :r"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": &types.AttributeValueMemberN{Value: fmt.Sprint(p.Replay)}},
	}, pendingKey(p.SessionID), &old)
	switch {
	case err != nil:
		return ceb179.Pending{}, false, fmt.Errorf("put pending upload %s: %w", p.SessionID, err)
	case created:
		return p, true, nil
	}
	return old.pending(), false, nil
}

// skPendingHistory is the sort key prefix of the uploads a replay replaced.
const skPendingHistory = "PENDING#"

// keepPending copies the session's PENDING item, when its replay number is
// below replay, to PENDING#<its replay number> (once: a copy that exists is
// left as it is).
func (s *Store) keepPending(ctx context.Context, sessionID string, replay int) error {
	item, err := s.getItem(ctx, s.tables.Requests, pendingKey(sessionID))
	if errors.Is(err, ceb179.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("keep pending upload %s: %w", sessionID, err)
	}
	var it pendingItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return fmt.Errorf("decode pending upload %s: %w", sessionID, err)
	}
	if it.Replay >= replay {
		return nil
	}
	item["sk"] = &types.AttributeValueMemberS{Value: fmt.Sprintf("%s%03d", skPendingHistory, it.Replay)}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           aws.String(s.tables.Requests),
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(sessionID)"),
	})
	if _, ok := conditionFailed(err); ok {
		return nil
	}
	if err != nil {
		return fmt.Errorf("keep pending upload %s: %w", sessionID, err)
	}
	return nil
}

// EarlierPendings returns the assembled uploads replays replaced, oldest
// first.
func (s *Store) EarlierPendings(ctx context.Context, sessionID string) ([]ceb179.Pending, error) {
	return querySession(ctx, s, sessionID, skPendingHistory, "earlier pending uploads of "+sessionID, pendingItem.pending)
}

// GetPending returns the assembled upload of sessionID, or ceb179.ErrNotFound.
func (s *Store) GetPending(ctx context.Context, sessionID string) (ceb179.Pending, error) {
	return get(ctx, s, s.tables.Requests, pendingKey(sessionID), "pending upload "+sessionID, pendingItem.pending)
}

// SetState moves the request of sessionID to state to, with an optional
// reason (shown to operators), provided the transition t allows it now
// (ceb179.Assemblable for assemble), keeping the open index right. It
// returns ceb179.ErrConflict, wrapped, when it does not.
func (s *Store) SetState(ctx context.Context, sessionID string, to ceb179.State, reason string, t ceb179.Transition) error {
	names := map[string]string{"#s": "state", "#r": "reason"}
	values := map[string]types.AttributeValue{
		":to": &types.AttributeValueMemberS{Value: string(to)},
		":r":  &types.AttributeValueMemberS{Value: reason},
	}
	from, err := condition(t, time.Now(), ceb179.Window, values)
	if err != nil {
		return fmt.Errorf("set request %s to %s: %w", sessionID, to, err)
	}
	cond := "attribute_exists(sessionID) AND " + from
	set, remove := openClause(sessionID, to, values)
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.tables.Requests),
		Key:                       requestKey(sessionID),
		UpdateExpression:          aws.String(updateExpr([]string{"#s = :to, #r = :r", set}, []string{remove})),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if _, ok := conditionFailed(err); ok {
		return fmt.Errorf("set request %s to %s: %w", sessionID, to, ceb179.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("set request %s to %s: %w", sessionID, to, err)
	}
	return nil
}
