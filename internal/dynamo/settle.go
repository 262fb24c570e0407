package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ceb179/ceb179"
)

// NoteSettle records an action of the settler on a request still in one of
// the states from: settles + 1, lastSettleAt = at, lastSettleWhy = why. It
// reports false, without error, when the request has left those states
// (something else settled it first).
func (s *Store) NoteSettle(ctx context.Context, sessionID, why string, at time.Time, from ...ceb179.State) (bool, error) {
	return s.settle(ctx, sessionID, "", why, at, from)
}

// SettleFailed makes a request FAILED with reason, as the settler does past
// the give-up window, provided it is still in one of the states from and no
// upload invocation holds a live lease on it (leaseUntil after at). It
// records the action like NoteSettle and removes any lapsed lease. It
// reports false when the condition did not hold.
func (s *Store) SettleFailed(ctx context.Context, sessionID, reason string, at time.Time, from ...ceb179.State) (bool, error) {
	return s.settle(ctx, sessionID, ceb179.StateFailed, reason, at, from)
}

func (s *Store) settle(ctx context.Context, sessionID string, to ceb179.State, why string, at time.Time, from []ceb179.State) (bool, error) {
	if len(from) == 0 {
		return false, fmt.Errorf("settle %s: no states to settle from", sessionID)
	}
	names := map[string]string{"#s": "state"}
	values := map[string]types.AttributeValue{
		":zero": &types.AttributeValueMemberN{Value: "0"},
		":one":  &types.AttributeValueMemberN{Value: "1"},
		":at":   millis(at),
		":why":  &types.AttributeValueMemberS{Value: why},
	}
	cond := stateIn(values, from)
	update := "SET settles = if_not_exists(settles, :zero) + :one, lastSettleAt = :at, lastSettleWhy = :why"
	if to != "" {
		names["#r"] = "reason"
		values[":to"] = &types.AttributeValueMemberS{Value: string(to)}
		update += ", #s = :to, #r = :why REMOVE leaseOwner, leaseUntil"
		cond += " AND (attribute_not_exists(leaseUntil) OR leaseUntil <= :at)"
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.tables.Requests),
		Key:                       requestKey(sessionID),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("attribute_exists(sessionID) AND " + cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if _, ok := conditionFailed(err); ok {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("settle %s: %w", sessionID, err)
	}
	return true, nil
}
