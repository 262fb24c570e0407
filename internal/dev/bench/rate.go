package bench

import (
	"math"
	"sync"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/dev/devstack"
)

// DriftTolerance is how far, as a fraction, a signer's rate during the run
// may differ from its warm-up rate (and by more than both their spreads)
// before the run counts it as drifted.
const DriftTolerance = 0.02

// minDriftSamples is how many back-to-back signatures the run needs
// before its rate is compared with the warm-up's.
const minDriftSamples = 10

// Rate is a signer's steady rate, measured from its back-to-back
// signatures (bridge.Signature.Steady): each one's time since the same
// slot's previous signature, while a job was waiting. The first signature
// after an idle spell, which may cost a card no wait, never counts. A
// signer faster than the pipeline that feeds it (a key file, a cipher
// machine) makes no back-to-back signature: its rate is then measured
// from the time its calls took, and is at least what it delivered.
type Rate struct {
	// PerMinute is the signatures a minute, all the signer's slots
	// together (0 when nothing was measured).
	PerMinute float64
	// Spread is the half-width of the 95% confidence interval of
	// PerMinute: the rate is PerMinute ± Spread.
	Spread float64
	// Samples counts the signatures measured: back-to-back ones, or with
	// FromCalls every one.
	Samples int
	// Over is the time they span.
	Over time.Duration
	// FromCalls says no signature was back-to-back: the pipeline never
	// kept the signer busy, and the rate comes from its calls' times.
	FromCalls bool
}

// steadyRate measures the rate of a signer of slots slots from its
// signatures: from the back-to-back ones, or from the calls' times when
// there is none.
func steadyRate(sigs []bridge.Signature, slots int) Rate {
	var steady, calls meanOf
	for _, s := range sigs {
		calls.add(s.Took, s.At.Add(-s.Took), s.At)
		if s.Steady > 0 {
			steady.add(s.Steady, s.At.Add(-s.Steady), s.At)
		}
	}
	if len(steady.vs) > 0 {
		return steady.rate(slots)
	}
	r := calls.rate(slots)
	r.FromCalls = r.Samples > 0
	return r
}

// meanOf gathers durations, in order, for a mean and its spread, and the
// time they span.
type meanOf struct {
	vs          []float64 // seconds
	first, last time.Time
}

func (m *meanOf) add(d time.Duration, from, to time.Time) {
	m.vs = append(m.vs, max(d.Seconds(), 1e-9))
	if m.first.IsZero() || from.Before(m.first) {
		m.first = from
	}
	if to.After(m.last) {
		m.last = to
	}
}

// batches is how many consecutive batches the spread is estimated from.
const batches = 8

// rate is slots signatures per mean duration, with the 95% confidence
// half-width of that rate. Back-to-back intervals are not independent (a
// reply that arrives late makes one interval longer and the next
// shorter), so the spread comes from the rates of consecutive batches
// (the method of batch means); with too few samples for batches, from
// the single durations.
func (m meanOf) rate(slots int) Rate {
	n := len(m.vs)
	if n == 0 {
		return Rate{}
	}
	per := float64(max(slots, 1)) * 60
	r := Rate{PerMinute: per * float64(n) / sum(m.vs), Samples: n, Over: m.last.Sub(m.first)}
	groups := [][]float64{}
	if k := min(batches, n/4); k >= 3 {
		for i := range k {
			groups = append(groups, m.vs[i*n/k:(i+1)*n/k])
		}
	} else {
		for i := range m.vs {
			groups = append(groups, m.vs[i:i+1])
		}
	}
	if len(groups) < 2 {
		return r
	}
	rates := make([]float64, len(groups))
	mean := 0.0
	for i, g := range groups {
		rates[i] = per * float64(len(g)) / sum(g)
		mean += rates[i]
	}
	mean /= float64(len(rates))
	ss := 0.0
	for _, v := range rates {
		ss += (v - mean) * (v - mean)
	}
	r.Spread = 1.96 * math.Sqrt(ss/float64(len(rates)-1)) / math.Sqrt(float64(len(rates)))
	return r
}

func sum(vs []float64) float64 {
	t := 0.0
	for _, v := range vs {
		t += v
	}
	return t
}

// drifted reports whether run, a signer's rate during the run, differs from
// warm, its warm-up rate, by more than DriftTolerance and by more than
// their spreads together.
func drifted(warm, run Rate) bool {
	if warm.Samples == 0 || warm.FromCalls || run.FromCalls || run.Samples < minDriftSamples {
		return false
	}
	diff := math.Abs(run.PerMinute - warm.PerMinute)
	return diff > DriftTolerance*warm.PerMinute && diff > warm.Spread+run.Spread
}

// signatureLog follows the signatures hsmbridge records for some signers of
// a stack, so that rates can be measured over any stretch of a run.
type signatureLog struct {
	st *devstack.Stack

	mu   sync.Mutex
	seen map[string]int64
	sigs map[string][]bridge.Signature
}

func newSignatureLog(st *devstack.Stack) *signatureLog {
	return &signatureLog{st: st, seen: map[string]int64{}, sigs: map[string][]bridge.Signature{}}
}

// poll reads what the signers named signed since the last poll.
func (l *signatureLog) poll(names []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, name := range names {
		fresh := l.st.BridgeSignatures(name, l.seen[name])
		if len(fresh) > 0 {
			l.sigs[name] = append(l.sigs[name], fresh...)
			l.seen[name] = fresh[len(fresh)-1].Seq
		}
	}
}

// between returns name's signatures made in [from, to).
func (l *signatureLog) between(name string, from, to time.Time) []bridge.Signature {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []bridge.Signature
	for _, s := range l.sigs[name] {
		if !s.At.Before(from) && s.At.Before(to) {
			out = append(out, s)
		}
	}
	return out
}
