package bench

import (
	"math"
	"testing"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
)

// cardLog is the bridge's record of a card that makes its first
// signature at once (it was idle) and then n back-to-back ones every
// interval, each reply jitter late or early in turn (a late reply makes
// one interval longer and the next shorter).
func cardLog(n int, interval, jitter time.Duration) []bridge.Signature {
	at := time.Unix(1_800_000_000, 0)
	sigs := []bridge.Signature{{Seq: 1, At: at, Took: 2 * time.Millisecond}}
	for i := range n {
		d := interval + time.Duration(1-2*(i%2))*jitter
		at = at.Add(d)
		sigs = append(sigs, bridge.Signature{Seq: int64(i + 2), At: at, Took: d - time.Millisecond, Steady: d})
	}
	return sigs
}

func TestSteadyRate(t *testing.T) {
	fast := []bridge.Signature{}
	at := time.Unix(1_800_000_000, 0)
	for i := range 20 {
		at = at.Add(time.Second)
		fast = append(fast, bridge.Signature{Seq: int64(i + 1), At: at, Took: 10 * time.Millisecond})
	}
	tests := []struct {
		name      string
		sigs      []bridge.Signature
		slots     int
		perMinute float64
		samples   int
		fromCalls bool
	}{
		{"ok a card: the free first signature does not count", cardLog(60, 240*time.Millisecond, time.Millisecond), 1, 250, 60, false},
		{"ok late replies: the spread stays small", cardLog(60, 240*time.Millisecond, 20*time.Millisecond), 1, 250, 60, false},
		{"ok two slots each back-to-back every 480 ms", cardLog(40, 480*time.Millisecond, time.Millisecond), 2, 250, 40, false},
		{"ok never busy: the rate of its calls", fast, 4, 24000, 20, true},
		{"fail no signature", nil, 1, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := steadyRate(tt.sigs, tt.slots)
			if math.Abs(r.PerMinute-tt.perMinute) > 0.5 || r.Samples != tt.samples || r.FromCalls != tt.fromCalls {
				t.Fatalf("rate %+v, want %.1f/min from %d (from calls %t)", r, tt.perMinute, tt.samples, tt.fromCalls)
			}
			if tt.samples > 1 && !tt.fromCalls && (r.Spread <= 0 || r.Spread > 0.01*tt.perMinute) {
				t.Errorf("spread ±%.3f, want small and measured", r.Spread)
			}
		})
	}
}

func TestDrifted(t *testing.T) {
	warm := Rate{PerMinute: 250, Spread: 0.5, Samples: 60}
	tests := []struct {
		name string
		run  Rate
		want bool
	}{
		{"ok steady: within 2%", Rate{PerMinute: 246, Spread: 0.5, Samples: 100}, false},
		{"ok slowed down by 5%", Rate{PerMinute: 237, Spread: 1, Samples: 100}, true},
		{"ok sped up by 5%", Rate{PerMinute: 263, Spread: 1, Samples: 100}, true},
		{"ok 5% but inside the spreads", Rate{PerMinute: 237, Spread: 20, Samples: 100}, false},
		{"ok too few back-to-back in the run", Rate{PerMinute: 200, Spread: 1, Samples: 5}, false},
		{"ok call times are no steady rate", Rate{PerMinute: 200, Spread: 1, Samples: 100, FromCalls: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := drifted(warm, tt.run); got != tt.want {
				t.Errorf("drifted(%+v, %+v) = %t, want %t", warm, tt.run, got, tt.want)
			}
		})
	}
}
