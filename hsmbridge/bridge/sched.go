package bridge

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Policy is the order in which waiting jobs are signed.
type Policy int

const (
	// EDF serves feasible jobs earliest deadline first and hopeless jobs
	// (those that can no longer make their deadline) only when no feasible
	// job waits. It is the production policy. Jobs of a lower priority
	// (ceb179.PriorityLow: over their order's daily cap) come after every
	// waiting job of a higher one, feasible or hopeless.
	EDF Policy = iota
	// FIFO serves jobs in the order they were received, higher priority
	// first. It exists to measure EDF against.
	FIFO
)

// String names the policy.
func (p Policy) String() string {
	if p == FIFO {
		return "FIFO"
	}
	return "EDF"
}

// scheduler holds the waiting jobs of every ebpCode.
type scheduler struct {
	policy Policy
	now    func() time.Time

	mu     sync.Mutex
	seq    uint64
	queues map[string]*ebpQueue
}

// ebpQueue holds the waiting jobs of one ebpCode.
type ebpQueue struct {
	feasible jobHeap
	hopeless jobHeap
	changed  chan struct{} // closed and replaced on every push
}

func newScheduler(p Policy, now func() time.Time) *scheduler {
	if now == nil {
		now = time.Now
	}
	return &scheduler{policy: p, now: now, queues: map[string]*ebpQueue{}}
}

func (s *scheduler) queue(ebp string) *ebpQueue {
	q := s.queues[ebp]
	if q == nil {
		q = &ebpQueue{changed: make(chan struct{})}
		q.feasible.fifo = s.policy == FIFO
		s.queues[ebp] = q
	}
	return q
}

// push adds a job (new, or back from a failed signer) and wakes the
// signers of its ebpCode.
func (s *scheduler) push(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.seq == 0 {
		s.seq++
		j.seq = s.seq
	}
	// Wall-clock time, as the signer slots compare it with theirs.
	j.ready = time.Now()
	q := s.queue(j.ebpCode)
	heap.Push(&q.feasible, j)
	close(q.changed)
	q.changed = make(chan struct{})
}

// next blocks until a job of ebp is waiting and returns the one to sign
// now. need is how long signing and uploading is expected to take on the
// caller's signer: under EDF, a job whose deadline is closer than that is
// moved to the hopeless queue instead of being returned, unless no
// feasible job is left.
func (s *scheduler) next(ctx context.Context, ebp string, need time.Duration) (*job, error) {
	for {
		s.mu.Lock()
		q := s.queue(ebp)
		if j := s.popLocked(q, need); j != nil {
			s.mu.Unlock()
			return j, nil
		}
		ch := q.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *scheduler) popLocked(q *ebpQueue, need time.Duration) *job {
	if s.policy == FIFO {
		if q.feasible.Len() == 0 {
			return nil
		}
		return heap.Pop(&q.feasible).(*job)
	}
	cutoff := s.now().Add(need)
	for q.feasible.Len() > 0 {
		j := heap.Pop(&q.feasible).(*job)
		if j.deadline.Before(cutoff) {
			j.hopeless = true
			heap.Push(&q.hopeless, j)
			continue
		}
		if q.hopeless.Len() > 0 && q.hopeless.items[0].priority < j.priority {
			// A late job of a higher priority goes before an over-cap one.
			heap.Push(&q.feasible, j)
			return heap.Pop(&q.hopeless).(*job)
		}
		return j
	}
	if q.hopeless.Len() > 0 {
		return heap.Pop(&q.hopeless).(*job)
	}
	return nil
}

// depth returns how many jobs wait, feasible and hopeless, per ebpCode.
func (s *scheduler) depth() map[string][2]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][2]int, len(s.queues))
	for ebp, q := range s.queues {
		out[ebp] = [2]int{q.feasible.Len(), q.hopeless.Len()}
	}
	return out
}

// drain removes and returns every waiting job.
func (s *scheduler) drain() []*job {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*job
	for _, q := range s.queues {
		out = append(out, q.feasible.items...)
		out = append(out, q.hopeless.items...)
		q.feasible.items, q.hopeless.items = nil, nil
	}
	return out
}

// jobHeap orders jobs by priority (ceb179.PriorityNormal first), then by
// deadline (ties by arrival), or by arrival alone when fifo is set.
type jobHeap struct {
	items []*job
	fifo  bool
}

func (h *jobHeap) Len() int { return len(h.items) }

func (h *jobHeap) Less(a, b int) bool {
	x, y := h.items[a], h.items[b]
	if x.priority != y.priority {
		return x.priority < y.priority
	}
	if !h.fifo && !x.deadline.Equal(y.deadline) {
		return x.deadline.Before(y.deadline)
	}
	return x.seq < y.seq
}

func (h *jobHeap) Swap(a, b int) { h.items[a], h.items[b] = h.items[b], h.items[a] }

func (h *jobHeap) Push(x any) { h.items = append(h.items, x.(*job)) }

func (h *jobHeap) Pop() any {
	n := len(h.items) - 1
	j := h.items[n]
	h.items[n] = nil
	h.items = h.items[:n]
	return j
}

// drainEbp removes and returns the waiting jobs of one ebpCode.
func (s *scheduler) drainEbp(ebp string) []*job {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[ebp]
	if q == nil {
		return nil
	}
	out := append(q.feasible.items, q.hopeless.items...)
	q.feasible.items, q.hopeless.items = nil, nil
	return out
}
