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

// NoteSettle records an action of the settler on a request the transition
// t allows at (ceb179.Requeueable, ceb179.Resendable): settles + 1,
// lastSettleAt = at, lastSettleWhy = why. It reports false, without error,
// when t does not allow it (something else settled it first).
func (s *Store) NoteSettle(ctx context.Context, sessionID, why string, at time.Time, t ceb179.Transition) (bool, error) {
	return s.settle(ctx, sessionID, "", why, at, t)
}

// SettleFailed makes a request FAILED with reason, as the settler does past
// the give-up window, provided ceb179.Settleable allows it at (a state not
// final, no upload invocation holding a live lease). It records the action
// like NoteSettle, removes any lapsed lease and takes the request out of
// the open index. It reports false when the condition did not hold.
func (s *Store) SettleFailed(ctx context.Context, sessionID, reason string, at time.Time) (bool, error) {
	return s.settle(ctx, sessionID, ceb179.StateFailed, reason, at, ceb179.Settleable)
}

func (s *Store) settle(ctx context.Context, sessionID string, to ceb179.State, why string, at time.Time, t ceb179.Transition) (bool, error) {
	names := map[string]string{"#s": "state"}
	values := map[string]types.AttributeValue{
		":zero": &types.AttributeValueMemberN{Value: "0"},
		":one":  &types.AttributeValueMemberN{Value: "1"},
		":at":   millis(at),
		":why":  &types.AttributeValueMemberS{Value: why},
	}
	cond, err := condition(t, at, ceb179.Window, values)
	if err != nil {
		return false, fmt.Errorf("settle %s: %w", sessionID, err)
	}
	set := []string{"settles = if_not_exists(settles, :zero) + :one, lastSettleAt = :at, lastSettleWhy = :why"}
	var remove []string
	if to != "" {
		names["#r"] = "reason"
		values[":to"] = &types.AttributeValueMemberS{Value: string(to)}
		open, closed := openClause(sessionID, to, values)
		set = append(set, "#s = :to, #r = :why", open)
		remove = append(remove, "leaseOwner, leaseUntil", closed)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
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
