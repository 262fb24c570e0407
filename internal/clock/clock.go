// Package clock holds the one way ceb179 waits: a sleep that ends early
// when its context does.
package clock

import (
	"context"
	"time"
)

// Sleep waits for d or until ctx ends, whichever comes first. It returns
// nil after the full wait and ctx.Err() when ctx ended it. A d of zero or
// less returns at once (ctx.Err() if ctx has already ended).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
