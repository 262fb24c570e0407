package assemble_test

import (
	"testing"
	"time"

	"github.com/ceb179/ceb179/infra"
	"github.com/ceb179/ceb179/internal/assemble"
	"github.com/ceb179/ceb179/internal/session"
)

// TestTemplateFitsRetries checks that template.yaml lets the handler retry
// an unknown order over the whole window: the queue's maxReceiveCount is
// MaxReceives, the function's timeout holds a full wait, and the receives
// together cover customs' two minutes.
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
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fns {
		if f.LogicalID != "AssembleFunction" {
			continue
		}
		timeout := time.Duration(f.Timeout) * time.Second
		if timeout < assemble.DefaultWait+timeoutMarginForTest+time.Second {
			t.Errorf("AssembleFunction timeout %v cannot hold a wait of %v", timeout, assemble.DefaultWait)
		}
		// Each receive but the last waits DefaultWait and comes back a
		// second later; the last waits as long as the invocation allows.
		covered := time.Duration(assemble.MaxReceives-1)*(assemble.DefaultWait+time.Second) + timeout - timeoutMarginForTest
		if covered < session.Window {
			t.Errorf("receives cover %v of the %v window", covered, session.Window)
		}
		if ref, _ := f.Environment["ASSEMBLE_QUEUE_URL"].Ref(); ref != "AssembleQueue" {
			t.Error("AssembleFunction has no ASSEMBLE_QUEUE_URL: it cannot shorten a retry's visibility")
		}
	}
}
