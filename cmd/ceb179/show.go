package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/ceb179/ceb179/internal/ops"
)

var showCommand = command{
	name:    "show",
	summary: "the whole trail of a request by sessionID or orderNo: request, assembly, sign job, uploads, customs' answers",
	run:     runShow,
}

func runShow(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var t opsTarget
	fs := newFlagSet("show", "[--local [--data DIR]] [--json] SESSION|ORDER", `
Shows everything recorded about a customs request: the request, its
assembly (ebpCode, guid, upload serviceTime, digest; never the payment
data), the sign job, each upload attempt with customs' answer, replays,
and the state now with its reason. Given an orderNo, it shows every
request customs made for that order.

Exit 0 when found; 1 when no request has that sessionID or orderNo.`)
	t.addFlags(fs)
	pos, code, ok := fs.parse(args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return fs.usageError(stderr, "exactly one SESSION or ORDER")
	}
	e, err := t.open(ctx)
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	trails, err := e.service.Trails(ctx, pos[0])
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	if t.json {
		if err := writeJSON(stdout, trails); err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
		return exitOK
	}
	for i, tr := range trails {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printTrail(stdout, tr)
	}
	return exitOK
}

// printTrail writes one trail for people.
func printTrail(w io.Writer, tr ops.Trail) {
	r := tr.Request
	fmt.Fprintf(w, "session %s  order %s  %s (%s)\n", r.SessionID, r.OrderNo, r.State, tr.Outcome)
	fmt.Fprintf(w, "  received %s  deadline %s  from %s\n", clockTime(r.ReceivedAt), clockTime(r.Deadline), r.SourceIP)
	if r.Reason != "" {
		fmt.Fprintf(w, "  reason   %s\n", r.Reason)
	}
	if a := tr.Assembled; a != nil {
		fmt.Fprintf(w, "  assembly ebpCode %s  guid %s  serviceTime %s  replay %d\n", a.EbpCode, a.GUID, a.ServiceTime, a.Replay)
		fmt.Fprintf(w, "  sign job digest %s  due %s\n", a.SignJob.Digest, clockTime(a.Deadline))
	}
	if r.Replays > 0 {
		fmt.Fprintf(w, "  replays  %d, last by %s at %s: %s\n", r.Replays, r.LastReplayBy, clockTime(r.LastReplayAt), r.LastReplayWhy)
	}
	fmt.Fprintln(w, "\n  trail:")
	for _, e := range tr.Events {
		fmt.Fprintf(w, "  %s  %s\n", clockTime(e.At), e.What)
	}
	if len(tr.Attempts) > 0 {
		fmt.Fprintln(w, "\n  upload attempts:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  sent\tattempt\toutcome\tHTTP\tcode\tmessage\terror\tlatency\tbody digest\t")
		for i, a := range tr.Attempts {
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%s\t%s\t%s\t%d ms\t%s\t\n", clockTime(a.At), i+1, a.Outcome, a.HTTPStatus, a.Code, oneLine(a.Message, 60), a.Error, a.LatencyMs, a.BodyDigest)
		}
		tw.Flush()
	}
}
