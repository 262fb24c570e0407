package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/clock"
	"github.com/ceb179/ceb179/internal/metrics"
)

// MaxConcurrency is how many invocations of the notify function may run
// at once: the MaximumConcurrency of its event source in template.yaml
// (a test keeps the two equal). Each invocation paces its posts for that
// many invocations sharing each robot's limit.
const MaxConcurrency = 2

// Attempts is how many times one message is posted to a robot before it
// is given up (and counted in MetricFailed).
const Attempts = 3

// Metric names (namespace ceb179, Component notify).
const (
	// MetricChanges counts alarm changes received.
	MetricChanges = "Changes"
	// MetricDelivered counts messages a robot accepted.
	MetricDelivered = "Delivered"
	// MetricAttemptFailed counts posts a robot did not accept (each
	// attempt, retries included).
	MetricAttemptFailed = "AttemptFailed"
	// MetricFailed counts messages given up after Attempts posts.
	MetricFailed = "Failed"
	// MetricMalformed counts queue messages that are not alarm changes.
	MetricMalformed = "Malformed"
)

// ConfigSource gives the robot configuration (the secret, read with a
// cache). An error with a value means the value is an older one.
type ConfigSource interface {
	Read(ctx context.Context) ([]byte, error)
}

// DeadLetters peeks at the sign dead-letter queue: the bodies of up to n
// of its messages, left in the queue.
type DeadLetters interface {
	PeekBodies(ctx context.Context, n int) ([]string, error)
}

// Notifier posts alarm changes to the configured robots.
type Notifier struct {
	src      ConfigSource
	docsBase string
	signDLQ  DeadLetters
	client   *http.Client
	log      *slog.Logger
	metrics  *metrics.Recorder
	minute   time.Duration
	attempts int
	once     bool
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
}

// Option configures a Notifier.
type Option func(*Notifier)

// WithDocsBaseURL sets where the runbook links point (DefaultDocsBaseURL
// when empty; a docsBaseUrl in the configuration wins).
func WithDocsBaseURL(u string) Option { return func(n *Notifier) { n.docsBase = u } }

// WithSignDeadLetters lets messages about the sign dead-letter queue name
// the ebpCodes of the jobs waiting there.
func WithSignDeadLetters(d DeadLetters) Option { return func(n *Notifier) { n.signDLQ = d } }

// WithHTTPClient sets the client robots are posted with (default: 10 s
// timeout).
func WithHTTPClient(c *http.Client) Option { return func(n *Notifier) { n.client = c } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(n *Notifier) { n.log = l } }

// WithMetrics sets the metrics recorder.
func WithMetrics(m *metrics.Recorder) Option { return func(n *Notifier) { n.metrics = m } }

// WithMinute shortens the minute the robots' limits are counted in, for
// time-compressed tests and drills; never in production.
func WithMinute(d time.Duration) Option { return func(n *Notifier) { n.minute = d } }

// WithSingleAttempt makes each robot get one post and the call return as
// soon as it answered, for a one-off command (`ceb179 notify test`) that
// posts nothing after it; the function itself never uses it.
func WithSingleAttempt() Option { return func(n *Notifier) { n.attempts, n.once = 1, true } }

// WithNow sets the clock the signatures' timestamps are read from.
func WithNow(now func() time.Time) Option { return func(n *Notifier) { n.now = now } }

// New returns a Notifier reading its robots from src.
func New(src ConfigSource, opts ...Option) *Notifier {
	n := &Notifier{
		src:      src,
		client:   &http.Client{Timeout: 10 * time.Second},
		log:      slog.New(slog.DiscardHandler),
		minute:   time.Minute,
		attempts: Attempts,
		now:      time.Now,
		sleep:    clock.Sleep,
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

// Gap is the least time between two posts to one robot of kind made by one
// invocation (or one invocation and the next in its lane), so that
// MaxConcurrency invocations together stay within the robot's limit per
// minute: MaxConcurrency minutes divided by the limit, and 5% more.
func (n *Notifier) Gap(kind Kind) time.Duration {
	gap := time.Duration(MaxConcurrency) * n.minute / time.Duration(PerMinute(kind))
	// 5% more: the robot counts posts as they arrive, and arrivals jitter.
	return gap + gap/20
}

// Result is what happened to one robot's message.
type Result struct {
	// Robot is the robot's name; Kind its type.
	Robot string
	Kind  Kind
	// Answers are the robot's answers, one per attempt.
	Answers []Answer
	// Err is nil when the robot accepted the message.
	Err error
}

// Handle is the notify function: it turns the batch's alarm changes into
// one message per robot and posts it. Records that are not alarm changes
// are logged, counted and dropped. When no configuration can be read, the
// whole batch is handed back (it comes again, and past the queue's
// maxReceiveCount waits in the dead-letter queue, whose alarm reaches the
// e-mail).
func (n *Notifier) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	var changes []Change
	for _, r := range ev.Records {
		c, err := ParseChange(r.Body)
		if err != nil {
			n.metrics.Add(MetricMalformed, 1)
			n.log.Warn("not an alarm change; dropped", slog.String("messageId", r.MessageId), slog.String("error", err.Error()),
				slog.String("body", clip(r.Body, 300)))
			continue
		}
		changes = append(changes, c)
	}
	if len(changes) == 0 {
		return resp, nil
	}
	n.metrics.Add(MetricChanges, float64(len(changes)))
	cfg, err := n.config(ctx)
	if err != nil {
		n.log.Error("robot configuration unreadable; batch handed back", slog.String("error", err.Error()))
		for _, r := range ev.Records {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		}
		return resp, nil
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].At.Before(changes[j].At) })
	n.enrich(ctx, changes)
	n.Send(ctx, cfg, changes)
	return resp, nil
}

// config reads and parses the robot configuration.
func (n *Notifier) config(ctx context.Context) (Config, error) {
	b, err := n.src.Read(ctx)
	if b == nil {
		if err == nil {
			err = errors.New("empty configuration")
		}
		return Config{}, err
	}
	if err != nil {
		n.log.Warn("robot configuration could not be read again; using the one read before", slog.String("error", err.Error()))
	}
	return ParseConfig(b)
}

// Send posts the changes to every robot of cfg at once, each paced and
// retried on its own, and returns once every robot has its answer and its
// gap has passed. It returns what happened to each robot.
func (n *Notifier) Send(ctx context.Context, cfg Config, changes []Change) []Result {
	docs := n.docsBase
	if cfg.DocsBaseURL != "" {
		docs = cfg.DocsBaseURL
	}
	results := make([]Result, len(cfg.Robots))
	var wg sync.WaitGroup
	for i, rc := range cfg.Robots {
		wg.Go(func() {
			m := Compose(changes, docs, MaxBytes(rc.Type))
			results[i] = n.deliver(ctx, &robot{cfg: rc, client: n.client, now: n.now}, m)
		})
	}
	wg.Wait()
	return results
}

// deliver posts m to r, retrying with backoff, never two posts closer than
// the robot's gap, and returns only once the gap after its last post has
// passed, so that the next invocation in this lane cannot post early.
func (n *Notifier) deliver(ctx context.Context, r *robot, m Message) Result {
	res := Result{Robot: r.cfg.Name, Kind: r.cfg.Type}
	gap := n.Gap(r.cfg.Type)
	var last time.Time
	defer func() {
		// Also on the way out of a failure: the lane stays paced.
		if !last.IsZero() && !n.once {
			_ = n.sleep(context.WithoutCancel(ctx), time.Until(last.Add(gap)))
		}
	}()
	backoff := n.minute / 60
	for attempt := 1; attempt <= n.attempts; attempt++ {
		if attempt > 1 {
			wait := max(gap, backoff)
			backoff *= 2
			if err := n.sleep(ctx, time.Until(last.Add(wait))); err != nil {
				res.Err = err
				break
			}
		}
		last = time.Now()
		a, err := r.post(ctx, m)
		if a.Status != 0 || err == nil {
			res.Answers = append(res.Answers, a)
		}
		if err == nil {
			res.Err = nil
			n.metrics.Add(MetricDelivered, 1)
			n.log.Info("alarm message delivered", slog.String("robot", r.cfg.Name), slog.String("type", string(r.cfg.Type)),
				slog.Int("changes", m.Changes), slog.Int("attempt", attempt))
			return res
		}
		res.Err = err
		n.metrics.Add(MetricAttemptFailed, 1)
		n.log.Warn("robot did not accept the alarm message", slog.String("robot", r.cfg.Name), slog.Int("attempt", attempt),
			slog.String("error", err.Error()))
		if ctx.Err() != nil {
			break
		}
	}
	n.metrics.Add(MetricFailed, 1)
	n.log.Error("alarm message given up for this robot", slog.String("robot", r.cfg.Name), slog.Int("changes", m.Changes),
		slog.String("error", res.Err.Error()))
	return res
}

// Test posts a test message to every robot of the configuration read from
// the source and returns each robot's answers.
func (n *Notifier) Test(ctx context.Context) ([]Result, error) {
	cfg, err := n.config(ctx)
	if err != nil {
		return nil, err
	}
	c := Change{Name: "ceb179-notify-test", State: StateOK, OldState: StateOK, At: n.now(), Runbook: "",
		Description: "ceb179 notify test: a test message; nothing is wrong."}
	return n.Send(ctx, cfg, []Change{c}), nil
}

// enrich adds what the changes themselves do not say: for the sign
// dead-letter queue going to ALARM, the ebpCodes of the jobs waiting there.
func (n *Notifier) enrich(ctx context.Context, changes []Change) {
	if n.signDLQ == nil {
		return
	}
	var peeked []string
	var peekErr error
	done := false
	for i := range changes {
		c := &changes[i]
		if c.Runbook != "sign-dlq" || c.State != StateAlarm {
			continue
		}
		if !done {
			peeked, peekErr = n.signDLQ.PeekBodies(ctx, 10)
			done = true
		}
		if peekErr != nil {
			c.Details = append(c.Details, "ebpCode：未能读取死信队列（"+clip(peekErr.Error(), 120)+"）")
			continue
		}
		c.Details = append(c.Details, ebpCodes(peeked))
	}
}

// ebpCodes summarises the sign jobs in bodies by ebpCode.
func ebpCodes(bodies []string) string {
	count := map[string]int{}
	for _, b := range bodies {
		var j ceb179.SignJob
		if json.Unmarshal([]byte(b), &j) != nil || j.EbpCode == "" {
			count["（无法读取）"]++
			continue
		}
		count[j.EbpCode]++
	}
	if len(count) == 0 {
		return "ebpCode：死信队列中暂时看不到任务（可能正被结算器重新发送）"
	}
	codes := make([]string, 0, len(count))
	for c := range count {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s（%d 个任务）", c, count[c])
	}
	s := "ebpCode：" + strings.Join(parts, "，")
	if len(bodies) >= 10 {
		s += "，仅列出前 10 个"
	}
	return s
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
