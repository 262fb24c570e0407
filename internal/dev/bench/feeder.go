package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/devstack"
)

// feedChunk is how many orders a feeder seeds at a time.
const feedChunk = 100

// feeder sends customs requests to a stack on demand, at most 64 calls in
// flight, each for an order asked no more often than the daily cap allows;
// it seeds the orders as it goes.
type feeder struct {
	st     *devstack.Stack
	client *http.Client
	tag    string
	start  time.Time
	orders []string
	sent   int
	acked  atomic.Int64
	sem    chan struct{}
	wg     sync.WaitGroup
}

// newFeeder returns a feeder whose sessions are named by tag and start.
func newFeeder(st *devstack.Stack, tag string, start time.Time) *feeder {
	return &feeder{
		st:     st,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}},
		tag:    tag,
		start:  start,
		sem:    make(chan struct{}, 64),
	}
}

// send sends n more requests without waiting for their answers. Request i
// asks for an order of chunk i / (feedChunk × cap), the chunk's orders in
// turn.
func (f *feeder) send(ctx context.Context, n int) error {
	per := feedChunk * ceb179.DefaultDailyCap
	for range n {
		i := f.sent
		chunk := i / per
		if (chunk+1)*feedChunk > len(f.orders) {
			more, err := seed(ctx, f.st, len(f.orders), feedChunk)
			if err != nil {
				return err
			}
			f.orders = append(f.orders, more...)
		}
		order := f.orders[chunk*feedChunk+i%feedChunk]
		sid := fmt.Sprintf("%s-%d-%06d", f.tag, f.start.UnixNano(), i)
		select {
		case f.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		f.sent++
		f.wg.Go(func() {
			defer func() { <-f.sem }()
			if platDataOpen(ctx, f.client, f.st.URL, order, sid) == customs.CodeSuccess {
				f.acked.Add(1)
			}
		})
	}
	return nil
}

// wait waits for the answers of every request sent.
func (f *feeder) wait() {
	f.wg.Wait()
	f.client.CloseIdleConnections()
}
