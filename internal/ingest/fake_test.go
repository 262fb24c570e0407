package ingest

import (
	"context"
	"sync"

	"github.com/ceb179/ceb179"
)

// memStore is an in-memory RequestStore for the fuzz target and the
// handler-only benchmark; every other test uses the emulated DynamoDB.
type memStore struct {
	mu   sync.Mutex
	reqs map[string]ceb179.Request
}

func newMemStore() *memStore { return &memStore{reqs: map[string]ceb179.Request{}} }

func (m *memStore) CreateRequest(_ context.Context, r ceb179.Request) (ceb179.Request, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.reqs[r.SessionID]; ok {
		return old, false, nil
	}
	m.reqs[r.SessionID] = r
	return r, true, nil
}

func (m *memStore) MarkEnqueued(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.reqs[id]
	r.Enqueued = true
	m.reqs[id] = r
	return nil
}

// memQueue is an in-memory Sender.
type memQueue struct {
	mu   sync.Mutex
	msgs []any
}

func (q *memQueue) Send(_ context.Context, v any) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, v)
	return nil
}
