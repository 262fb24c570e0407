package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ceb179/ceb179/internal/session"
)

// skPending is the sort key of a session's assembled upload.
const skPending = "PENDING"

// pendingItem is the stored form of a session.Pending. Head and Lists are
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

func (it pendingItem) pending() session.Pending {
	return session.Pending{
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
// work writes nothing and gets the first result back.
func (s *Store) CreatePending(ctx context.Context, p session.Pending) (session.Pending, bool, error) {
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
		return session.Pending{}, false, fmt.Errorf("encode pending upload %s: %w", p.SessionID, err)
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
		return session.Pending{}, false, fmt.Errorf("put pending upload %s: %w", p.SessionID, err)
	case created:
		return p, true, nil
	}
	return old.pending(), false, nil
}

// GetPending returns the assembled upload of sessionID, or ErrNotFound.
func (s *Store) GetPending(ctx context.Context, sessionID string) (session.Pending, error) {
	item, err := s.getItem(ctx, s.tables.Requests, pendingKey(sessionID))
	if err != nil {
		return session.Pending{}, fmt.Errorf("get pending upload %s: %w", sessionID, err)
	}
	var it pendingItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return session.Pending{}, fmt.Errorf("decode pending upload %s: %w", sessionID, err)
	}
	return it.pending(), nil
}

// ErrStateConflict is returned by SetState when the request is not in one of
// the states the caller expected.
var ErrStateConflict = fmt.Errorf("state conflict")

// SetState moves the request of sessionID to state to, with an optional
// reason (shown to operators), provided it is now in one of from (any state
// when from is empty). It returns ErrStateConflict, wrapped, when it is not.
func (s *Store) SetState(ctx context.Context, sessionID string, to session.State, reason string, from ...session.State) error {
	names := map[string]string{"#s": "state", "#r": "reason"}
	values := map[string]types.AttributeValue{
		":to": &types.AttributeValueMemberS{Value: string(to)},
		":r":  &types.AttributeValueMemberS{Value: reason},
	}
	cond := "attribute_exists(sessionID)"
	if len(from) > 0 {
		cond += " AND #s IN ("
		for i, f := range from {
			k := fmt.Sprintf(":f%d", i)
			values[k] = &types.AttributeValueMemberS{Value: string(f)}
			if i > 0 {
				cond += ", "
			}
			cond += k
		}
		cond += ")"
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.tables.Requests),
		Key:                       requestKey(sessionID),
		UpdateExpression:          aws.String("SET #s = :to, #r = :r"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if _, ok := conditionFailed(err); ok {
		return fmt.Errorf("set request %s to %s: %w", sessionID, to, ErrStateConflict)
	}
	if err != nil {
		return fmt.Errorf("set request %s to %s: %w", sessionID, to, err)
	}
	return nil
}
