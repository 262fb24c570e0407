package bridge_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/signer"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// overload describes one run of the deadline bench.
type overload struct {
	jobs     int           // jobs sent
	spread   time.Duration // jobs arrive evenly over this time
	window   time.Duration // deadline = arrival + window
	cards    int           // fake cards
	perMin   int           // signatures per minute per card
	upload   time.Duration // upload function latency
	policy   bridge.Policy // scheduling policy
	maxSlack time.Duration // virtual time allowed after the last deadline
}

// outcome is what a bench run measured.
type outcome struct {
	onTime, uploaded, lost, posts, givenBack int
	physMax                                  int
	virtual                                  time.Duration
}

// runOverload runs the real bridge against in-memory fakes inside a
// synctest bubble: time is virtual and advances only when every goroutine
// waits, so a 4-minute overload runs in a moment and gives the same numbers
// on a busy machine as on an idle one.
func runOverload(t *testing.T, o overload) outcome {
	t.Helper()
	var res outcome
	// gmsm's SM2 signing reads a channel made outside any bubble, so the
	// bench cards hold RSA keys, made outside the bubble.
	key := eporttest.NewRSAKey(t, 0x01691f7f)
	synctest.Test(t, func(t *testing.T) {
		interval := time.Minute / time.Duration(o.perMin)
		var specs []bridge.SignerSpec
		for i := range o.cards {
			specs = append(specs, bridge.SignerSpec{
				Name: fmt.Sprintf("card%d", i+1), EbpCode: "EBP1",
				Open: func(context.Context) (signer.Signer, error) {
					ks, err := signer.NewKeyFilePEM(key.KeyPEM, key.CertPEM)
					if err != nil {
						return nil, err
					}
					return &pacedSigner{Signer: ks, interval: interval}, nil
				},
			})
		}
		res = overloadRun(t, o, specs)
	})
	return res
}

// overloadRun sends the jobs of o to a bridge over specs and measures the
// outcome. It runs in virtual time inside a synctest bubble, or in real
// time outside one.
func overloadRun(t *testing.T, o overload, specs []bridge.SignerSpec) outcome {
	t.Helper()
	var res outcome
	{
		q, up := newFakeQueue(), newFakeUploader()
		up.uploadLatency, up.sourceLatency = o.upload, o.upload/2
		interval := time.Minute / time.Duration(o.perMin)
		b, err := bridge.New(bridge.Options{
			Queue: q, Uploader: up, Signers: specs, Policy: o.policy,
			Logger:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
			Visibility: 60 * time.Second, MaxBacklog: 2000,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); b.Run(ctx) }()

		// Let the cards open and pass their probe first, like a bridge
		// that was running before the burst.
		for _, name := range specNames(specs) {
			for signerState(b, name) != "healthy" {
				time.Sleep(10 * time.Millisecond)
			}
		}
		start := time.Now()
		deadlines := map[string]time.Time{}
		var arrivals, dl []time.Time
		step := o.spread / time.Duration(o.jobs)
		for i := range o.jobs {
			sid := fmt.Sprintf("S%05d", i)
			now := time.Now()
			deadlines[sid] = now.Add(o.window)
			arrivals = append(arrivals, now)
			dl = append(dl, now.Add(o.window))
			q.sendJob(sid, "EBP1", now.Add(o.window))
			// An absolute schedule, so that in real time the arrivals
			// do not drift later with every sleep's overshoot.
			time.Sleep(time.Until(start.Add(time.Duration(i+1) * step)))
		}
		limit := start.Add(o.spread + o.window + o.maxSlack)
		for up.accepted() < o.jobs && time.Now().Before(limit) {
			time.Sleep(time.Second)
		}
		// Let the last deletes land.
		for q.len() > 0 && time.Now().Before(limit) {
			time.Sleep(100 * time.Millisecond)
		}
		res.virtual = time.Since(start)
		cancel()
		<-done

		up.mu.Lock()
		for sid, at := range up.postedAt {
			if !at.After(deadlines[sid]) {
				res.onTime++
			}
			res.posts += up.posts[sid]
		}
		res.uploaded = len(up.postedAt)
		up.mu.Unlock()
		res.lost = o.jobs - res.uploaded
		res.givenBack = int(b.Status().Totals.GivenBack)
		res.physMax = physicalMax(arrivals, dl, o.cards, interval, o.upload)
		if q.len() != 0 {
			t.Errorf("%d messages left in the queue", q.len())
		}
	}
	return res
}

// physicalMax is an upper bound on how many jobs any schedule can upload
// on time: for every instant T, jobs on time are at most the signatures
// the cards can finish by T (counting from the first arrival, one per
// interval per card; a signature must end upload-latency before its
// deadline) plus the jobs whose deadline is after T. The minimum over T
// (each deadline, and T before everything, which gives the job count) is
// the bound. With even arrivals and one deadline window it is the card's
// capacity before the last deadline, which EDF reaches within a few jobs.
func physicalMax(arrivals, deadlines []time.Time, cards int, interval, upload time.Duration) int {
	first := arrivals[0]
	ds := make([]time.Time, len(deadlines))
	for i, d := range deadlines {
		ds[i] = d.Add(-upload)
	}
	sort.Slice(ds, func(a, b int) bool { return ds[a].Before(ds[b]) })
	best := len(ds)
	for i, d := range ds {
		capacity := 0
		if d.After(first) {
			capacity = int(d.Sub(first)/interval) * cards
		}
		later := len(ds) - (i + 1)
		best = min(best, capacity+later)
	}
	return best
}

// TestBenchDeadlineOverload is the deadline bench of the issue: 1,500 jobs
// arriving evenly over 120 s with 120 s deadlines, against one 250/min card
// (3x overload) and against four. It runs in virtual time (synctest); run
// with -v to see the table.
func TestBenchDeadlineOverload(t *testing.T) {
	base := overload{jobs: 1500, spread: 120 * time.Second, window: 120 * time.Second,
		perMin: 250, upload: 100 * time.Millisecond, maxSlack: 10 * time.Minute}
	one, four := base, base
	one.cards, four.cards = 1, 4
	oneFIFO := one
	oneFIFO.policy = bridge.FIFO

	edf1 := runOverload(t, one)
	fifo1 := runOverload(t, oneFIFO)
	edf4 := runOverload(t, four)

	var tb strings.Builder
	fmt.Fprintf(&tb, "\nmode: virtual time (testing/synctest), real rates: 250 signatures/min per card, upload latency 100ms\n")
	fmt.Fprintf(&tb, "%-28s %8s %8s %8s %8s %10s %12s\n", "run", "on time", "phys.max", "uploaded", "lost", "given back", "virtual time")
	row := func(name string, r outcome) {
		fmt.Fprintf(&tb, "%-28s %8d %8d %8d %8d %10d %12s\n", name, r.onTime, r.physMax, r.uploaded, r.lost, r.givenBack, r.virtual.Round(time.Second))
	}
	row("1 card, EDF+hopeless-last", edf1)
	row("1 card, FIFO", fifo1)
	row("4 cards, EDF+hopeless-last", edf4)
	fmt.Fprintf(&tb, "1 card: EDF %d on time = %.1f%% of the physical maximum %d; FIFO %d\n",
		edf1.onTime, 100*float64(edf1.onTime)/float64(edf1.physMax), edf1.physMax, fifo1.onTime)
	t.Log(tb.String())

	for _, c := range []struct {
		name string
		r    outcome
	}{{"1 card EDF", edf1}, {"1 card FIFO", fifo1}, {"4 cards EDF", edf4}} {
		if c.r.lost != 0 || c.r.uploaded != base.jobs || c.r.posts != base.jobs {
			t.Errorf("%s: uploaded %d, lost %d, posts %d; want all %d once", c.name, c.r.uploaded, c.r.lost, c.r.posts, base.jobs)
		}
	}
	if float64(edf1.onTime) < 0.98*float64(edf1.physMax) {
		t.Errorf("1 card EDF: %d on time, want >= 98%% of %d", edf1.onTime, edf1.physMax)
	}
	if edf1.onTime <= fifo1.onTime {
		t.Errorf("EDF (%d) should beat FIFO (%d)", edf1.onTime, fifo1.onTime)
	}
	if edf4.onTime != base.jobs {
		t.Errorf("4 cards: %d on time, want all %d", edf4.onTime, base.jobs)
	}
}

func specNames(specs []bridge.SignerSpec) []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.Name)
	}
	return out
}

// TestBenchScaledEPort is the deadline bench in real time over WebSocket
// fake E-Port controls, with every duration divided by
// HSMBRIDGE_SCALED_BENCH (for example 20: jobs arrive over 6 s, deadlines
// 6 s, each card signs 5,000 a minute). It is skipped unless that variable
// is set: real time on a shared machine gives noisy numbers, so it reports
// them without asserting the 98 % goal.
func TestBenchScaledEPort(t *testing.T) {
	scale, _ := strconv.Atoi(os.Getenv("HSMBRIDGE_SCALED_BENCH"))
	if scale <= 0 {
		t.Skip("set HSMBRIDGE_SCALED_BENCH=20 to run the real-time bench over WebSocket fake cards")
	}
	k := eporttest.NewSM2Key(t, 0x0300000000000002)
	cards := make([]*eporttest.Control, 4)
	for i := range cards {
		cards[i] = eporttest.New(t, k.Signer, k.Cert, cardPIN)
		cards[i].SetRate(250 * scale)
	}
	sc := time.Duration(scale)
	base := overload{jobs: 1500, spread: 120 * time.Second / sc, window: 120 * time.Second / sc,
		perMin: 250 * scale, upload: 100 * time.Millisecond / sc, maxSlack: 10 * time.Minute / sc}
	run := func(n int, p bridge.Policy) outcome {
		o := base
		o.cards, o.policy = n, p
		var specs []bridge.SignerSpec
		for i := range n {
			s := eportSpec(t, fmt.Sprintf("card%d", i+1), cards[i], cardPIN)
			specs = append(specs, s)
		}
		return overloadRun(t, o, specs)
	}
	edf1, fifo1, edf4 := run(1, bridge.EDF), run(1, bridge.FIFO), run(4, bridge.EDF)
	var tb strings.Builder
	fmt.Fprintf(&tb, "\nmode: real time, scaled %dx (card %d/min, window %s), WebSocket fake E-Port controls\n", scale, 250*scale, base.window)
	fmt.Fprintf(&tb, "%-28s %8s %8s %8s %8s\n", "run", "on time", "phys.max", "uploaded", "lost")
	for _, r := range []struct {
		name string
		o    outcome
	}{{"1 card, EDF+hopeless-last", edf1}, {"1 card, FIFO", fifo1}, {"4 cards, EDF+hopeless-last", edf4}} {
		fmt.Fprintf(&tb, "%-28s %8d %8d %8d %8d\n", r.name, r.o.onTime, r.o.physMax, r.o.uploaded, r.o.lost)
	}
	t.Log(tb.String())
	for _, r := range []outcome{edf1, fifo1, edf4} {
		if r.lost != 0 {
			t.Errorf("%d jobs lost", r.lost)
		}
	}
}
