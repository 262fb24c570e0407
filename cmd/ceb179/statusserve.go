package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/ops"
	"github.com/ceb179/ceb179/internal/statuspage"
)

// serveStatus serves the status page on addr (loopback only) until ctx
// ends; bridgeURL, when set, is hsmbridge's status endpoint.
func serveStatus(ctx context.Context, e *opsEnv, addr, bridgeURL string, stdout, stderr io.Writer) int {
	if err := bridge.CheckLoopback(addr); err != nil {
		return fail(stderr, "status", exitUsage, err)
	}
	opts := []statuspage.Option{statuspage.WithLogger(slog.New(slog.NewTextHandler(stderr, nil)))}
	if bridgeURL != "" {
		opts = append(opts, statuspage.WithSigner(func(ctx context.Context) (*ceb179.SignerHealth, error) {
			return ops.FetchSignerHealth(ctx, bridgeURL)
		}))
	}
	mux := http.NewServeMux()
	statuspage.New(e.service, opts...).Mount(mux)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fail(stderr, "status", exitFail, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "status page of %s on http://%s%s (Ctrl-C stops)\n", e.where, ln.Addr(), statuspage.Path)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return exitOK
	case err := <-done:
		if errors.Is(err, http.ErrServerClosed) {
			return exitOK
		}
		return fail(stderr, "status", exitFail, err)
	}
}
