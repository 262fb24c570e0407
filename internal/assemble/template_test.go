package assemble_test

import (
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/infra"
	"github.com/ceb179/ceb179/internal/assemble"
)

// TestTemplateFitsRetries checks that template.yaml lets the handler retry
// an unknown order over the whole window: the queue's maxReceiveCount is
// MaxReceives, and the retry schedule reaches customs' two minutes with at
// least five receives to spare for failed deliveries.
func TestTemplateFitsRetries(t *testing.T) {
	t.Parallel()
	tpl, err := infra.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	queues, err := tpl.Queues()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queues {
		if q.LogicalID == "AssembleQueue" && q.MaxReceiveCount != assemble.MaxReceives {
			t.Errorf("AssembleQueue maxReceiveCount %d, want assemble.MaxReceives %d", q.MaxReceiveCount, assemble.MaxReceives)
		}
	}
	var covered time.Duration
	receives := 0
	for covered < ceb179.Window {
		receives++
		covered += assemble.RetryDelay(receives, assemble.DefaultRetryFirst, assemble.DefaultRetryMax)
	}
	if receives+5 > assemble.MaxReceives {
		t.Errorf("the schedule needs %d receives to cover %v; MaxReceives %d leaves too little room", receives, ceb179.Window, assemble.MaxReceives)
	}
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fns {
		if f.LogicalID != "AssembleFunction" {
			continue
		}
		if ref, _ := f.Environment["ASSEMBLE_QUEUE_URL"].Ref(); ref != "AssembleQueue" {
			t.Error("AssembleFunction has no ASSEMBLE_QUEUE_URL: it cannot shorten a retry's visibility")
		}
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second}
	for i, w := range want {
		if got := assemble.RetryDelay(i+1, time.Second, 15*time.Second); got != w {
			t.Errorf("receive %d: %v, want %v", i+1, got, w)
		}
	}
}
