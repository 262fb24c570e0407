package ceb179

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLifecycle(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	due := t0.Add(Window)
	view := func(s State, edit ...func(*RequestView)) RequestView {
		v := RequestView{Request: Request{SessionID: "S", State: s, ReceivedAt: t0, Deadline: due}}
		for _, e := range edit {
			e(&v)
		}
		return v
	}
	leased := func(until time.Time) func(*RequestView) {
		return func(v *RequestView) { v.LeaseOwner, v.LeaseUntil = "inv", until }
	}
	replayed := func(at time.Time) func(*RequestView) {
		return func(v *RequestView) { v.Replays, v.LastReplayAt = 1, at }
	}
	tests := []struct {
		name string
		t    Transition
		v    RequestView
		now  time.Time
		why  string // "" when allowed, else a part of the refusal
	}{
		{"ok claim assembled", Claimable, view(StateAssembled), t0, ""},
		{"ok claim received before assemble records it", Claimable, view(StateReceived), t0, ""},
		{"fail claim received after a replay", Claimable, view(StateReceived, replayed(t0)), t0, "replayed"},
		{"ok claim signed without a lease", Claimable, view(StateSigned), t0, ""},
		{"ok claim signed whose lease ended", Claimable, view(StateSigned, leased(t0)), t0, ""},
		{"fail claim signed with a live lease", Claimable, view(StateSigned, leased(t0.Add(time.Second))), t0, "holds it until"},
		{"fail claim accepted", Claimable, view(StateAccepted), t0, "ACCEPTED"},
		{"fail claim failed", Claimable, view(StateFailed), t0, "it is FAILED"},
		{"fail claim an unknown state", Claimable, view("BOGUS"), t0, "it is BOGUS"},

		{"ok assemble received", Assemblable, view(StateReceived), t0, ""},
		{"fail assemble assembled", Assemblable, view(StateAssembled), t0, "it is ASSEMBLED"},
		{"fail assemble signed", Assemblable, view(StateSigned), t0, "it is SIGNED"},
		{"ok note assembled", Notable, view(StateAssembled), t0, ""},
		{"ok note signed", Notable, view(StateSigned), t0, ""},
		{"fail note accepted", Notable, view(StateAccepted), t0, "ACCEPTED"},
		{"fail note received", Notable, view(StateReceived), t0, "RECEIVED"},
		{"ok requeue received", Requeueable, view(StateReceived), t0, ""},
		{"fail requeue assembled", Requeueable, view(StateAssembled), t0, "ASSEMBLED"},
		{"ok resend assembled", Resendable, view(StateAssembled), t0, ""},
		{"ok resend signed", Resendable, view(StateSigned), t0, ""},
		{"fail resend received", Resendable, view(StateReceived), t0, "RECEIVED"},
		{"fail resend rejected", Resendable, view(StateRejected), t0, "REJECTED"},

		{"ok settle received", Settleable, view(StateReceived), t0, ""},
		{"ok settle assembled", Settleable, view(StateAssembled), t0, ""},
		{"ok settle signed whose lease ended", Settleable, view(StateSigned, leased(t0)), t0, ""},
		{"fail settle signed with a live lease", Settleable, view(StateSigned, leased(t0.Add(time.Minute))), t0, "holds it until"},
		{"fail settle accepted", Settleable, view(StateAccepted), t0, "ACCEPTED"},
		{"fail settle failed", Settleable, view(StateFailed), t0, "FAILED"},

		{"ok replay failed", Replayable(false), view(StateFailed), t0, ""},
		{"ok replay rejected", Replayable(false), view(StateRejected), t0, ""},
		{"ok replay no data", Replayable(false), view(StateNoData), t0, ""},
		{"ok replay invalid", Replayable(false), view(StateInvalid), t0, ""},
		{"ok replay capped", Replayable(false), view(StateCapped), t0, ""},
		{"fail replay accepted", Replayable(false), view(StateAccepted), due.Add(time.Hour), "ACCEPTED by customs"},
		{"ok replay accepted forced", Replayable(true), view(StateAccepted), t0, ""},
		{"fail replay received within its time", Replayable(false), view(StateReceived), due, "still within its time"},
		{"ok replay received past its time", Replayable(false), view(StateReceived), due.Add(time.Millisecond), ""},
		{"fail replay assembled within its time", Replayable(false), view(StateAssembled), t0, "still within its time"},
		{"ok replay assembled past its time", Replayable(false), view(StateAssembled), due.Add(time.Second), ""},
		{"fail replay signed whose lease ended, within its time", Replayable(false), view(StateSigned, leased(t0)), t0.Add(time.Second), "still within its time"},
		{"fail replay signed past due, within the late retries", Replayable(false), view(StateSigned, leased(t0)), due.Add(StuckAfter), "late retries"},
		{"ok replay signed past the late retries", Replayable(false), view(StateSigned, leased(t0)), due.Add(StuckAfter + time.Second), ""},
		{"ok replay signed whose lease ended, forced", Replayable(true), view(StateSigned, leased(t0)), t0.Add(time.Second), ""},
		{"fail replay signed with a live lease", Replayable(false), view(StateSigned, leased(due.Add(time.Hour))), due.Add(StuckAfter + time.Minute), "holds it until"},
		{"fail replay signed with a live lease, forced", Replayable(true), view(StateSigned, leased(t0.Add(time.Minute))), t0, "holds it until"},
		{"fail replay received within a replay's window", Replayable(false), view(StateReceived, replayed(due.Add(time.Hour))), due.Add(time.Hour + Window), "still within its time"},
		{"ok replay received past a replay's window", Replayable(false), view(StateReceived, replayed(due.Add(time.Hour))), due.Add(time.Hour + Window + time.Second), ""},
		{"ok replay in progress forced", Replayable(true), view(StateReceived, replayed(t0)), t0, ""},
		{"fail replay an unknown state", Replayable(true), view("BOGUS"), due.Add(time.Hour), "it is BOGUS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.t.Refusal(tt.v, tt.now, Window)
			if got := tt.t.Allows(tt.v, tt.now, Window); got != (err == nil) {
				t.Fatalf("Allows = %v, Refusal = %v", got, err)
			}
			if tt.why == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("refusal %v, want ErrRefused saying %q", err, tt.why)
			}
		})
	}
}

// TestLifecycleFinalStatesStay: no transition leaves a final state except a
// forced replay, and each transition lists a state at most once.
func TestLifecycleFinalStatesStay(t *testing.T) {
	all := []Transition{Assemblable, Claimable, Notable, Requeueable, Resendable, Settleable, Replayable(false), Replayable(true)}
	for _, tr := range all {
		seen := map[State]bool{}
		for _, f := range tr.From {
			if seen[f.State] {
				t.Errorf("%s lists %s twice", tr.Name, f.State)
			}
			seen[f.State] = true
			if f.State.Final() && tr.Name != Replayable(false).Name && tr.Name != Replayable(true).Name {
				t.Errorf("%s leaves the final state %s", tr.Name, f.State)
			}
		}
	}
	if _, ok := Replayable(false).Guard(StateAccepted); ok {
		t.Error("a replay without force leaves ACCEPTED")
	}
}

func TestDueAt(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	v := RequestView{Request: Request{Deadline: t0}}
	tests := []struct {
		name    string
		replays int
		last    time.Time
		want    time.Time
	}{
		{"ok never replayed", 0, time.Time{}, t0},
		{"ok replayed later", 1, t0.Add(time.Hour), t0.Add(time.Hour + Window)},
		{"ok replayed before the deadline", 1, t0.Add(-5 * time.Minute), t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v.Replays, v.LastReplayAt = tt.replays, tt.last
			if got := v.DueAt(Window); !got.Equal(tt.want) {
				t.Fatalf("DueAt = %s, want %s", got, tt.want)
			}
		})
	}
}
