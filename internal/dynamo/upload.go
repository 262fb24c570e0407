package dynamo

import (
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

// uploadItem is the request item with the upload's lease attributes.
type uploadItem struct {
	requestItem
	LeaseOwner    string `dynamodbav:"leaseOwner,omitempty"`
	LeaseUntil    int64  `dynamodbav:"leaseUntil,omitempty"`
	LastAttemptAt int64  `dynamodbav:"lastAttemptAt,omitempty"`
}

func (it uploadItem) claim() ceb179.UploadClaim {
	c := ceb179.UploadClaim{Request: it.request(), Owner: it.LeaseOwner}
	if it.LeaseUntil > 0 {
		c.LeaseUntil = time.UnixMilli(it.LeaseUntil)
	}
	if it.LastAttemptAt > 0 {
		c.LastAttemptAt = time.UnixMilli(it.LastAttemptAt)
	}
	return c
}

func decodeUploadItem(av map[string]types.AttributeValue) (ceb179.UploadClaim, error) {
	var it uploadItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return ceb179.UploadClaim{}, err
	}
	return it.claim(), nil
}

func millis(t time.Time) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(t.UnixMilli(), 10)}
}

// ClaimUpload gives owner the exclusive right to post the session's upload
// until leaseUntil. It is one conditional write on the request item, on
// the root's ceb179.Claimable asked at now; the state becomes SIGNED. When
// the condition fails it returns the item as found and an error wrapping
// ceb179.ErrClaimed (ceb179.ErrNotFound when there is no such request).
func (s *Store) ClaimUpload(ctx context.Context, sessionID, owner string, now, leaseUntil time.Time) (ceb179.UploadClaim, error) {
	values := map[string]types.AttributeValue{
		":signed": &types.AttributeValueMemberS{Value: string(ceb179.StateSigned)},
		":o":      &types.AttributeValueMemberS{Value: owner},
		":u":      millis(leaseUntil),
	}
	cond, err := condition(ceb179.Claimable, now, ceb179.Window, values)
	if err != nil {
		return ceb179.UploadClaim{}, fmt.Errorf("claim upload %s: %w", sessionID, err)
	}
	open, _ := openClause(sessionID, ceb179.StateSigned, values)
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.tables.Requests),
		Key:                                 requestKey(sessionID),
		UpdateExpression:                    aws.String(updateExpr([]string{"#s = :signed, leaseOwner = :o, leaseUntil = :u", open}, nil)),
		ConditionExpression:                 aws.String("attribute_exists(sessionID) AND " + cond),
		ExpressionAttributeNames:            map[string]string{"#s": "state"},
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if ccf, ok := conditionFailed(err); ok {
		item := ccf.Item
		if len(item) == 0 {
			// Not every DynamoDB implementation returns the old item.
			got, gerr := s.getItem(ctx, s.tables.Requests, requestKey(sessionID))
			if errors.Is(gerr, ceb179.ErrNotFound) {
				return ceb179.UploadClaim{}, fmt.Errorf("claim upload %s: %w", sessionID, ceb179.ErrNotFound)
			}
			if gerr != nil {
				return ceb179.UploadClaim{}, fmt.Errorf("get request %s: %w", sessionID, gerr)
			}
			item = got
		}
		c, derr := decodeUploadItem(item)
		if derr != nil {
			return ceb179.UploadClaim{}, fmt.Errorf("decode request %s: %w", sessionID, derr)
		}
		return c, fmt.Errorf("claim upload %s: %w", sessionID, ceb179.ErrClaimed)
	}
	if err != nil {
		return ceb179.UploadClaim{}, fmt.Errorf("claim upload %s: %w", sessionID, err)
	}
	c, err := decodeUploadItem(out.Attributes)
	if err != nil {
		return ceb179.UploadClaim{}, fmt.Errorf("decode request %s: %w", sessionID, err)
	}
	c.TakenOver = c.Owner != ""
	c.Request.State = ceb179.StateSigned
	c.Owner, c.LeaseUntil = owner, time.UnixMilli(leaseUntil.UnixMilli())
	return c, nil
}

// FinishUpload moves a claimed session to the final state to with reason,
// takes it out of the open index and ends owner's lease, provided owner
// still holds it (ceb179.ErrLeaseLost otherwise). lastAttempt, when not zero, is recorded as the time of the
// last post.
func (s *Store) FinishUpload(ctx context.Context, sessionID, owner string, to ceb179.State, reason string, lastAttempt time.Time) error {
	return s.endLease(ctx, sessionID, owner, to, reason, lastAttempt)
}

// ReleaseUpload ends owner's lease without a final state, so that a later
// delivery of the sign job can claim the session again; reason explains why
// for operators. The state stays SIGNED.
func (s *Store) ReleaseUpload(ctx context.Context, sessionID, owner, reason string, lastAttempt time.Time) error {
	return s.endLease(ctx, sessionID, owner, "", reason, lastAttempt)
}

func (s *Store) endLease(ctx context.Context, sessionID, owner string, to ceb179.State, reason string, lastAttempt time.Time) error {
	set := []string{"#r = :r"}
	remove := []string{"leaseOwner, leaseUntil"}
	values := map[string]types.AttributeValue{
		":o": &types.AttributeValueMemberS{Value: owner},
		":r": &types.AttributeValueMemberS{Value: reason},
	}
	names := map[string]string{"#r": "reason"}
	if to != "" {
		names["#s"] = "state"
		values[":to"] = &types.AttributeValueMemberS{Value: string(to)}
		open, closed := openClause(sessionID, to, values)
		set = append(set, "#s = :to", open)
		remove = append(remove, closed)
	}
	if !lastAttempt.IsZero() {
		set = append(set, "lastAttemptAt = :la")
		values[":la"] = millis(lastAttempt)
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.tables.Requests),
		Key:                       requestKey(sessionID),
		UpdateExpression:          aws.String(updateExpr(set, remove)),
		ConditionExpression:       aws.String("leaseOwner = :o"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if _, ok := conditionFailed(err); ok {
		return fmt.Errorf("end upload lease %s: %w", sessionID, ceb179.ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("end upload lease %s: %w", sessionID, err)
	}
	return nil
}

// NoteUpload records reason on a session that is still waiting for its
// upload (ceb179.Notable), without taking a lease: for example why a
// signature was refused. It does nothing to a session in any other state.
func (s *Store) NoteUpload(ctx context.Context, sessionID, reason string) error {
	values := map[string]types.AttributeValue{":r": &types.AttributeValueMemberS{Value: reason}}
	cond, err := condition(ceb179.Notable, time.Now(), ceb179.Window, values)
	if err != nil {
		return fmt.Errorf("note upload %s: %w", sessionID, err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.tables.Requests),
		Key:                       requestKey(sessionID),
		UpdateExpression:          aws.String("SET #r = :r"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  map[string]string{"#r": "reason", "#s": "state"},
		ExpressionAttributeValues: values,
	})
	if _, ok := conditionFailed(err); ok {
		return nil
	}
	if err != nil {
		return fmt.Errorf("note upload %s: %w", sessionID, err)
	}
	return nil
}
