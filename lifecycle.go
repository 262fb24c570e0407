package ceb179

import (
	"fmt"
	"time"
)

// The request lifecycle: which states a request may leave, and on what
// condition, for each move the pipeline or an operator makes. Each move is
// a Transition, a small table of from-states. The DynamoDB adapter
// compiles these tables into its conditional writes and adds no state rule
// of its own; the operator tools ask them before they write. So there is
// one answer to "can this be claimed, replayed, settled".

// GiveUpAfter is how long after its due time a request is still worked on:
// the upload function retries unanswered posts until then, and the settler
// makes a request still open after it FAILED. A day, so that an on-prem
// bridge off for hours still uploads (late) when it is back; the sign
// queue keeps its jobs for four days, longer than that.
// UPLOAD_GIVE_UP_MINUTES changes it for both functions at once.
const GiveUpAfter = 24 * time.Hour

// StuckAfter is how long past its due time a SIGNED request may still be
// in the upload's late retries before operators count it stuck: until
// then an operator's replay needs force. The upload keeps retrying for
// longer (GiveUpAfter).
const StuckAfter = 31 * time.Minute

// Guard is what a transition asks of a request beyond its state. Guards
// combine with |: every one set must hold.
type Guard uint8

// The guards.
const (
	// LeaseEnded: no upload invocation holds a live lease on the request
	// (none was taken, or it ended at or before now).
	LeaseEnded Guard = 1 << iota
	// NeverReplayed: no operator has replayed the request.
	NeverReplayed
	// PastDue: now is after the request's due time (DueAt).
	PastDue
	// PastRetries: now is after the request's due time plus StuckAfter.
	PastRetries
)

// From is one state a transition may start from, and the guards it asks
// there.
type From struct {
	State State
	Guard Guard
}

// Transition is a named move of the lifecycle: the states a request may
// make it from. A request in any state the table does not list, an unknown
// one included, may not make it.
type Transition struct {
	// Name says what the move is, for errors and operators.
	Name string
	// From lists the states the move may start from.
	From []From
}

// open lists the states that are not final, each with guard g.
func open(g Guard) []From {
	return []From{{StateReceived, g}, {StateAssembled, g}, {StateSigned, g}}
}

// The transitions of the pipeline.
var (
	// Assemblable: assemble records what it made of a request (ASSEMBLED,
	// NO_DATA, INVALID) only while the request is RECEIVED.
	Assemblable = Transition{Name: "assemble", From: []From{{StateReceived, 0}}}
	// Claimable: an upload invocation takes the lease to post (the state
	// becomes SIGNED) from ASSEMBLED; from RECEIVED too, since assemble
	// sends the sign job just before it records ASSEMBLED and a fast signer
	// may come first, but never after a replay, whose reset to RECEIVED
	// precedes its new upload; and from SIGNED once no invocation holds it.
	Claimable = Transition{Name: "claim the upload", From: []From{
		{StateAssembled, 0}, {StateReceived, NeverReplayed}, {StateSigned, LeaseEnded}}}
	// Notable: the upload records why it did not post (a refused
	// signature) while the request waits for its upload.
	Notable = Transition{Name: "note the upload", From: []From{{StateAssembled, 0}, {StateSigned, 0}}}
	// Requeueable: the settler queues a request for assembly (again) while
	// it is RECEIVED.
	Requeueable = Transition{Name: "queue for assembly", From: []From{{StateReceived, 0}}}
	// Resendable: the settler sends a dead-lettered sign job again while
	// the request waits for its upload.
	Resendable = Transition{Name: "send the sign job again", From: []From{{StateAssembled, 0}, {StateSigned, 0}}}
	// Settleable: the settler makes a request FAILED past its give-up
	// window from any state that is not final, once no upload invocation
	// holds it.
	Settleable = Transition{Name: "settle FAILED", From: open(LeaseEnded)}
)

var (
	replayable = Transition{Name: "replay", From: append([]From{
		{StateNoData, 0}, {StateInvalid, 0}, {StateRejected, 0}, {StateFailed, 0}, {StateCapped, 0}},
		From{StateReceived, LeaseEnded | PastDue}, From{StateAssembled, LeaseEnded | PastDue},
		From{StateSigned, LeaseEnded | PastRetries})}
	replayableForced = Transition{Name: "replay (forced)", From: append([]From{
		{StateNoData, 0}, {StateInvalid, 0}, {StateRejected, 0}, {StateFailed, 0}, {StateCapped, 0}, {StateAccepted, 0}},
		open(LeaseEnded)...)}
)

// Replayable is an operator's replay: from every final state but ACCEPTED
// (customs refuses a sessionID it already stored), and from a state not
// final once the request is stuck (past its due time; when SIGNED, past
// StuckAfter more). With force, from every state, ACCEPTED and one in
// progress included. Never while an upload invocation holds a live lease:
// force does not change that.
func Replayable(force bool) Transition {
	if force {
		return replayableForced
	}
	return replayable
}

// DueAt is when the request's upload is due: its deadline, or window after
// an operator's last replay when that is later.
func (v RequestView) DueAt(window time.Duration) time.Time {
	d := v.Deadline
	if v.Replays > 0 && v.LastReplayAt.Add(window).After(d) {
		d = v.LastReplayAt.Add(window)
	}
	return d
}

// Guard returns the guards t asks of a request in state s, and whether t
// may start from s at all.
func (t Transition) Guard(s State) (Guard, bool) {
	for _, f := range t.From {
		if f.State == s {
			return f.Guard, true
		}
	}
	return 0, false
}

// Allows reports whether v may make the transition at now; window sets
// the due time after a replay (ceb179.Window in production).
func (t Transition) Allows(v RequestView, now time.Time, window time.Duration) bool {
	return t.Refusal(v, now, window) == nil
}

// Refusal returns nil when v may make the transition at now, and
// otherwise an error wrapping ErrRefused that says why, for operators.
func (t Transition) Refusal(v RequestView, now time.Time, window time.Duration) error {
	g, ok := t.Guard(v.State)
	if !ok {
		why := "it is " + string(v.State)
		if v.State == StateAccepted {
			why = "it was ACCEPTED by customs, which refuses a sessionID it already stored"
		}
		return fmt.Errorf("cannot %s: %s: %w", t.Name, why, ErrRefused)
	}
	due := v.DueAt(window)
	switch {
	case g&LeaseEnded != 0 && v.LeaseUntil.After(now):
		return fmt.Errorf("cannot %s: an upload invocation holds it until %s: %w", t.Name, v.LeaseUntil.UTC().Format(time.RFC3339), ErrRefused)
	case g&NeverReplayed != 0 && v.Replays > 0:
		return fmt.Errorf("cannot %s: an operator replayed it: %w", t.Name, ErrRefused)
	case g&PastDue != 0 && !now.After(due):
		return fmt.Errorf("cannot %s: it is %s and still within its time (due %s): %w", t.Name, v.State, due.UTC().Format(time.RFC3339), ErrRefused)
	case g&PastRetries != 0 && !now.After(due.Add(StuckAfter)):
		return fmt.Errorf("cannot %s: it is %s and still within its time (due %s, late retries until %s): %w", t.Name, v.State,
			due.UTC().Format(time.RFC3339), due.Add(StuckAfter).UTC().Format(time.RFC3339), ErrRefused)
	}
	return nil
}
