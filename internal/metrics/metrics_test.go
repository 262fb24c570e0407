package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

func TestRecorderEMF(t *testing.T) {
	var buf bytes.Buffer
	r := New("ingest", &buf)
	r.now = func() time.Time { return time.UnixMilli(1700000000000) }
	r.Add("Received", 1)
	r.Duration("AckLatency", 1500*time.Microsecond)

	sc := bufio.NewScanner(&buf)
	var lines []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2", len(lines))
	}
	tests := []struct {
		name   string
		line   map[string]any
		metric string
		value  float64
		unit   string
	}{
		{"ok count", lines[0], "Received", 1, "Count"},
		{"ok duration in ms", lines[1], "AckLatency", 1.5, "Milliseconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.line[tt.metric]; got != tt.value {
				t.Errorf("%s = %v, want %v", tt.metric, got, tt.value)
			}
			if tt.line["Component"] != "ingest" {
				t.Errorf("Component = %v", tt.line["Component"])
			}
			aws := tt.line["_aws"].(map[string]any)
			if aws["Timestamp"] != float64(1700000000000) {
				t.Errorf("Timestamp = %v", aws["Timestamp"])
			}
			d := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
			if d["Namespace"] != Namespace {
				t.Errorf("Namespace = %v", d["Namespace"])
			}
			m := d["Metrics"].([]any)[0].(map[string]any)
			if m["Name"] != tt.metric || m["Unit"] != tt.unit {
				t.Errorf("metric directive = %v", m)
			}
		})
	}
}

func TestRecorderTotals(t *testing.T) {
	r := New("x", nil)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); r.Add("n", 2) }()
	}
	wg.Wait()
	if got := r.Total("n"); got != 100 {
		t.Fatalf("Total = %v, want 100", got)
	}
	if got := r.Total("missing"); got != 0 {
		t.Fatalf("Total(missing) = %v, want 0", got)
	}
	var nilRec *Recorder
	nilRec.Add("n", 1) // must not panic
	if nilRec.Total("n") != 0 || nilRec.Names() != nil {
		t.Fatal("nil recorder must record nothing")
	}
}
