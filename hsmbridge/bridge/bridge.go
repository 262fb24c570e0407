package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/clock"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/signer"
)

// LevelAlarm is the slog level of events that need a person at once, such
// as a refused PIN. It sorts above slog.LevelError.
const LevelAlarm = slog.LevelError + 4

// SignerSpec describes one signer of the pool.
type SignerSpec struct {
	// Name identifies the signer in logs and status.
	Name string
	// EbpCode is the platform code whose jobs this signer signs.
	EbpCode string
	// Open connects to the backend. It is called at start and again
	// after the backend was dropped as unavailable.
	Open func(ctx context.Context) (signer.Signer, error)
}

// Options configures a Bridge. Zero durations and counts take the defaults
// named on each field.
type Options struct {
	// Queue is the sign queue.
	Queue Queue
	// Uploader is the upload function.
	Uploader Uploader
	// Signers are the signers, several per ebpCode allowed.
	Signers []SignerSpec
	// Logger receives JSON logs; slog.Default() when nil.
	Logger *slog.Logger
	// Policy orders waiting jobs; EDF unless set.
	Policy Policy
	// MaxBacklog bounds the jobs in memory (default 2000). When it is
	// reached the bridge stops receiving.
	MaxBacklog int
	// Visibility is the visibility timeout set on receipt and renewed
	// while a job is in memory (default 60s).
	Visibility time.Duration
	// ReceiveWait is the long-poll wait (default and maximum 20s).
	ReceiveWait time.Duration
	// RetryDelay is the visibility given to a message handed back after a
	// failure or a RETRY answer (default: Visibility, so the message comes
	// back after the queue's usual visibility timeout).
	RetryDelay time.Duration
	// MaxReceiveCount is the sign queue's maxReceiveCount (default 5): a
	// job received that often is uploaded with lastDelivery set.
	MaxReceiveCount int
	// SignTimeout bounds one signature (default 15s).
	SignTimeout time.Duration
	// UploadTimeout bounds one invoke of the upload function (default 30s).
	UploadTimeout time.Duration
	// UploadConcurrency bounds concurrent invokes, per operation
	// (default 16).
	UploadConcurrency int
	// ProbeInterval is how long a failing signer stays out of the pool
	// before it is probed again (default 30s).
	ProbeInterval time.Duration
	// MaxAttempts is how many signers may fail one job before it goes
	// back to the queue (default 3).
	MaxAttempts int
	// StatusAddr is the loopback address of the status endpoint; empty
	// disables it.
	StatusAddr string
	// OnStatusListen, if set, is told the status endpoint's address.
	OnStatusListen func(net.Addr)
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.MaxBacklog <= 0 {
		o.MaxBacklog = 2000
	}
	def(&o.Visibility, 60*time.Second)
	def(&o.ReceiveWait, 20*time.Second)
	o.ReceiveWait = min(o.ReceiveWait, 20*time.Second)
	def(&o.RetryDelay, o.Visibility)
	if o.MaxReceiveCount <= 0 {
		o.MaxReceiveCount = 5
	}
	def(&o.SignTimeout, 15*time.Second)
	def(&o.UploadTimeout, 30*time.Second)
	def(&o.ProbeInterval, 30*time.Second)
	if o.UploadConcurrency <= 0 {
		o.UploadConcurrency = 16
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// job is one sign-queue message in memory.
type job struct {
	msgID     string
	receipt   string
	sessionID string
	ebpCode   string
	digest    string
	deadline  time.Time
	priority  ceb179.Priority
	received  time.Time
	source    []byte
	attempts  int
	seq       uint64
	hopeless  bool
	receives  int
	ready     time.Time // when it was last put in the schedule

	visibleAt time.Time // when the queue would show the message again; guarded by Bridge.mu
}

// Bridge is the signer daemon. Build it with New and start it with Run.
type Bridge struct {
	o       Options
	log     *slog.Logger
	sched   *scheduler
	members []*member
	backlog chan struct{}
	fetches chan struct{}
	uploads chan struct{}

	prepWG   sync.WaitGroup
	uploadWG sync.WaitGroup

	mu        sync.Mutex
	held      map[*job]struct{}
	uploadEst time.Duration
	st        ceb179.BridgeTotals
	depth     *ceb179.SignQueueDepth
}

// New returns a Bridge; it does not connect to anything yet.
func New(o Options) (*Bridge, error) {
	o.defaults()
	if o.Queue == nil || o.Uploader == nil {
		return nil, errors.New("bridge: queue and uploader are required")
	}
	if len(o.Signers) == 0 {
		return nil, errors.New("bridge: no signers configured")
	}
	b := &Bridge{
		o:         o,
		log:       o.Logger,
		sched:     newScheduler(o.Policy, time.Now),
		backlog:   make(chan struct{}, o.MaxBacklog),
		fetches:   make(chan struct{}, o.UploadConcurrency),
		uploads:   make(chan struct{}, o.UploadConcurrency),
		held:      map[*job]struct{}{},
		uploadEst: 200 * time.Millisecond,
	}
	seen := map[string]bool{}
	for _, s := range o.Signers {
		if s.Name == "" || s.EbpCode == "" || s.Open == nil {
			return nil, fmt.Errorf("bridge: signer %q needs a name, an ebpCode and a backend", s.Name)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("bridge: signer name %q used twice", s.Name)
		}
		seen[s.Name] = true
		b.members = append(b.members, newMember(b, s))
	}
	return b, nil
}

// Run receives, schedules, signs and uploads until ctx is done. On the way
// out it stops receiving, lets running uploads finish, and gives every job
// still in memory back to the queue at once. Run returns nil after a
// cancelled ctx, or the error that kept it from starting.
func (b *Bridge) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bg sync.WaitGroup
	if b.o.StatusAddr != "" {
		srv, err := b.serveStatus(ctx, &bg)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	var work sync.WaitGroup
	for _, m := range b.members {
		work.Go(func() { m.supervise(ctx, &work) })
	}
	bg.Go(func() { b.extendLoop(ctx) })
	if qd, ok := b.o.Queue.(QueueDepth); ok {
		bg.Go(func() { b.depthLoop(ctx, qd) })
	}
	b.log.Info("hsmbridge started", "signers", len(b.members), "policy", b.o.Policy.String(), "maxBacklog", b.o.MaxBacklog)
	b.receiveLoop(ctx)

	work.Wait()
	b.prepWG.Wait()
	b.uploadWG.Wait()
	bg.Wait()
	b.sched.drain()
	b.mu.Lock()
	receipts := make([]string, 0, len(b.held))
	for j := range b.held {
		receipts = append(receipts, j.receipt)
		delete(b.held, j)
		b.st.GivenBack++
	}
	b.mu.Unlock()
	b.unreserve(len(receipts))
	if len(receipts) > 0 {
		// One call for all: the adapter spreads it over a few connections,
		// so a full backlog is handed back well inside a service stop.
		gctx, gcancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := b.o.Queue.ChangeVisibilities(gctx, receipts, 0); err != nil {
			b.log.Warn("giving jobs back on shutdown failed; they return after their visibility timeout", "err", err)
		}
		gcancel()
	}
	for _, m := range b.members {
		m.close()
	}
	b.log.Info("hsmbridge stopped", "givenBack", len(receipts))
	return nil
}

// receiveLoop long-polls while the backlog has room.
func (b *Bridge) receiveLoop(ctx context.Context) {
	backoff := time.Second
	for {
		n := b.reserve(ctx, 10)
		if n == 0 {
			return
		}
		msgs, err := b.o.Queue.Receive(ctx, n, b.o.ReceiveWait, b.o.Visibility)
		if err != nil {
			b.unreserve(n)
			if ctx.Err() != nil {
				return
			}
			b.log.Warn("receive failed", "err", err, "retryIn", backoff.String())
			if clock.Sleep(ctx, backoff) != nil {
				return
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = time.Second
		b.unreserve(n - len(msgs))
		for _, m := range msgs {
			b.accept(ctx, m)
		}
	}
}

// reserve takes between 1 and max backlog places, waiting for the first.
func (b *Bridge) reserve(ctx context.Context, max int) int {
	select {
	case b.backlog <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	n := 1
	for n < max {
		select {
		case b.backlog <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

func (b *Bridge) unreserve(n int) {
	for range n {
		<-b.backlog
	}
}

// accept turns a message into a job and fetches its sign source.
func (b *Bridge) accept(ctx context.Context, m queue.Message) {
	var body ceb179.SignJob
	if err := json.Unmarshal([]byte(m.Body), &body); err != nil || body.SessionID == "" || body.EbpCode == "" || body.Deadline <= 0 {
		// Left as it is: it comes back and ends in the dead-letter queue.
		b.count(func(c *ceb179.BridgeTotals) { c.Malformed++ })
		b.log.Error("malformed sign job", "messageId", m.ID, "receiveCount", m.ReceiveCount)
		b.unreserve(1)
		return
	}
	now := time.Now()
	j := &job{
		msgID:     m.ID,
		receipt:   m.ReceiptHandle,
		sessionID: body.SessionID,
		ebpCode:   body.EbpCode,
		digest:    body.Digest,
		deadline:  time.UnixMilli(body.Deadline),
		priority:  body.Priority,
		received:  now,
		receives:  m.ReceiveCount,
		visibleAt: now.Add(b.o.Visibility),
	}
	b.mu.Lock()
	b.held[j] = struct{}{}
	b.st.Received++
	b.mu.Unlock()
	if !b.serves(j.ebpCode) {
		b.log.Error("no usable signer for ebpCode", "ebpCode", j.ebpCode, "sessionID", j.sessionID)
		b.giveBack(j, b.o.RetryDelay, "no signer for ebpCode")
		return
	}
	b.prepWG.Go(func() { b.prepare(ctx, j) })
}

// prepare fetches the exact sign source and queues the job for signing.
func (b *Bridge) prepare(ctx context.Context, j *job) {
	select {
	case b.fetches <- struct{}{}:
	case <-ctx.Done():
		return
	}
	fctx, cancel := context.WithTimeout(ctx, b.o.UploadTimeout)
	src, err := b.o.Uploader.Source(fctx, j.sessionID)
	cancel()
	<-b.fetches
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		b.count(func(c *ceb179.BridgeTotals) { c.UploadErrors++ })
		b.log.Warn("fetch sign source failed", "sessionID", j.sessionID, "err", err)
		b.giveBack(j, b.o.RetryDelay, "source fetch failed")
		return
	}
	if src.SignSource == "" && src.State.Final() {
		// Nothing to sign: the session was settled by an earlier delivery.
		b.count(func(c *ceb179.BridgeTotals) { c.AlreadyFinal++ })
		b.log.Info("session already final; dropping the job", "sessionID", j.sessionID, "state", src.State)
		b.finish(ctx, j)
		return
	}
	sum := sha256.Sum256([]byte(src.SignSource))
	got := hex.EncodeToString(sum[:])
	if src.SignSource == "" || (j.digest != "" && got != j.digest) || (src.Digest != "" && src.Digest != got) {
		b.log.Error("sign source does not match the job's digest; not signing", "sessionID", j.sessionID)
		b.giveBack(j, b.o.RetryDelay, "digest mismatch")
		return
	}
	if j.digest == "" {
		j.digest = got
	}
	j.source = []byte(src.SignSource)
	b.sched.push(j)
}

// signWith signs j on m and starts its upload. after is the slot's
// previous signature when j follows it back-to-back (zero otherwise). It
// returns when the signature was made, or zero when it failed.
func (b *Bridge) signWith(ctx context.Context, m *member, s signer.Signer, j *job, after time.Time) time.Time {
	sctx, cancel := context.WithTimeout(ctx, b.o.SignTimeout)
	start := time.Now()
	v, err := s.Sign(sctx, j.source)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return time.Time{} // shutting down: Run gives the job back
		}
		b.count(func(c *ceb179.BridgeTotals) { c.SignErrors++ })
		m.fail(err)
		b.retry(j, true)
		return time.Time{}
	}
	done := time.Now()
	m.observe(done, done.Sub(start), after)
	certNo := s.CertNo()
	b.uploadWG.Go(func() { b.upload(ctx, m.spec.Name, j, certNo, v) })
	return done
}

// retry puts a job whose signer failed back in the schedule, or gives it
// back to the queue when it failed too often or no signer is left.
func (b *Bridge) retry(j *job, failed bool) {
	if failed {
		j.attempts++
	}
	switch {
	case j.attempts >= b.o.MaxAttempts:
		b.giveBack(j, b.o.RetryDelay, "too many signer failures")
	case !b.serves(j.ebpCode):
		b.giveBack(j, b.o.RetryDelay, "no signer left for ebpCode")
	default:
		b.sched.push(j)
	}
}

// upload hands a signature to the upload function and deletes the message
// on a final answer. It outlives ctx by up to UploadTimeout so that a
// signature made before shutdown is not wasted.
func (b *Bridge) upload(ctx context.Context, signerName string, j *job, certNo, signValue string) {
	b.uploads <- struct{}{}
	defer func() { <-b.uploads }()
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.o.UploadTimeout)
	defer cancel()
	start := time.Now()
	res, err := b.o.Uploader.Upload(uctx, ceb179.Invocation{
		Op: ceb179.OpUpload, SessionID: j.sessionID, Digest: j.digest, CertNo: certNo, SignValue: signValue,
		LastDelivery: j.receives >= b.o.MaxReceiveCount,
	})
	now := time.Now()
	b.mu.Lock()
	b.uploadEst = (4*b.uploadEst + now.Sub(start)) / 5
	b.mu.Unlock()
	if err != nil {
		b.count(func(c *ceb179.BridgeTotals) { c.UploadErrors++ })
		b.log.Warn("upload failed", "sessionID", j.sessionID, "err", err)
		b.giveBack(j, b.o.RetryDelay, "upload failed")
		return
	}
	if !res.Final() {
		b.log.Info("upload asks for a retry", "sessionID", j.sessionID, "state", res.State)
		b.giveBack(j, b.o.RetryDelay, "upload RETRY")
		return
	}
	onTime := !now.After(j.deadline)
	b.count(func(c *ceb179.BridgeTotals) {
		switch res.State {
		case ceb179.StateAccepted:
			if onTime {
				c.OnTime++
			} else {
				c.Late++
			}
		case ceb179.StateRejected:
			c.Rejected++
		default:
			c.Failed++
		}
	})
	b.log.Info("uploaded", "sessionID", j.sessionID, "state", res.State, "onTime", onTime,
		"slackMs", j.deadline.Sub(now).Milliseconds(), "signer", signerName, "hopeless", j.hopeless)
	b.finish(uctx, j)
}

// finish deletes a job's message after a final answer.
func (b *Bridge) finish(ctx context.Context, j *job) {
	b.unhold(j)
	var err error
	for i := range 3 {
		if err = b.o.Queue.Delete(ctx, j.receipt); err == nil {
			return
		}
		_ = clock.Sleep(ctx, time.Duration(i+1)*200*time.Millisecond)
	}
	// The message comes back and is uploaded again; the upload function
	// answers a repeated upload without sending it to customs twice.
	b.log.Warn("delete failed", "sessionID", j.sessionID, "err", err)
}

// giveBack stops holding a job and makes its message visible after d.
func (b *Bridge) giveBack(j *job, d time.Duration, why string) {
	if !b.unhold(j) {
		return
	}
	b.count(func(c *ceb179.BridgeTotals) { c.GivenBack++ })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.o.Queue.ChangeVisibilities(ctx, []string{j.receipt}, d); err != nil {
		b.log.Debug("give back: change visibility failed", "sessionID", j.sessionID, "err", err)
	}
	b.log.Info("job given back to the queue", "sessionID", j.sessionID, "reason", why, "visibleIn", d.String())
}

// unhold forgets a job and frees its backlog place; false if it was not
// held.
func (b *Bridge) unhold(j *job) bool {
	b.mu.Lock()
	_, ok := b.held[j]
	delete(b.held, j)
	b.mu.Unlock()
	if ok {
		b.unreserve(1)
	}
	return ok
}

// extendLoop keeps the messages of held jobs hidden. It renews them ten
// at a time (one ChangeMessageVisibilityBatch each) and records a job's new
// visibility only when its batch succeeded, so a failed renewal is tried
// again on the next tick rather than forgotten.
func (b *Bridge) extendLoop(ctx context.Context) {
	tick := time.NewTicker(max(b.o.Visibility/4, 250*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		var due []*job
		b.mu.Lock()
		for j := range b.held {
			// Renewed with three quarters of the visibility left, so that a
			// renewal that fails has another tick or two before the message
			// would reappear.
			if j.visibleAt.Sub(now) < b.o.Visibility*3/4 {
				due = append(due, j)
			}
		}
		b.mu.Unlock()
		for len(due) > 0 && ctx.Err() == nil {
			batch := due[:min(renewBatch, len(due))]
			due = due[len(batch):]
			receipts := make([]string, len(batch))
			for i, j := range batch {
				receipts[i] = j.receipt
			}
			if err := b.o.Queue.ChangeVisibilities(ctx, receipts, b.o.Visibility); err != nil {
				if ctx.Err() == nil {
					b.log.Warn("extend visibility failed", "messages", len(receipts), "err", err)
				}
				continue
			}
			b.mu.Lock()
			for _, j := range batch {
				j.visibleAt = now.Add(b.o.Visibility)
			}
			b.mu.Unlock()
		}
	}
}

// renewBatch is how many messages one visibility renewal covers: the most
// a ChangeMessageVisibilityBatch call takes.
const renewBatch = 10

func (b *Bridge) depthLoop(ctx context.Context, qd QueueDepth) {
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		w, f, err := qd.Depth(dctx)
		cancel()
		if err == nil {
			b.mu.Lock()
			b.depth = &ceb179.SignQueueDepth{Waiting: w, InFlight: f, At: time.Now()}
			b.mu.Unlock()
		} else if ctx.Err() == nil {
			b.log.Debug("read sign queue depth", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// serves reports whether some signer of ebp is not disabled.
func (b *Bridge) serves(ebp string) bool {
	for _, m := range b.members {
		if m.spec.EbpCode == ebp && !m.disabled() {
			return true
		}
	}
	return false
}

func (b *Bridge) count(f func(*ceb179.BridgeTotals)) {
	b.mu.Lock()
	f(&b.st)
	b.mu.Unlock()
}

func (b *Bridge) uploadEstimate() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.uploadEst
}

// serveStatus starts the status endpoint on a loopback address.
func (b *Bridge) serveStatus(ctx context.Context, bg *sync.WaitGroup) (*http.Server, error) {
	if err := CheckLoopback(b.o.StatusAddr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", b.o.StatusAddr)
	if err != nil {
		return nil, fmt.Errorf("status endpoint: %w", err)
	}
	if b.o.OnStatusListen != nil {
		b.o.OnStatusListen(ln.Addr())
	}
	srv := &http.Server{Handler: b.StatusHandler(), ReadHeaderTimeout: 5 * time.Second}
	bg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("status endpoint stopped", "err", err)
		}
	})
	bg.Go(func() {
		<-ctx.Done()
		srv.Close()
	})
	return srv, nil
}
