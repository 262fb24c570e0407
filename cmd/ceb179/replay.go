package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ceb179/ceb179/internal/clock"
	"github.com/ceb179/ceb179/internal/ops"
)

var replayCommand = command{
	name:    "replay",
	summary: "assemble, sign and upload a request again with a new serviceTime (recorded as a replay)",
	run:     runReplay,
}

func runReplay(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var t opsTarget
	fs := newFlagSet("replay", "[--local [--data DIR]] --why TEXT [--by NAME] [--force] [--wait DURATION] [--json] SESSION", `
Replays a customs request that did not end ACCEPTED (FAILED, REJECTED,
NO_DATA, INVALID, or stuck): resets it, records the replay on the request
(who, when, why; the replays counter), and queues it for assembly with the
replay number, so that it is assembled with a new upload serviceTime,
signed and uploaded again within a new two-minute window. customs' own
deadline stays as it was: a replayed request counts as late.

customs refuses a sessionID it already stored (入库失败), so an ACCEPTED
request is refused unless --force; so is a request still within its time.

--wait waits up to DURATION for the replay to reach a final state and
prints it. Exit 0 when queued (with --wait: when it ended ACCEPTED); 1 when
refused, not found or failed; 2 on usage errors.`)
	t.addFlags(fs)
	why := fs.String("why", "", "why the request is replayed (recorded)")
	by := fs.String("by", cmp.Or(os.Getenv("USER"), os.Getenv("USERNAME")), "who replays it (recorded; default the login name, USER or on Windows USERNAME)")
	force := fs.Bool("force", false, "replay even an ACCEPTED request or one still in progress")
	wait := fs.Duration("wait", 0, "wait up to this long for the outcome (e.g. 3m)")
	pos, code, ok := fs.parse(args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return fs.usageError(stderr, "exactly one SESSION")
	}
	if *why == "" {
		return fs.usageError(stderr, "--why is required: the reason is recorded")
	}
	if *by == "" {
		*by = "operator"
	}
	if *wait < 0 || *wait > time.Hour {
		return fs.usageError(stderr, "--wait must be 0..1h")
	}
	e, err := t.open(ctx)
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	res, err := e.service.Replay(ctx, ops.ReplayRequest{SessionID: pos[0], By: *by, Why: *why, Force: *force})
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	var final *ops.Trail
	if *wait > 0 {
		tr, err := waitFinal(ctx, e.service, res.SessionID, *wait)
		if err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
		final = &tr
	}
	if t.json {
		out := struct {
			ops.ReplayResult
			Final *ops.Trail `json:"final,omitempty"`
		}{res, final}
		if err := writeJSON(stdout, out); err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
	} else {
		fmt.Fprintf(stdout, "replay %d of session %s (order %s, was %s) queued for assembly; due by %s\n",
			res.Replay, res.SessionID, res.OrderNo, res.PreviousState, clockTime(res.Deadline))
		if final != nil {
			fmt.Fprintf(stdout, "now %s (%s)", final.Request.State, final.Outcome)
			if final.Request.Reason != "" {
				fmt.Fprintf(stdout, ": %s", final.Request.Reason)
			}
			fmt.Fprintln(stdout)
		} else {
			fmt.Fprintf(stdout, "follow it with: ceb179 show %s\n", res.SessionID)
		}
	}
	if final != nil && final.Request.State != "ACCEPTED" {
		return exitFail
	}
	return exitOK
}

// waitFinal polls the session's trail until its state is final or wait
// has passed (then it returns the trail as it stands).
func waitFinal(ctx context.Context, s *ops.Service, sessionID string, wait time.Duration) (ops.Trail, error) {
	until := time.Now().Add(wait)
	for {
		tr, err := s.Trail(ctx, sessionID)
		if err != nil {
			return ops.Trail{}, err
		}
		if tr.Request.State.Final() || !time.Now().Before(until) {
			if !tr.Request.State.Final() {
				return tr, fmt.Errorf("session %s still %s after %s: %w", sessionID, tr.Request.State, wait, errNotYet)
			}
			return tr, nil
		}
		if err := clock.Sleep(ctx, 250*time.Millisecond); err != nil {
			return ops.Trail{}, err
		}
	}
}

// errNotYet: the replay did not finish within --wait.
var errNotYet = errors.New("not final yet")
