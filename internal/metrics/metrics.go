// Package metrics records ceb179's counters and timings as CloudWatch
// Embedded Metric Format (EMF) log lines, which CloudWatch turns into metrics
// without any API call, and keeps running totals in memory for status pages
// and tests.
package metrics

import (
	"encoding/json"
	"io"
	"sort"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every ceb179 metric.
const Namespace = "ceb179"

// Unit is a CloudWatch metric unit.
type Unit string

// Units used by ceb179.
const (
	Count        Unit = "Count"
	Milliseconds Unit = "Milliseconds"
)

// Recorder writes metrics for one component (a function or the bridge).
// It is safe for concurrent use. A nil *Recorder records nothing.
type Recorder struct {
	component string
	w         io.Writer
	now       func() time.Time

	mu     sync.Mutex
	totals map[string]float64
}

// New returns a Recorder that writes EMF lines to w (nil: keep totals only),
// with the dimension Component set to component.
func New(component string, w io.Writer) *Recorder {
	return &Recorder{component: component, w: w, now: time.Now, totals: map[string]float64{}}
}

// Add records n more of the counter name.
func (r *Recorder) Add(name string, n float64) {
	r.put(name, n, Count)
}

// Duration records one timing of name.
func (r *Recorder) Duration(name string, d time.Duration) {
	r.put(name, float64(d.Microseconds())/1000, Milliseconds)
}

// Total returns the sum of everything recorded for name since r was made.
func (r *Recorder) Total(name string) float64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.totals[name]
}

// Names returns the names recorded so far, sorted.
func (r *Recorder) Names() []string {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.totals))
	for n := range r.totals {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit Unit   `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMeta struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

func (r *Recorder) put(name string, v float64, unit Unit) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.totals[name] += v
	if r.w == nil {
		return
	}
	line := map[string]any{
		"_aws": emfMeta{
			Timestamp: r.now().UnixMilli(),
			CloudWatchMetrics: []emfDirective{{
				Namespace:  Namespace,
				Dimensions: [][]string{{"Component"}},
				Metrics:    []emfMetric{{Name: name, Unit: unit}},
			}},
		},
		"Component": r.component,
		name:        v,
	}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	// Writing under the lock keeps concurrent lines whole.
	_, _ = r.w.Write(append(b, '\n'))
}
