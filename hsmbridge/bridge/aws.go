package bridge

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/ceb179/ceb179"
)

// LambdaUploader is the Uploader over the upload function. It needs
// lambda:InvokeFunction on that function.
type LambdaUploader struct {
	// Client is the Lambda client.
	Client *lambda.Client
	// Function is the upload function's name or ARN.
	Function string
}

var _ Uploader = (*LambdaUploader)(nil)

// Source invokes op "source".
func (u *LambdaUploader) Source(ctx context.Context, sessionID string) (ceb179.SourceAnswer, error) {
	var s ceb179.SourceAnswer
	err := u.invoke(ctx, ceb179.Invocation{Op: ceb179.OpSource, SessionID: sessionID}, &s)
	return s, err
}

// Upload invokes op "upload".
func (u *LambdaUploader) Upload(ctx context.Context, req ceb179.Invocation) (ceb179.UploadAnswer, error) {
	req.Op = ceb179.OpUpload
	var r ceb179.UploadAnswer
	err := u.invoke(ctx, req, &r)
	return r, err
}

func (u *LambdaUploader) invoke(ctx context.Context, in, out any) error {
	payload, err := json.Marshal(in)
	if err != nil {
		return err
	}
	res, err := u.Client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(u.Function), Payload: payload})
	if err != nil {
		return fmt.Errorf("invoke upload function: %w", err)
	}
	if res.FunctionError != nil {
		// The function's error text is short and safe to log ("bad
		// request: ...", "unknown session: ...", "internal error: ...").
		var fe struct {
			ErrorMessage string `json:"errorMessage"`
		}
		_ = json.Unmarshal(res.Payload, &fe)
		return fmt.Errorf("upload function error (%s): %s", aws.ToString(res.FunctionError), fe.ErrorMessage)
	}
	if err := json.Unmarshal(res.Payload, out); err != nil {
		return fmt.Errorf("decode upload function answer: %w", err)
	}
	return nil
}
