package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/ceb179/ceb179/internal/ops"
)

var dlqCommand = command{
	name:    "dlq",
	summary: "list the dead-letter queues without losing messages, or redrive them to their source queues",
	run:     runDLQ,
}

// dlqAbout is the help text of `ceb179 dlq`.
const dlqAbout = `
dlq list shows the messages in the dead-letter queues of the assemble and
sign queues, with the present state of each message's session. It removes
nothing: it receives the messages with a 30-second visibility timeout and
makes each visible again as soon as it has listed them (if it is
interrupted they reappear on their own within 30 s). Each listing counts
as one receive of every message listed.

dlq redrive moves the messages back to their source queue: each message
is sent to the source queue first and deleted from the dead-letter queue
after, so an interruption may leave a duplicate (the pipeline handles a
message twice harmlessly) but never loses one. Sign jobs made stale by a
replay (their digest is no longer the session's) are deleted instead:
their signature would be refused.

The dead-letter queues are found through the source queues' redrive
policies (ASSEMBLE_QUEUE_URL, SIGN_QUEUE_URL; or ASSEMBLE_DLQ_URL,
SIGN_DLQ_URL). Exit 0 on success, 1 on failure, 2 on usage errors.`

func runDLQ(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var t opsTarget
	fs := newFlagSet("dlq", "list|redrive [--queue assemble|sign|all] [--max N] [--local [--data DIR]] [--json]", dlqAbout)
	t.addFlags(fs)
	which := fs.String("queue", "all", "assemble, sign or all")
	maxN := fs.Int("max", 1000, "at most this many messages per queue")
	pos, code, ok := fs.parse(args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 || (pos[0] != "list" && pos[0] != "redrive") {
		return fs.usageError(stderr, "say list or redrive")
	}
	names := map[string][]string{"all": {"assemble", "sign"}, "assemble": {"assemble"}, "sign": {"sign"}}[*which]
	if names == nil {
		return fs.usageError(stderr, "--queue must be assemble, sign or all")
	}
	if *maxN < 1 || *maxN > 100000 {
		return fs.usageError(stderr, "--max must be 1..100000")
	}
	e, err := t.open(ctx)
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	if pos[0] == "list" {
		listed, err := listDLQ(ctx, e, names, *maxN)
		if err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
		if t.json {
			if err := writeJSON(stdout, listed); err != nil {
				return fail(stderr, fs.name, exitFail, err)
			}
			return exitOK
		}
		printDLQ(stdout, listed)
		return exitOK
	}
	moved, err := redriveDLQ(ctx, e, names, *maxN, stdout)
	if err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	if t.json {
		if err := writeJSON(stdout, moved); err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
		return exitOK
	}
	printRedrive(stdout, moved)
	return exitOK
}

// listDLQ lists up to maxN messages of each named dead-letter queue, with
// the present state of their sessions; never nil.
func listDLQ(ctx context.Context, e *opsEnv, names []string, maxN int) ([]ops.DLQMessage, error) {
	listed := []ops.DLQMessage{}
	for _, name := range names {
		q, err := e.dlq(ctx, name)
		if err != nil {
			return nil, err
		}
		msgs, err := q.List(ctx, maxN)
		if err != nil {
			return nil, err
		}
		if err := e.service.Annotate(ctx, msgs); err != nil {
			return nil, err
		}
		listed = append(listed, msgs...)
	}
	return listed, nil
}

// printDLQ prints the listed messages as a table.
func printDLQ(stdout io.Writer, listed []ops.DLQMessage) {
	if len(listed) == 0 {
		fmt.Fprintln(stdout, "dead-letter queues empty")
		return
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "queue\tsent\tsessionID\tstate now\treceives\tdeadline\tdigest\t")
	for _, m := range listed {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t\n", m.Queue, clockTime(m.SentAt), m.SessionID, m.State, m.ReceiveCount, clockTime(m.Deadline), shortDigest(m.Digest))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d messages; nothing removed (`ceb179 dlq redrive` moves them back)\n", len(listed))
}

// redriveDLQ moves up to maxN messages of each named dead-letter queue
// back to its source queue; stale sign jobs are deleted instead. When a
// redrive fails it prints what was moved until then to stdout.
func redriveDLQ(ctx context.Context, e *opsEnv, names []string, maxN int, stdout io.Writer) ([]ops.RedriveResult, error) {
	var moved []ops.RedriveResult
	for _, name := range names {
		q, err := e.dlq(ctx, name)
		if err != nil {
			return nil, err
		}
		var keep func(ops.DLQMessage) (bool, string)
		if name == "sign" {
			keep = e.service.KeepSignJob(ctx)
		}
		res, err := q.Redrive(ctx, maxN, keep)
		moved = append(moved, res)
		if err != nil {
			printRedrive(stdout, moved)
			return nil, err
		}
	}
	return moved, nil
}

func printRedrive(w io.Writer, res []ops.RedriveResult) {
	for _, r := range res {
		fmt.Fprintf(w, "%s: %d moved back to the %s queue, %d stale dropped\n", r.Queue, r.Moved, r.Queue, r.Dropped)
		for _, m := range r.Messages {
			if m.State != "" {
				fmt.Fprintf(w, "  dropped %s: %s\n", m.SessionID, m.State)
			}
		}
	}
}

func shortDigest(d string) string {
	if len(d) > 12 {
		return d[:12] + "…"
	}
	return d
}
