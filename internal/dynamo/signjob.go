package dynamo

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ClaimSignJob gives owner, for lease, the right to send the sign job of
// the session's pending upload: one conditional write on the PENDING item
// (attributes jobOwner and jobClaimedAt). It succeeds when nobody claimed
// the job, when owner already holds it, or when the last claim is older
// than lease (its holder died before sending). It reports false, without an
// error, when another owner holds a live claim, and ceb179.ErrNotFound (wrapped)
// when the session has no pending upload.
//
// Two deliveries of the same assemble message that run at the same time
// thus send one sign job: only the holder sends.
func (s *Store) ClaimSignJob(ctx context.Context, sessionID, owner string, now time.Time, lease time.Duration) (bool, error) {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(s.tables.Requests),
		Key:              pendingKey(sessionID),
		UpdateExpression: aws.String("SET jobOwner = :o, jobClaimedAt = :now"),
		ConditionExpression: aws.String("attribute_exists(sessionID) AND " +
			"(attribute_not_exists(jobOwner) OR jobOwner = :o OR jobClaimedAt < :stale)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":o":     &types.AttributeValueMemberS{Value: owner},
			":now":   &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":stale": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(-lease).UnixMilli(), 10)},
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return true, nil
	}
	if _, ok := conditionFailed(err); !ok {
		return false, fmt.Errorf("claim sign job %s: %w", sessionID, err)
	}
	// Tell "someone else holds it" from "no pending upload".
	if _, gerr := s.GetPending(ctx, sessionID); gerr != nil {
		return false, gerr
	}
	return false, nil
}

// ReleaseSignJob gives up owner's claim on the session's sign job (after
// the job could not be sent), so that the next delivery need not wait for
// the lease to end. Releasing a claim held by someone else does nothing.
func (s *Store) ReleaseSignJob(ctx context.Context, sessionID, owner string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.tables.Requests),
		Key:                 pendingKey(sessionID),
		UpdateExpression:    aws.String("REMOVE jobOwner, jobClaimedAt"),
		ConditionExpression: aws.String("jobOwner = :o"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":o": &types.AttributeValueMemberS{Value: owner},
		},
	})
	if _, ok := conditionFailed(err); ok {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release sign job %s: %w", sessionID, err)
	}
	return nil
}
