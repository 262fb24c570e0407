package devstack

import (
	"context"
	"fmt"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/upload"
)

// invoker lets the bridge call the upload handler in-process: the same
// ceb179 contract values the Lambda Invoke API carries as JSON, passed as
// they are.
type invoker struct {
	h *upload.Handler
}

var _ bridge.Uploader = invoker{}

// Source implements bridge.Uploader.
func (i invoker) Source(ctx context.Context, sessionID string) (ceb179.SourceAnswer, error) {
	ans, err := i.h.Source(ctx, sessionID)
	if err != nil {
		return ceb179.SourceAnswer{}, fmt.Errorf("upload function error: %w", err)
	}
	return ans, nil
}

// Upload implements bridge.Uploader.
func (i invoker) Upload(ctx context.Context, req ceb179.Invocation) (ceb179.UploadAnswer, error) {
	req.Op = ceb179.OpUpload
	ans, err := i.h.Upload(ctx, req)
	if err != nil {
		return ceb179.UploadAnswer{}, fmt.Errorf("upload function error: %w", err)
	}
	return ans, nil
}
