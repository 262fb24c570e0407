package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/awsenv"
)

// SignerHealth is hsmbridge's status (its local status endpoint).
type SignerHealth = ceb179.SignerHealth

// FetchSignerHealth reads hsmbridge's status endpoint at rawURL, which
// must be on loopback (the bridge serves it there only).
func FetchSignerHealth(ctx context.Context, rawURL string) (*ceb179.SignerHealth, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !awsenv.IsLoopbackEndpoint(rawURL) {
		return nil, fmt.Errorf("bridge status URL %q: want http://127.0.0.1:PORT/status", rawURL)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bridge status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bridge status: HTTP %d", resp.StatusCode)
	}
	var st ceb179.SignerHealth
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return nil, fmt.Errorf("bridge status: %w", err)
	}
	return &st, nil
}
