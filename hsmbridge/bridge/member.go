package bridge

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/clock"
	"github.com/ceb179/ceb179/internal/signature"
	"github.com/ceb179/ceb179/internal/signer"
)

// probeSource is what a probe signs: no buyer data.
var probeSource = []byte("hsmbridge probe: signer health check")

// memberState is the health of one signer in the pool.
type memberState string

// Status reasons of a signer disabled for a blocked PIN: the card refused
// it, or a call that carried it got no usable answer (a strike).
const (
	ReasonPINRefused = "PIN refused"
	ReasonPINStruck  = "PIN struck"
)

const (
	stateStarting  memberState = "starting"
	stateHealthy   memberState = "healthy"
	stateUnhealthy memberState = "unhealthy"
	stateDisabled  memberState = "disabled"
)

// member is one signer of the pool with its health and statistics.
type member struct {
	b    *Bridge
	spec SignerSpec
	log  *slog.Logger

	mu       sync.Mutex
	s        signer.Signer
	state    memberState
	reason   string // why the signer is disabled
	lastErr  string
	up       chan struct{} // closed while healthy
	dead     chan struct{} // closed when disabled
	kick     chan struct{} // tells the supervisor the signer failed
	est      time.Duration
	signs    int64
	failures int64
	recent   []time.Time // completions in the last minute
	sigs     []Signature // the latest signatures, up to 2×SignatureLogSize
	slots    int
}

func newMember(b *Bridge, spec SignerSpec) *member {
	return &member{
		b:     b,
		spec:  spec,
		log:   b.log.With("signer", spec.Name, "ebpCode", spec.EbpCode),
		state: stateStarting,
		up:    make(chan struct{}),
		dead:  make(chan struct{}),
		kick:  make(chan struct{}, 1),
	}
}

// supervise opens and probes the signer, starts its slots once it is
// healthy, and probes it again after each failure.
func (m *member) supervise(ctx context.Context, work *sync.WaitGroup) {
	first := true
	for {
		if !first && clock.Sleep(ctx, m.b.o.ProbeInterval) != nil {
			return
		}
		first = false
		err := m.probe(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, signer.ErrPINRefused):
			m.fail(err)
			return
		case err != nil:
			m.fail(err)
			continue
		}
		n := m.healthy()
		for range n {
			work.Go(func() { m.slot(ctx) })
		}
		if !m.watch(ctx) || m.disabled() {
			return
		}
	}
}

// watch waits while the signer is healthy. A signer that can be checked
// cheaply (signer.Pinger, such as the E-Port control) and has signed
// nothing for a probe interval is pinged, so that a card whose light went
// out is noticed before a job is sent to it. watch returns true when the
// signer left the pool, false when ctx is done.
func (m *member) watch(ctx context.Context) bool {
	tick := time.NewTicker(m.b.o.ProbeInterval)
	defer tick.Stop()
	for {
		select {
		case <-m.kick:
			return true
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		m.mu.Lock()
		s, idle := m.s, len(m.recent) == 0 || time.Since(m.recent[len(m.recent)-1]) >= m.b.o.ProbeInterval
		m.mu.Unlock()
		p, ok := s.(signer.Pinger)
		if !ok || !idle {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, m.b.o.SignTimeout)
		err := p.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			if errors.Is(err, signer.ErrUnavailable) {
				m.drop()
			}
			m.fail(err)
		}
	}
}

// probe opens the backend if needed and checks it. A signer that can be
// checked without the PIN (signer.Pinger, such as an E-Port card) is
// pinged only: it earns its way back with a job's signature, so no PIN
// try is spent on a test. Other signers make a test signature that is
// verified locally.
func (m *member) probe(ctx context.Context) error {
	m.mu.Lock()
	s := m.s
	m.mu.Unlock()
	if s == nil {
		octx, cancel := context.WithTimeout(ctx, 2*m.b.o.SignTimeout)
		var err error
		s, err = m.spec.Open(octx)
		cancel()
		if err != nil {
			return err
		}
		m.mu.Lock()
		m.s = s
		m.mu.Unlock()
		m.log.Info("signer opened", "certNo", s.CertNo(), "concurrency", s.Concurrency())
	}
	pctx, cancel := context.WithTimeout(ctx, m.b.o.SignTimeout)
	defer cancel()
	if p, ok := s.(signer.Pinger); ok {
		err := p.Ping(pctx)
		if errors.Is(err, signer.ErrUnavailable) {
			m.drop()
		}
		return err
	}
	start := time.Now()
	v, err := s.Sign(pctx, probeSource)
	if err == nil {
		err = signature.Verify(s.Certificate(), probeSource, v)
	}
	if err != nil {
		if errors.Is(err, signer.ErrUnavailable) {
			m.drop()
		}
		return err
	}
	m.mu.Lock()
	if m.est == 0 {
		m.est = time.Since(start)
	}
	m.mu.Unlock()
	return nil
}

// drop closes the backend so the next probe opens it afresh.
func (m *member) drop() {
	m.mu.Lock()
	s := m.s
	m.s = nil
	m.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

// healthy puts the signer in the pool and returns how many slots to
// start (only the first time).
func (m *member) healthy() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != stateHealthy {
		m.state = stateHealthy
		close(m.up)
		m.log.Info("signer in the pool")
	}
	if m.slots > 0 {
		return 0
	}
	m.slots = max(m.s.Concurrency(), 1)
	return m.slots
}

// fail takes the signer out of the pool: for a while, or for good when
// the PIN was refused.
func (m *member) fail(err error) {
	m.mu.Lock()
	m.failures++
	m.lastErr = err.Error()
	if m.state == stateDisabled {
		m.mu.Unlock()
		return
	}
	if m.state == stateHealthy {
		m.up = make(chan struct{})
	}
	if errors.Is(err, signer.ErrPINRefused) {
		// The guard wrote the marker before the error reached here.
		struck := errors.Is(err, signer.ErrPINStruck)
		reason, alarm := ReasonPINRefused, "pin_refused"
		if struck {
			reason, alarm = ReasonPINStruck, "pin_struck"
		}
		m.state = stateDisabled
		m.reason = reason
		close(m.dead)
		m.mu.Unlock()
		m.b.count(func(c *ceb179.BridgeTotals) {
			c.Alarms++
			c.PINRefused++
			if struck {
				c.PINStruck++
			}
		})
		m.log.Log(context.Background(), LevelAlarm,
			reason+": signer disabled; no PIN goes to this card again until the PIN file changes or hsmbridge pin-reset "+m.spec.Name+" clears the marker",
			"alarm", alarm, "err", err)
		m.drop()
		m.b.abandon(m.spec.EbpCode)
	} else {
		was := m.state
		m.state = stateUnhealthy
		m.mu.Unlock()
		if was != stateUnhealthy {
			m.log.Warn("signer out of the pool", "err", err, "probeIn", m.b.o.ProbeInterval.String())
		}
	}
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// slot signs jobs one after the other while the signer is healthy. It
// remembers when it last signed, so that a signature made straight after
// the previous one (a job was already waiting) is logged as back-to-back.
func (m *member) slot(ctx context.Context) {
	var last time.Time // this slot's last signature; zero after a failure
	for {
		m.mu.Lock()
		up, est := m.up, m.est
		m.mu.Unlock()
		select {
		case <-up:
		case <-m.dead:
			return
		case <-ctx.Done():
			return
		}
		asked := time.Now()
		j, err := m.b.sched.next(ctx, m.spec.EbpCode, est+m.b.uploadEstimate())
		if err != nil {
			return
		}
		m.mu.Lock()
		ok := m.state == stateHealthy && m.s != nil
		s := m.s
		m.mu.Unlock()
		if !ok {
			m.b.retry(j, false)
			last = time.Time{}
			continue
		}
		var after time.Time
		if !j.ready.After(asked) {
			after = last
		}
		last = m.b.signWith(ctx, m, s, j, after)
	}
}

// observe records a successful signature made at now that took d. after
// is the same slot's previous signature when this one followed it
// back-to-back, zero otherwise.
func (m *member) observe(now time.Time, d time.Duration, after time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.signs++
	sig := Signature{Seq: m.signs, At: now, Took: d}
	if !after.IsZero() {
		sig.Steady = now.Sub(after)
	}
	m.sigs = append(m.sigs, sig)
	if len(m.sigs) >= 2*SignatureLogSize {
		m.sigs = append(m.sigs[:0], m.sigs[len(m.sigs)-SignatureLogSize:]...)
	}
	if m.est == 0 {
		// The first signature sets the estimate: a card is probed without
		// its PIN, so no test signature measured it.
		m.est = d
	} else {
		m.est = (4*m.est + d) / 5
	}
	m.recent = append(m.recent, now)
	cut := 0
	for cut < len(m.recent) && now.Sub(m.recent[cut]) > time.Minute {
		cut++
	}
	m.recent = m.recent[cut:]
}

func (m *member) disabled() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state == stateDisabled
}

func (m *member) close() {
	m.drop()
}

// abandon gives back the waiting jobs of ebp when no signer is left for it.
func (b *Bridge) abandon(ebp string) {
	if b.serves(ebp) {
		return
	}
	for _, j := range b.sched.drainEbp(ebp) {
		b.giveBack(j, b.o.RetryDelay, "no signer left for ebpCode")
	}
}
