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
// records the action like NoteSettle, removes any lapsed lease and takes
// the request out of the open index. It reports false when the condition
// did not hold.
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
	set := []string{"settles = if_not_exists(settles, :zero) + :one, lastSettleAt = :at, lastSettleWhy = :why"}
	var remove []string
	if to != "" {
		names["#r"] = "reason"
		values[":to"] = &types.AttributeValueMemberS{Value: string(to)}
		open, closed := openClause(sessionID, to, values)
		set = append(set, "#s = :to, #r = :why", open)
		remove = append(remove, "leaseOwner, leaseUntil", closed)
		cond += " AND (attribute_not_exists(leaseUntil) OR leaseUntil <= :at)"
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.tables.Requests),
		Key:                       requestKey(sessionID),
		UpdateExpression:          aws.String(updateExpr(set, remove)),
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
