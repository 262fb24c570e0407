package bridge

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/ceb179/ceb179"
)

func TestSchedulerOrder(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	for _, tc := range []struct {
		name      string
		policy    Policy
		now       int   // seconds after base
		need      int   // seconds a signature plus upload takes
		deadlines []int // in push order, seconds after base
		want      []int // deadlines in pop order
	}{
		{"ok EDF earliest deadline first", EDF, 0, 1, []int{30, 10, 20}, []int{10, 20, 30}},
		{"ok EDF hopeless jobs last", EDF, 15, 1, []int{30, 10, 20, 14}, []int{20, 30, 10, 14}},
		{"ok EDF job needing more than its slack is hopeless", EDF, 15, 10, []int{24, 26, 40}, []int{26, 40, 24}},
		{"ok EDF all hopeless served by deadline", EDF, 100, 1, []int{30, 10, 20}, []int{10, 20, 30}},
		{"ok FIFO arrival order", FIFO, 15, 1, []int{30, 10, 20, 14}, []int{30, 10, 20, 14}},
		{"ok EDF ties by arrival", EDF, 0, 1, []int{20, 20, 10}, []int{10, 20, 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScheduler(tc.policy, func() time.Time { return at(tc.now) })
			var pushed []*job
			for _, d := range tc.deadlines {
				j := &job{ebpCode: "E", deadline: at(d)}
				pushed = append(pushed, j)
				s.push(j)
			}
			var got []int
			for range tc.deadlines {
				j, err := s.next(context.Background(), "E", time.Duration(tc.need)*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, int(j.deadline.Sub(base)/time.Second))
			}
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Fatalf("pop order %v, want %v", got, tc.want)
				}
			}
			if tc.name == "ok EDF ties by arrival" {
				j0, j1 := pushed[0], pushed[1]
				if j0.seq >= j1.seq {
					t.Errorf("arrival sequence not kept")
				}
			}
		})
	}
}

func TestSchedulerSeparatesEbpCodes(t *testing.T) {
	s := newScheduler(EDF, time.Now)
	s.push(&job{ebpCode: "A", deadline: time.Now().Add(time.Minute)})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if j, err := s.next(ctx, "B", 0); err == nil {
		t.Fatalf("signer of B got a job of %s", j.ebpCode)
	}
	if j, err := s.next(context.Background(), "A", 0); err != nil || j.ebpCode != "A" {
		t.Fatalf("next(A) = %v, %v", j, err)
	}
}

func TestSchedulerWakesWaiter(t *testing.T) {
	s := newScheduler(EDF, time.Now)
	got := make(chan *job)
	go func() {
		j, _ := s.next(context.Background(), "A", 0)
		got <- j
	}()
	time.Sleep(20 * time.Millisecond)
	s.push(&job{ebpCode: "A", sessionID: "x", deadline: time.Now().Add(time.Minute)})
	select {
	case j := <-got:
		if j.sessionID != "x" {
			t.Errorf("got %s", j.sessionID)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("waiter not woken")
	}
}

func TestSchedulerPriority(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	type pj struct {
		deadline int
		low      bool
	}
	for _, tc := range []struct {
		name   string
		policy Policy
		now    int
		jobs   []pj  // in push order
		want   []int // deadlines in pop order
	}{
		{"ok over-cap job after the others despite its earlier deadline", EDF, 0, []pj{{10, true}, {30, false}, {20, false}}, []int{20, 30, 10}},
		{"ok late in-cap job before a feasible over-cap one", EDF, 15, []pj{{30, true}, {14, false}, {20, false}}, []int{20, 14, 30}},
		{"ok over-cap jobs among themselves earliest deadline first", EDF, 0, []pj{{40, true}, {20, true}, {30, false}}, []int{30, 20, 40}},
		{"ok hopeless over-cap job last of all", EDF, 15, []pj{{12, true}, {40, true}, {14, false}}, []int{14, 40, 12}},
		{"ok FIFO priority first, then arrival", FIFO, 0, []pj{{10, true}, {30, false}, {20, false}}, []int{30, 20, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScheduler(tc.policy, func() time.Time { return at(tc.now) })
			for _, p := range tc.jobs {
				j := &job{ebpCode: "E", deadline: at(p.deadline)}
				if p.low {
					j.priority = ceb179.PriorityLow
				}
				s.push(j)
			}
			var got []int
			for range tc.jobs {
				j, err := s.next(context.Background(), "E", time.Second)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, int(j.deadline.Sub(base)/time.Second))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("pop order %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSchedulerPriorityProperty: whatever the jobs, their deadlines, the
// time and the order they arrive in, interleaved with signing, no job is
// handed to a signer while a job of a higher priority waits, and every
// job is handed out exactly once.
func TestSchedulerPriorityProperty(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rapid.Check(t, func(rt *rapid.T) {
		now := base
		policy := rapid.SampledFrom([]Policy{EDF, FIFO}).Draw(rt, "policy")
		s := newScheduler(policy, func() time.Time { return now })
		need := time.Duration(rapid.IntRange(0, 20).Draw(rt, "need")) * time.Second
		waiting := map[*job]bool{}
		pushed := 0
		for step := range rapid.IntRange(1, 60).Draw(rt, "steps") {
			if rapid.Bool().Draw(rt, fmt.Sprintf("push%d", step)) || len(waiting) == 0 {
				j := &job{ebpCode: "E", sessionID: fmt.Sprint(pushed),
					deadline: base.Add(time.Duration(rapid.IntRange(0, 120).Draw(rt, "deadline")) * time.Second),
					priority: ceb179.Priority(rapid.IntRange(0, 1).Draw(rt, "priority"))}
				pushed++
				waiting[j] = true
				s.push(j)
				continue
			}
			now = now.Add(time.Duration(rapid.IntRange(0, 10).Draw(rt, "elapse")) * time.Second)
			j, err := s.next(context.Background(), "E", need)
			if err != nil {
				rt.Fatal(err)
			}
			if !waiting[j] {
				rt.Fatalf("job %s handed out twice or never pushed", j.sessionID)
			}
			delete(waiting, j)
			for w := range waiting {
				if w.priority < j.priority {
					rt.Fatalf("job %s of priority %s handed out while job %s of priority %s waits", j.sessionID, j.priority, w.sessionID, w.priority)
				}
			}
		}
	})
}
