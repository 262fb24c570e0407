package devstack

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/upload"
)

// invoker lets the bridge call the upload handler in-process, with the same
// JSON it would exchange through the Lambda Invoke API.
type invoker struct {
	h *upload.Handler
}

var _ bridge.Uploader = invoker{}

// Source implements bridge.Uploader.
func (i invoker) Source(ctx context.Context, sessionID string) (bridge.Source, error) {
	var out bridge.Source
	err := i.call(ctx, bridge.SourceRequest{Op: ceb179.OpSource, SessionID: sessionID}, &out)
	return out, err
}

// Upload implements bridge.Uploader.
func (i invoker) Upload(ctx context.Context, req bridge.UploadRequest) (bridge.UploadResult, error) {
	req.Op = ceb179.OpUpload
	var out bridge.UploadResult
	err := i.call(ctx, req, &out)
	return out, err
}

func (i invoker) call(ctx context.Context, in, out any) error {
	payload, err := json.Marshal(in)
	if err != nil {
		return err
	}
	var inv ceb179.Invocation
	if err := json.Unmarshal(payload, &inv); err != nil {
		return err
	}
	ans, err := i.h.Invoke(ctx, inv)
	if err != nil {
		return fmt.Errorf("upload function error: %w", err)
	}
	b, err := json.Marshal(ans)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
