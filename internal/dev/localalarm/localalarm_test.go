package localalarm_test

import (
	"testing"

	"github.com/ceb179/ceb179/infra"
	"github.com/ceb179/ceb179/internal/dev/localalarm"
)

func TestObserve(t *testing.T) {
	tpl, err := infra.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	missing, err := tpl.Alarm("SettleMissingAlarm")
	if err != nil {
		t.Fatal(err)
	}
	stuck, err := tpl.Alarm("SettleStuckAlarm")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		spec   infra.Alarm
		values []float64
		want   []string
	}{
		{"ok missing fires on the first breach and clears on the first zero", missing, []float64{0, 3, 3, 0},
			[]string{"OK", "ALARM", "ALARM", "OK"}},
		{"ok stuck fires after five breaching minutes in a row", stuck, []float64{1, 1, 1, 1, 1, 0, 1},
			[]string{"OK", "OK", "OK", "OK", "ALARM", "OK", "OK"}},
		{"fail stuck stays OK with a gap", stuck, []float64{1, 1, 0, 1, 1, 1},
			[]string{"OK", "OK", "OK", "OK", "OK", "OK"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := localalarm.New(tt.spec)
			if st, _ := a.State(); st != localalarm.StateInsufficient {
				t.Errorf("new alarm %s", st)
			}
			for i, v := range tt.values {
				if st, _ := a.Observe(v); st != tt.want[i] {
					t.Errorf("datapoint %d (%v): %s, want %s", i, v, st, tt.want[i])
				}
			}
		})
	}
	if _, err := tpl.Alarm("IngestErrorAnswerAlarm"); err == nil {
		t.Error("a metric math alarm read as one metric")
	}
}
