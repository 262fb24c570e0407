package settle_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/ops"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/settle"
)

// bed is the settler over emulated tables and queues, with a clock the
// test moves.
type bed struct {
	store          *dynamo.Store
	assemble, sign *queue.Queue
	dead           *queue.Queue
	now            time.Time
	metrics        *metrics.Recorder
	settler        *settle.Settler
}

func newBed(t *testing.T) *bed {
	t.Helper()
	return newBedOn(t, awstest.New(t))
}

// newBedOn is newBed over the tables and queues of env.
func newBedOn(t *testing.T, env *awstest.Env) *bed {
	t.Helper()
	b := &bed{
		store:    dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")}, 0),
		assemble: queue.New(env.SQS, env.Queue("AssembleQueue")),
		sign:     queue.New(env.SQS, env.Queue("SignQueue")),
		dead:     queue.New(env.SQS, env.Queue("SignDeadLetterQueue")),
		now:      time.Now(),
		metrics:  metrics.New("settle", nil),
	}
	b.settler = settle.New(b.store, b.assemble, b.sign, b.dead,
		settle.WithClock(func() time.Time { return b.now }),
		settle.WithGiveUp(time.Hour),
		settle.WithMetrics(b.metrics),
		settle.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	return b
}

// request records a request received at the bed's clock in state st.
func (b *bed) request(t *testing.T, id string, st ceb179.State, enqueued bool) ceb179.Request {
	t.Helper()
	r := ceb179.Request{SessionID: id, OrderNo: "ORD-" + id, ServiceTime: b.now.UnixMilli(), ReceivedAt: b.now,
		Deadline: b.now.Add(ceb179.Window), State: st, Enqueued: enqueued}
	if _, _, err := b.store.CreateRequest(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// pending stores a pending upload and returns its sign job.
func (b *bed) pending(t *testing.T, r ceb179.Request) ceb179.SignJob {
	t.Helper()
	p := ceb179.Pending{SessionID: r.SessionID, EbpCode: "EBP1", GUID: "G", Head: []byte(`{}`), Lists: []byte(`[]`),
		ServiceTime: "1", Digest: "digest-" + r.SessionID, Deadline: r.Deadline, CreatedAt: r.ReceivedAt}
	if _, _, err := b.store.CreatePending(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return ceb179.SignJob{SessionID: r.SessionID, EbpCode: "EBP1", Deadline: r.Deadline.UnixMilli(), Digest: p.Digest}
}

func (b *bed) run(t *testing.T) settle.Report {
	t.Helper()
	rep, err := b.settler.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func (b *bed) view(t *testing.T, id string) ceb179.RequestView {
	t.Helper()
	v, err := b.store.GetRequestView(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// drain receives every visible message of q.
func drain(t *testing.T, q *queue.Queue) []string {
	t.Helper()
	var bodies []string
	for {
		msgs, err := q.Receive(context.Background(), 10, time.Second, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return bodies
		}
		for _, m := range msgs {
			bodies = append(bodies, m.Body)
			if err := q.Delete(context.Background(), m.ReceiptHandle); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestSettleUnqueuedRequest(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	b.request(t, "not-queued", ceb179.StateReceived, false)
	b.request(t, "queued", ceb179.StateReceived, true)
	if rep := b.run(t); rep.Queued != 0 {
		t.Fatalf("queued %d inside the grace", rep.Queued)
	}
	b.now = b.now.Add(settle.DefaultGrace + time.Second)
	if rep := b.run(t); rep.Queued != 1 || rep.Scanned != 2 {
		t.Fatalf("report %+v, want the unqueued one queued", rep)
	}
	msgs := drain(t, b.assemble)
	if len(msgs) != 1 || !strings.Contains(msgs[0], `"sessionID":"not-queued"`) {
		t.Fatalf("assemble queue %v", msgs)
	}
	v := b.view(t, "not-queued")
	if !v.Enqueued || v.Settles != 1 || !strings.Contains(v.LastSettleWhy, "queued for assembly") {
		t.Errorf("view %+v", v)
	}
	// Idempotent: the next run queues nothing more.
	if rep := b.run(t); rep.Queued != 0 {
		t.Errorf("second run queued %d", rep.Queued)
	}
	if msgs := drain(t, b.assemble); len(msgs) != 0 {
		t.Errorf("assemble queue %v after the second run", msgs)
	}
	// Still RECEIVED well past the deadline: queued again, once.
	b.now = b.now.Add(ceb179.Window + settle.DefaultStuckAfter + time.Second)
	rep := b.run(t)
	if rep.Queued != 2 || rep.Stuck != 2 {
		t.Errorf("report %+v, want both stuck requests queued again", rep)
	}
	if rep := b.run(t); rep.Queued != 0 {
		t.Errorf("queued again at once: %+v", rep)
	}
	if b.metrics.Total(settle.MetricStuck) != 4 {
		t.Errorf("StuckPastDeadline total %v", b.metrics.Total(settle.MetricStuck))
	}
}

func TestSettleDeadLetteredSignJobs(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	ctx := context.Background()
	live := b.request(t, "live", ceb179.StateAssembled, true)
	liveJob := b.pending(t, live)
	done := b.request(t, "done", ceb179.StateAccepted, true)
	doneJob := b.pending(t, done)
	stale := b.request(t, "stale", ceb179.StateSigned, true)
	staleJob := b.pending(t, stale)
	staleJob.Digest = "an-older-digest"
	for _, j := range []ceb179.SignJob{liveJob, doneJob, staleJob} {
		if err := b.dead.Send(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.dead.Send(ctx, "not a job"); err != nil {
		t.Fatal(err)
	}
	rep := b.run(t)
	if rep.Resent != 1 || rep.Dropped != 2 {
		t.Fatalf("report %+v, want one resent and two dropped", rep)
	}
	msgs := drain(t, b.sign)
	var got ceb179.SignJob
	if len(msgs) != 1 || json.Unmarshal([]byte(msgs[0]), &got) != nil || got != liveJob {
		t.Fatalf("sign queue %v, want the live job unchanged", msgs)
	}
	if v := b.view(t, "live"); v.Settles != 1 || !strings.Contains(v.LastSettleWhy, "sign job sent again") || v.State != ceb179.StateAssembled {
		t.Errorf("view %+v", v)
	}
	// The malformed message is left for an operator.
	if left := drain(t, b.dead); len(left) != 1 || left[0] != `"not a job"` {
		t.Errorf("dead letters left %v", left)
	}
}

func TestSettleGiveUp(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	ctx := context.Background()
	asm := b.request(t, "assembled", ceb179.StateAssembled, true)
	asmJob := b.pending(t, asm)
	held := b.request(t, "held", ceb179.StateAssembled, true)
	b.pending(t, held)
	b.request(t, "received", ceb179.StateReceived, true)

	// Past the give-up window; an upload invocation holds "held" right now.
	b.now = b.now.Add(ceb179.Window + time.Hour + 3*time.Minute)
	if _, err := b.store.ClaimUpload(ctx, "held", "owner", b.now, b.now.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := b.dead.Send(ctx, asmJob); err != nil {
		t.Fatal(err)
	}
	rep := b.run(t)
	if rep.Failed != 2 || rep.Resent != 0 {
		t.Fatalf("report %+v, want two FAILED and nothing resent", rep)
	}
	for _, id := range []string{"assembled", "received"} {
		v := b.view(t, id)
		if v.State != ceb179.StateFailed || !strings.Contains(v.Reason, "settled FAILED: not uploaded by") || v.Settles != 1 {
			t.Errorf("%s: %s %q settles %d", id, v.State, v.Reason, v.Settles)
		}
	}
	if v := b.view(t, "held"); v.State != ceb179.StateSigned {
		t.Errorf("held: %s, want SIGNED while its lease lives", v.State)
	}
	if msgs := drain(t, b.sign); len(msgs) != 0 {
		t.Errorf("sign queue %v", msgs)
	}
	// After the lease, the held one is settled too; nothing else changes.
	b.now = b.now.Add(time.Minute)
	if rep := b.run(t); rep.Failed != 1 {
		t.Errorf("report %+v, want the held one FAILED", rep)
	}
	if v := b.view(t, "assembled"); v.Settles != 1 {
		t.Errorf("settled twice: %d", v.Settles)
	}
}

func TestSettleLimit(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	for _, id := range []string{"a", "b", "c"} {
		b.request(t, id, ceb179.StateReceived, false)
	}
	b.settler = settle.New(b.store, b.assemble, b.sign, b.dead,
		settle.WithClock(func() time.Time { return b.now }), settle.WithLimits(2, 10),
		settle.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	b.now = b.now.Add(time.Minute)
	if rep := b.run(t); rep.Queued != 2 || !rep.Truncated {
		t.Fatalf("report %+v, want two queued and the run truncated", rep)
	}
	if rep := b.run(t); rep.Queued != 1 || rep.Truncated {
		t.Fatalf("report %+v, want the last one queued", rep)
	}
}

// TestSettleBackfillsEarlierRequests: requests recorded by a version
// without the open index lack its attribute. Until the backfill, the
// status still counts such a request as stuck; the settler's first run
// puts the open ones into the index and settles them, and leaves the final
// ones out.
func TestSettleBackfillsEarlierRequests(t *testing.T) {
	t.Parallel()
	env := awstest.New(t)
	b := newBedOn(t, env)
	ctx := context.Background()
	table := env.Table("RequestsTable")
	legacy := func(id string, st ceb179.State, received time.Time, enqueued bool) {
		t.Helper()
		ms := func(t time.Time) types.AttributeValue {
			return &types.AttributeValueMemberN{Value: strconv.FormatInt(t.UnixMilli(), 10)}
		}
		_, err := env.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"sessionID": &types.AttributeValueMemberS{Value: id}, "sk": &types.AttributeValueMemberS{Value: "REQUEST"},
			"orderNo": &types.AttributeValueMemberS{Value: "ORD-" + id}, "serviceTime": ms(received), "receivedAt": ms(received),
			"sourceIP": &types.AttributeValueMemberS{Value: "203.0.113.9"}, "deadline": ms(received.Add(ceb179.Window)),
			"day": &types.AttributeValueMemberS{Value: ceb179.Day(received)}, "state": &types.AttributeValueMemberS{Value: string(st)},
			"enqueued": &types.AttributeValueMemberBOOL{Value: enqueued}, "expiresAt": &types.AttributeValueMemberN{Value: "4102444800"},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	legacy("old-unqueued", ceb179.StateReceived, b.now.Add(-10*time.Minute), false)
	legacy("old-assembled", ceb179.StateAssembled, b.now.Add(-2*time.Hour), true)
	legacy("old-accepted", ceb179.StateAccepted, b.now.Add(-3*time.Minute), true)

	// Before the backfill the status counts the open ones as stuck.
	stuck := 0
	for _, id := range []string{"old-unqueued", "old-assembled", "old-accepted"} {
		if ops.OutcomeOf(b.view(t, id), b.now) == ops.OutcomeStuck {
			stuck++
		}
	}
	if stuck != 2 {
		t.Fatalf("status counts %d of the earlier version's requests stuck, want the 2 open ones", stuck)
	}

	rep := b.run(t)
	if rep.Backfilled != 2 || rep.Queued != 1 || rep.Failed != 1 || rep.Errors != 0 {
		t.Fatalf("report %+v, want 2 backfilled, 1 queued and 1 FAILED", rep)
	}
	if v := b.view(t, "old-unqueued"); !v.Enqueued || v.Settles != 1 {
		t.Errorf("old-unqueued: %+v", v)
	}
	if v := b.view(t, "old-assembled"); v.State != ceb179.StateFailed {
		t.Errorf("old-assembled: %s, want FAILED past the give-up window", v.State)
	}
	if v := b.view(t, "old-accepted"); v.Settles != 0 {
		t.Errorf("old-accepted settled %d times", v.Settles)
	}
	// The backfill is done: later runs read its marker only.
	if rep := b.run(t); rep.Backfilled != 0 || rep.Truncated {
		t.Errorf("second run %+v", rep)
	}
}

// TestSettleFindsReplayOfAnyDay: an operator replays a request received
// days ago, and its assemble message is lost. The settler finds it in the
// open index like any other and queues it again once it is stuck past the
// replay's own deadline, whatever day it was received.
func TestSettleFindsReplayOfAnyDay(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	ctx := context.Background()
	b.now = b.now.Add(-5 * 24 * time.Hour)
	b.request(t, "old-replayed", ceb179.StateFailed, true)
	b.now = b.now.Add(5 * 24 * time.Hour)
	if _, err := b.store.BeginReplay(ctx, ceb179.Replay{SessionID: "old-replayed", By: "alice", Why: "customs asked again", At: b.now}); err != nil {
		t.Fatal(err)
	}
	// The replay's message never arrives (lost); within its window the
	// settler leaves it alone.
	if rep := b.run(t); rep.Queued != 0 || rep.Stuck != 0 || rep.Scanned != 1 {
		t.Fatalf("report %+v inside the replay's window, want it seen and left alone", rep)
	}
	b.now = b.now.Add(ceb179.Window + settle.DefaultStuckAfter + time.Second)
	rep := b.run(t)
	if rep.Queued != 1 || rep.Stuck != 1 {
		t.Fatalf("report %+v, want the stuck replay queued again", rep)
	}
	msgs := drain(t, b.assemble)
	var m ceb179.AssembleMessage
	if len(msgs) != 1 || json.Unmarshal([]byte(msgs[0]), &m) != nil || m.SessionID != "old-replayed" || m.Replay != 1 {
		t.Fatalf("assemble queue %v, want the replay (replay 1) again", msgs)
	}
}

// viewFails fails reading one session's request.
type viewFails struct {
	settle.Store
	session string
}

func (v viewFails) GetRequestView(ctx context.Context, id string) (ceb179.RequestView, error) {
	if id == v.session {
		return ceb179.RequestView{}, errors.New("table throttled")
	}
	return v.Store.GetRequestView(ctx, id)
}

// TestSettleDeadLetterFailureIsSkipped: a dead-lettered job whose request
// cannot be read is logged, counted and left for the next run; the other
// jobs are handled.
func TestSettleDeadLetterFailureIsSkipped(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	ctx := context.Background()
	var jobs []ceb179.SignJob
	for _, id := range []string{"dl-1", "dl-2", "dl-3"} {
		jobs = append(jobs, b.pending(t, b.request(t, id, ceb179.StateAssembled, true)))
	}
	for _, j := range jobs {
		if err := b.dead.Send(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	b.settler = settle.New(viewFails{Store: b.store, session: "dl-2"}, b.assemble, b.sign, b.dead,
		settle.WithClock(func() time.Time { return b.now }), settle.WithMetrics(b.metrics),
		settle.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	rep := b.run(t)
	if rep.Resent != 2 || rep.Errors != 1 {
		t.Fatalf("report %+v, want two resent and one error", rep)
	}
	if n := b.metrics.Total(settle.MetricActionFailed); n != 1 {
		t.Errorf("ActionFailed %v, want 1", n)
	}
	if left := drain(t, b.dead); len(left) != 1 || !strings.Contains(left[0], `"dl-2"`) {
		t.Errorf("dead letters left %v, want dl-2's job", left)
	}
}
