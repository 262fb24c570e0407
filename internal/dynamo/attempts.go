package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ceb179/ceb179"
)

// skAttemptPrefix starts the sort key of every upload attempt:
// ATTEMPT#<time sent, ms, 13 digits>#<n>, so a session's attempts sort by
// time.
const skAttemptPrefix = "ATTEMPT#"

// attemptItem is the stored form of a ceb179.Attempt.
type attemptItem struct {
	SessionID  string `dynamodbav:"sessionID"`
	SK         string `dynamodbav:"sk"`
	At         int64  `dynamodbav:"at"`
	N          int    `dynamodbav:"n"`
	Outcome    string `dynamodbav:"outcome"`
	HTTPStatus int    `dynamodbav:"httpStatus"`
	Code       string `dynamodbav:"code,omitempty"`
	Message    string `dynamodbav:"message,omitempty"`
	Error      string `dynamodbav:"error,omitempty"`
	LatencyMs  int64  `dynamodbav:"latencyMs"`
	Digest     string `dynamodbav:"digest"`
	BodyDigest string `dynamodbav:"bodyDigest"`
	CertNo     string `dynamodbav:"certNo"`
	SignValue  string `dynamodbav:"signValue"`
	Owner      string `dynamodbav:"owner"`
	ExpiresAt  int64  `dynamodbav:"expiresAt"`
}

// AttemptSK returns the sort key of the attempt n sent at at.
func AttemptSK(at time.Time, n int) string {
	return fmt.Sprintf("%s%013d#%d", skAttemptPrefix, at.UnixMilli(), n)
}

// PutAttempt records one upload attempt, to be kept for the store's
// retention. An attempt is written once: a second write of the same key
// is refused by a condition and reported as an error.
func (s *Store) PutAttempt(ctx context.Context, a ceb179.Attempt) error {
	sk := AttemptSK(a.At, a.N)
	err := s.put(ctx, s.tables.Requests, attemptItem{
		SessionID:  a.SessionID,
		SK:         sk,
		At:         a.At.UnixMilli(),
		N:          a.N,
		Outcome:    string(a.Outcome),
		HTTPStatus: a.HTTPStatus,
		Code:       a.Code,
		Message:    a.Message,
		Error:      a.Error,
		LatencyMs:  a.Latency.Milliseconds(),
		Digest:     a.Digest,
		BodyDigest: a.BodyDigest,
		CertNo:     a.CertNo,
		SignValue:  a.SignValue,
		Owner:      a.Owner,
		ExpiresAt:  s.expiresAt(a.At),
	}, "attribute_not_exists(sessionID)", "attempt "+a.SessionID)
	if _, ok := conditionFailed(err); ok {
		// Already written. The same attempt (a retry of a write whose
		// answer was lost) is fine; another one under its key is refused.
		same := func(it attemptItem) bool {
			return it.Owner == a.Owner && it.Outcome == string(a.Outcome) && it.BodyDigest == a.BodyDigest
		}
		key := map[string]types.AttributeValue{
			"sessionID": &types.AttributeValueMemberS{Value: a.SessionID},
			"sk":        &types.AttributeValueMemberS{Value: sk},
		}
		if ok, gerr := get(ctx, s, s.tables.Requests, key, "attempt "+a.SessionID, same); gerr == nil && ok {
			return nil
		}
		return fmt.Errorf("another attempt is recorded under %s: %w", sk, err)
	}
	return err
}

// ListAttempts returns the recorded upload attempts of sessionID, oldest
// first.
func (s *Store) ListAttempts(ctx context.Context, sessionID string) ([]ceb179.Attempt, error) {
	return querySession(ctx, s, sessionID, skAttemptPrefix, "attempts "+sessionID, attemptItem.attempt)
}

func (it attemptItem) attempt() ceb179.Attempt {
	return ceb179.Attempt{
		SessionID:  it.SessionID,
		At:         time.UnixMilli(it.At),
		N:          it.N,
		Outcome:    ceb179.Outcome(it.Outcome),
		HTTPStatus: it.HTTPStatus,
		Code:       it.Code,
		Message:    it.Message,
		Error:      it.Error,
		Latency:    time.Duration(it.LatencyMs) * time.Millisecond,
		Digest:     it.Digest,
		BodyDigest: it.BodyDigest,
		CertNo:     it.CertNo,
		SignValue:  it.SignValue,
		Owner:      it.Owner,
	}
}
