package devstack

import (
	"context"
	"sync"
	"time"

	"github.com/ceb179/ceb179/internal/clock"
	"github.com/ceb179/ceb179/internal/signer"
)

// paced makes a signer as slow as an E-Port card: at most rate signatures a
// minute, one at a time.
type paced struct {
	signer.Signer
	every time.Duration

	mu   sync.Mutex
	next time.Time
}

func newPaced(s signer.Signer, perMinute float64) *paced {
	return &paced{Signer: s, every: time.Duration(float64(time.Minute) / perMinute)}
}

// Sign waits for the card's next slot, then signs.
func (p *paced) Sign(ctx context.Context, source []byte) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if wait := p.next.Sub(now); wait > 0 {
		if err := clock.Sleep(ctx, wait); err != nil {
			return "", err
		}
		now = p.next
	}
	p.next = now.Add(p.every)
	return p.Signer.Sign(ctx, source)
}

// Concurrency is 1: a card signs one source at a time.
func (p *paced) Concurrency() int { return 1 }
