package settle

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/records"
)

// MetricMissing is, per run of the Missing pass, the number of declared
// orders still without a payment record after the grace (namespace
// ceb179, Component=settle); SettleMissingAlarm watches it.
const MetricMissing = "Missing"

// Defaults of the Missing pass.
const (
	// DefaultMissingGrace is how long after its declaration an order may
	// wait for its payment record before it counts as missing.
	DefaultMissingGrace = time.Hour
	// DefaultMaxMissing bounds the declared orders one run looks at.
	DefaultMaxMissing = 1000
)

// DeclaredStore is what the Missing pass needs of the payments table.
type DeclaredStore interface {
	// OpenOrders returns declared orders still marked unpaid, declared at
	// or before declaredBefore, oldest first, at most limit.
	OpenOrders(ctx context.Context, declaredBefore time.Time, limit int) ([]records.DeclaredOrder, bool, error)
	// PaidOrders returns which of orderNos belong to a recorded payment.
	PaidOrders(ctx context.Context, orderNos []string) (map[string]string, error)
	// CloseDeclared removes the unpaid mark of paid declared orders.
	CloseDeclared(ctx context.Context, orderNos []string) error
}

// Missing is the settler's Missing pass: declared orders (POST /orders)
// still without a payment record after the grace. Customs may ask for any
// declared order; one without a record ends NO_DATA, a failed audit, so
// the pass tells the platform first (metric Missing, its alarm, `ceb179
// status`). It reads only the sparse index of open declared orders, and
// closes those whose payment has been recorded since, so its cost follows
// what is open, not the history. It runs on the settler's schedule,
// independent of the settler's other passes.
type Missing struct {
	store   DeclaredStore
	grace   time.Duration
	limit   int
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics.Recorder
}

// MissingOption changes a Missing pass made by NewMissing.
type MissingOption func(*Missing)

// WithGrace sets how long a declared order may wait for its payment record
// (default DefaultMissingGrace).
func WithGrace(d time.Duration) MissingOption { return func(m *Missing) { m.grace = max(d, 0) } }

// WithMissingLimit bounds the declared orders one run looks at (default
// DefaultMaxMissing).
func WithMissingLimit(n int) MissingOption { return func(m *Missing) { m.limit = max(n, 1) } }

// WithMissingClock sets the clock (default time.Now).
func WithMissingClock(now func() time.Time) MissingOption { return func(m *Missing) { m.now = now } }

// NewMissing returns the Missing pass over store, logging to log and
// recording MetricMissing to rec (either may be nil).
func NewMissing(store DeclaredStore, log *slog.Logger, rec *metrics.Recorder, opts ...MissingOption) *Missing {
	if log == nil {
		log = slog.Default()
	}
	m := &Missing{store: store, grace: DefaultMissingGrace, limit: DefaultMaxMissing, now: time.Now, log: log, metrics: rec}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Grace returns the pass's grace.
func (m *Missing) Grace() time.Duration { return m.grace }

// MissingReport is what one run of the Missing pass found.
type MissingReport struct {
	// Missing counts the declared orders without a payment record after
	// the grace (at least that many when Truncated).
	Missing int `json:"missing"`
	// Orders are those orders, oldest declaration first (then by orderNo).
	Orders []records.DeclaredOrder `json:"orders,omitempty"`
	// Closed counts the declared orders found paid and closed.
	Closed int `json:"closed"`
	// Truncated says that more open orders wait than one run looks at.
	Truncated bool `json:"truncated,omitempty"`
	// Grace is the grace the run applied.
	Grace time.Duration `json:"-"`
	// GraceSeconds is Grace in seconds, for JSON readers.
	GraceSeconds int64 `json:"graceSeconds"`
}

// Find returns the declared orders still without a payment record after
// the grace, without changing anything (for `ceb179 status`).
func (m *Missing) Find(ctx context.Context) (MissingReport, []string, error) {
	rep := MissingReport{Grace: m.grace, GraceSeconds: int64(m.grace / time.Second)}
	open, more, err := m.store.OpenOrders(ctx, m.now().Add(-m.grace), m.limit)
	if err != nil {
		return rep, nil, err
	}
	rep.Truncated = more
	nos := make([]string, len(open))
	for i, o := range open {
		nos[i] = o.OrderNo
	}
	paid, err := m.store.PaidOrders(ctx, nos)
	if err != nil {
		return rep, nil, err
	}
	var closed []string
	for _, o := range open {
		if _, ok := paid[o.OrderNo]; ok {
			closed = append(closed, o.OrderNo)
			continue
		}
		rep.Orders = append(rep.Orders, o)
	}
	slices.SortStableFunc(rep.Orders, func(a, b records.DeclaredOrder) int {
		return cmp.Or(a.DeclaredAt.Compare(b.DeclaredAt), cmp.Compare(a.OrderNo, b.OrderNo))
	})
	rep.Missing = len(rep.Orders)
	return rep, closed, nil
}

// Open is Find without the orders found paid, for `ceb179 status` and the
// status page.
func (m *Missing) Open(ctx context.Context) (MissingReport, error) {
	rep, _, err := m.Find(ctx)
	return rep, err
}

// Run finds the missing orders, closes the declared orders found paid,
// records MetricMissing and logs the count (order numbers only when few).
func (m *Missing) Run(ctx context.Context) (MissingReport, error) {
	rep, paid, err := m.Find(ctx)
	if err != nil {
		m.log.ErrorContext(ctx, "settle: missing pass failed", slog.String("error", err.Error()))
		return rep, fmt.Errorf("missing pass: %w", err)
	}
	if err := m.store.CloseDeclared(ctx, paid); err != nil {
		// The next run closes them; they are not counted as missing.
		m.log.WarnContext(ctx, "settle: close paid declared orders", slog.String("error", err.Error()))
	} else {
		rep.Closed = len(paid)
	}
	m.metrics.Add(MetricMissing, float64(rep.Missing))
	level := slog.LevelInfo
	attrs := []any{slog.Int("missing", rep.Missing), slog.Int("closed", rep.Closed), slog.Bool("truncated", rep.Truncated),
		slog.Duration("grace", m.grace)}
	if rep.Missing > 0 {
		level = slog.LevelWarn
		var first []string
		for _, o := range rep.Orders[:min(len(rep.Orders), 20)] {
			first = append(first, o.OrderNo)
		}
		attrs = append(attrs, slog.Any("orders", first))
	}
	m.log.Log(ctx, level, "settle: declared orders without a payment record", attrs...)
	return rep, nil
}
