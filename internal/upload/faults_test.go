package upload

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/customssim"
)

// faultStore fails chosen table calls of the real store a number of times.
type faultStore struct {
	Store
	mu    sync.Mutex
	fails map[string]int // call name -> failures left (-1: always)
	calls map[string]int
}

var errTable = errors.New("table unavailable")

func newFaultStore(s Store) *faultStore {
	return &faultStore{Store: s, fails: map[string]int{}, calls: map[string]int{}}
}

// withFaults puts a faultStore between the handler and its store.
func (f *fixture) withFaults() *faultStore {
	fs := newFaultStore(f.store)
	f.handler.store = fs
	return fs
}

func (f *faultStore) set(name string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails[name] = n
}

func (f *faultStore) fail(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[name]++
	switch n := f.fails[name]; {
	case n < 0:
		return true
	case n > 0:
		f.fails[name] = n - 1
		return true
	}
	return false
}

func (f *faultStore) FinishUpload(ctx context.Context, id, owner string, to ceb179.State, reason string, last time.Time) error {
	if f.fail("FinishUpload") {
		return errTable
	}
	return f.Store.FinishUpload(ctx, id, owner, to, reason, last)
}

func (f *faultStore) PutAttempt(ctx context.Context, a ceb179.Attempt) error {
	if f.fail("PutAttempt") {
		return errTable
	}
	return f.Store.PutAttempt(ctx, a)
}

func (f *faultStore) ListAttempts(ctx context.Context, id string) ([]ceb179.Attempt, error) {
	if f.fail("ListAttempts") {
		return nil, errTable
	}
	return f.Store.ListAttempts(ctx, id)
}

// TestUploadTableFaults checks that a failing table never loses customs'
// acceptance and never turns a duplicate of ours into a rejection. Posts
// are counted by the customs fake.
func TestUploadTableFaults(t *testing.T) {
	t.Parallel()
	short := func(c *fixtureConfig) { c.policy = func(p *Policy) { p.StoreRetry = 300 * time.Millisecond } }

	t.Run("ok FinishUpload failing once after an accepted post", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, short)
		fs := f.withFaults()
		fs.set("FinishUpload", 1)
		f.assemble(t, "sid-finish-once")
		a := f.upload(t, f.sign(t, "sid-finish-once", f.signer))
		if a.State != ceb179.StateAccepted || f.request(t, "sid-finish-once").State != ceb179.StateAccepted {
			t.Fatalf("answer %+v, request %s; want ACCEPTED", a, f.request(t, "sid-finish-once").State)
		}
		if f.customs.Posts() != 1 {
			t.Errorf("customs received %d posts, want 1", f.customs.Posts())
		}
	})

	t.Run("ok FinishUpload failing for good: the job stays and a later delivery finishes without posting", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, short)
		fs := f.withFaults()
		fs.set("FinishUpload", -1)
		id := "sid-finish-never"
		f.assemble(t, id)
		job := f.sign(t, id, f.signer)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if a, err := f.handler.Upload(ctx, job); err == nil {
			t.Fatalf("answer %+v: an acceptance that was not recorded must not be reported final", a)
		}
		fs.set("FinishUpload", 0)
		// The next delivery comes after the dead invocation's lease.
		f.clock.Set(epoch.Add(time.Minute))
		a := f.upload(t, job)
		if a.State != ceb179.StateAccepted || !strings.Contains(a.Message, "accepted by an earlier post") {
			t.Fatalf("answer %+v", a)
		}
		if f.request(t, id).State != ceb179.StateAccepted {
			t.Errorf("request %s", f.request(t, id).State)
		}
		if f.customs.Posts() != 1 {
			t.Errorf("customs received %d posts, want 1", f.customs.Posts())
		}
	})

	t.Run("ok unrecorded unanswered post: a later 入库失败 is ours", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, short)
		fs := f.withFaults()
		id := "sid-put-attempt"
		f.assemble(t, id)
		job := f.sign(t, id, f.signer)
		f.customs.Script(customssim.Status(503))
		f.customs.Fallback(customssim.Duplicate())
		fs.set("PutAttempt", -1)
		f.clock.Set(epoch.Add(ceb179.Window + time.Minute)) // late: one post per invocation
		if a := f.upload(t, job); a.State != ceb179.StateRetry {
			t.Fatalf("first answer %+v", a)
		}
		fs.set("PutAttempt", 0)
		f.clock.Set(epoch.Add(ceb179.Window + 3*time.Minute))
		a := f.upload(t, job)
		if a.State != ceb179.StateAccepted || !strings.Contains(a.Message, "duplicate after an unanswered attempt") {
			t.Fatalf("answer %+v, want ACCEPTED as a duplicate of ours", a)
		}
		if f.customs.Posts() != 2 {
			t.Errorf("customs received %d posts, want 2", f.customs.Posts())
		}
	})

	t.Run("ok ListAttempts failing on 入库失败 is not a rejection", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, short)
		fs := f.withFaults()
		id := "sid-list-attempts"
		f.assemble(t, id)
		job := f.sign(t, id, f.signer)
		f.customs.Fallback(customssim.Duplicate())
		fs.set("ListAttempts", -1)
		a := f.upload(t, job)
		if a.State != ceb179.StateRetry {
			t.Fatalf("answer %+v, want RETRY", a)
		}
		if st := f.request(t, id).State; st != ceb179.StateSigned {
			t.Errorf("request %s, want SIGNED", st)
		}
	})
}
