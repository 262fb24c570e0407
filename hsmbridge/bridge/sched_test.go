package bridge

import (
	"context"
	"testing"
	"time"
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
