package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestCapacity(t *testing.T) {
	tests := []struct {
		name              string
		signers           int
		wantMin, wantMax  int
		wantFIFOMin, FIFO int
	}{
		// One card: 240 s from the first arrival to the last deadline at
		// 0.24 s a signature is 1,000; FIFO falls behind for good at 749.
		{"ok one card", 1, 995, 1000, 745, 750},
		{"ok four cards do everything on time", 4, 1500, 1500, 1500, 1500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxOnTime, fifo := Capacity(1500, 120*time.Second, 120*time.Second, tt.signers, CardRate)
			if maxOnTime < tt.wantMin || maxOnTime > tt.wantMax {
				t.Errorf("max on time %d, want %d..%d", maxOnTime, tt.wantMin, tt.wantMax)
			}
			if fifo < tt.wantFIFOMin || fifo > tt.FIFO {
				t.Errorf("FIFO on time %d, want %d..%d", fifo, tt.wantFIFOMin, tt.FIFO)
			}
		})
	}
}

// TestRunSmall runs a tiny burst and a tiny card-speed scenario through the
// whole pipeline and checks the accounting, not the speed.
func TestRunSmall(t *testing.T) {
	scenarios := []Scenario{
		{Name: "burst", Requests: 20},
		{Name: "card", Requests: 12, Over: 3 * time.Second, Window: 2 * time.Second, SignRate: 600, Drain: 10 * time.Second},
		{Name: "unknown", Requests: 20, UnknownFirst: 8, Unknown: 0.3, Over: time.Second, Drain: 10 * time.Second},
		{Name: "over cap", Requests: 20, OverCap: 0.5, Drain: 20 * time.Second},
	}
	var results []Result
	for i, sc := range scenarios {
		r, err := Run(context.Background(), sc, "benchtest"+string(rune('a'+i))+"-")
		if err != nil {
			t.Fatal(err)
		}
		if r.Sent != sc.Requests || r.Acked != sc.Requests {
			t.Fatalf("%s: sent %d acked %d, want %d", sc.Name, r.Sent, r.Acked, sc.Requests)
		}
		if r.Uploads != r.Known {
			t.Fatalf("%s: %d uploads for %d known orders: none may be lost", sc.Name, r.Uploads, r.Known)
		}
		if len(r.AckLatency) != r.Acked || len(r.EndToEnd) != r.Uploads {
			t.Fatalf("%s: samples do not match counts", sc.Name)
		}
		results = append(results, r)
	}
	// 8 unknown first, then 3 in every 10 of the other 12 (indexes 8..19).
	if results[0].Known != 20 || results[2].Known != 8 {
		t.Errorf("known orders: %d of 20, %d of 20 with unknown ones", results[0].Known, results[2].Known)
	}
	// Two orders asked ten times each: five of each within the cap.
	if c := results[3].Cap; c.InCap != 10 || c.Over != 10 || c.InCapUploaded != 10 || c.OverUploaded != 10 || c.InCapOnTime != 10 {
		t.Errorf("cap counts %+v, want 10 within (uploaded, on time) and 10 over (uploaded)", c)
	}
	if results[1].PhysicalMax == 0 || results[0].PhysicalMax != 0 {
		t.Errorf("capacity figures: %d / %d", results[0].PhysicalMax, results[1].PhysicalMax)
	}
	var b strings.Builder
	if err := WriteTable(&b, results); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"burst", "card", "real time", "max on time", "over cap"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
