package queue

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ceb179/ceb179"
)

// notFound are the SQS error codes that mean the queue, or the received
// message a receipt handle names, is not there (any more). SQS answers
// some in the query protocol's spelling, AWS.SimpleQueueService.<code>,
// which kindOf strips first.
var notFound = map[string]bool{
	"QueueDoesNotExist":      true,
	"NonExistentQueue":       true,
	"ReceiptHandleIsInvalid": true,
	"MessageNotInflight":     true,
}

// unavailable are the SQS error codes, besides the SDK's throttling and
// timeout codes (retry.DefaultThrottleErrorCodes,
// retry.DefaultRetryableErrorCodes), that mean the call may succeed later.
var unavailable = map[string]bool{
	"KmsThrottled":       true,
	"OverLimit":          true,
	"ServiceUnavailable": true,
	"InternalError":      true,
	"InternalFailure":    true,
}

// kindOf returns the domain's error kind of an SQS error code, or "".
func kindOf(code string) ceb179.Kind {
	code = strings.TrimPrefix(code, "AWS.SimpleQueueService.")
	_, throttled := retry.DefaultThrottleErrorCodes[code]
	_, timedOut := retry.DefaultRetryableErrorCodes[code]
	switch {
	case notFound[code]:
		return ceb179.ErrNotFound
	case throttled || timedOut || unavailable[code]:
		return ceb179.ErrUnavailable
	}
	return ""
}

// wrap returns err of an SQS call, described by what, with the domain's
// error kind beside it when the error has one: the API error's code
// (read with errors.As as smithy.APIError), a server fault (5xx), or a
// request that never reached SQS are mapped; every other error keeps no
// kind.
func wrap(err error, what string, a ...any) error {
	what = fmt.Sprintf(what, a...)
	var (
		api  smithy.APIError
		resp *smithyhttp.ResponseError
		send *smithyhttp.RequestSendError
		kind ceb179.Kind
	)
	switch {
	case errors.As(err, &api):
		kind = kindOf(api.ErrorCode())
		if kind == "" && (api.ErrorFault() == smithy.FaultServer || errors.As(err, &resp) && resp.HTTPStatusCode() >= 500) {
			kind = ceb179.ErrUnavailable
		}
	case errors.As(err, &send):
		kind = ceb179.ErrUnavailable
	}
	if kind == "" {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, kind, err)
}
