package assemble_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
)

// TestReplay checks that a replay message (ceb179.AssembleMessage.Replay)
// assembles a session again: a new pending upload with the replay number,
// a new serviceTime and the replay's own deadline, and one new sign job; a
// message without replay for the same session changes nothing.
func TestReplay(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	ctx := context.Background()
	b.record(t, fixture(t, "single.json"))
	const sid = "replay-0001"
	b.request(t, sid, "ord201903040001")
	if failed := b.handle(t, b.deliver(t, time.Second)); len(failed) != 0 {
		t.Fatalf("failed: %v", failed)
	}
	first, err := b.store.GetPending(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b.jobs(t)); n != 1 {
		t.Fatalf("%d sign jobs after the first assembly, want 1", n)
	}
	if err := b.store.SetState(ctx, sid, ceb179.StateRejected, "customs 20000: test",
		ceb179.Transition{Name: "customs rejects the upload", From: []ceb179.From{{State: ceb179.StateAssembled}}}); err != nil {
		t.Fatal(err)
	}

	// An operator replays the session an hour later.
	b.now = received.Add(time.Hour)
	v, err := b.store.BeginReplay(ctx, ceb179.Replay{SessionID: sid, By: "ops", Why: "test", At: b.now})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		replay   int
		wantJobs int
	}{
		{"ok replay assembles again", v.Replays, 1},
		{"ok repeated replay delivery sends nothing", v.Replays, 0},
		{"ok late original message sends nothing", 0, 0},
	}
	deadline := b.now.Add(ceb179.Window)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := ceb179.AssembleMessage{SessionID: sid, OrderNo: "ord201903040001", ReceivedAt: received.UnixMilli(), Deadline: deadline.UnixMilli(), Replay: tt.replay}
			if err := b.assemble.Send(ctx, msg); err != nil {
				t.Fatal(err)
			}
			if failed := b.handle(t, b.deliver(t, time.Second)); len(failed) != 0 {
				t.Fatalf("failed: %v", failed)
			}
			if n := len(b.jobs(t)); n != tt.wantJobs {
				t.Fatalf("%d sign jobs, want %d", n, tt.wantJobs)
			}
			p, err := b.store.GetPending(ctx, sid)
			if err != nil {
				t.Fatal(err)
			}
			if p.Replay != v.Replays || p.ServiceTime != strconv.FormatInt(b.now.UnixMilli(), 10) || p.ServiceTime == first.ServiceTime {
				t.Errorf("pending replay %d serviceTime %s (first %s)", p.Replay, p.ServiceTime, first.ServiceTime)
			}
			if !p.Deadline.Equal(deadline) || p.Digest == first.Digest || p.GUID != first.GUID {
				t.Errorf("pending deadline %v digest changed %v guid kept %v", p.Deadline, p.Digest != first.Digest, p.GUID == first.GUID)
			}
			if st, _ := b.state(t, sid); st != ceb179.StateAssembled {
				t.Errorf("state %s, want ASSEMBLED", st)
			}
		})
	}
	// The request keeps customs' own deadline; the replay is recorded.
	r, err := b.store.GetRequestView(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Deadline.Equal(received.Add(ceb179.Window)) || r.Replays != 1 || r.LastReplayBy != "ops" || !r.LastReplayAt.Equal(b.now) {
		t.Errorf("request after replay: %+v", r)
	}
}
