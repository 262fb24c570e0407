package bridge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// TestSignatureLog runs two bursts of jobs, an idle spell apart, through a
// fake card that signs 1,200 a minute and makes the first signature after
// idle at once. The bridge's log must number every signature, and mark as
// back-to-back only those the card made straight after the previous one:
// their intervals average the card's 50 ms (one reply late on a busy
// machine makes one interval longer and the next shorter), and the first
// of each burst, which waited for work, is not among them.
func TestSignatureLog(t *testing.T) {
	k := eporttest.NewSM2Key(t, 0xC4)
	ctl := eporttest.New(t, k.Signer, k.Cert, cardPIN)
	ctl.SetRate(1200)
	ctl.SetBurst(1)
	b, q, up := runCardBridge(t, k, ctl, 0)

	const n = 12
	var idleFrom time.Time
	for burst := range 2 {
		if burst == 1 {
			time.Sleep(500 * time.Millisecond) // idle: ten intervals
			idleFrom = time.Now()
		}
		for i := range n {
			q.sendJob(fmt.Sprintf("L%d-%02d", burst, i), "EBP1", time.Now().Add(2*time.Minute))
		}
		waitFor(t, 20*time.Second, "the burst uploaded", func() bool { return up.accepted() == (burst+1)*n })
	}

	log := b.Signatures("card", 0)
	if len(log) != 2*n || ctl.Signs() != 2*n {
		t.Fatalf("log holds %d signatures, the card made %d; want %d", len(log), ctl.Signs(), 2*n)
	}
	steady, sum, firstAfterIdle := 0, time.Duration(0), bridge.Signature{}
	for i, s := range log {
		if s.Seq != int64(i+1) {
			t.Fatalf("signature %d numbered %d", i+1, s.Seq)
		}
		if firstAfterIdle.Seq == 0 && s.At.After(idleFrom) {
			firstAfterIdle = s
		}
		if s.Steady == 0 {
			continue
		}
		steady++
		sum += s.Steady
		// Back-to-back: never the idle spell.
		if s.Steady > 250*time.Millisecond {
			t.Errorf("signature %d back-to-back after %v; the card takes 50 ms", s.Seq, s.Steady)
		}
	}
	if log[0].Steady != 0 || firstAfterIdle.Steady != 0 {
		t.Errorf("the first signature (%v) and the first after idle (%v) waited for work: not back-to-back", log[0].Steady, firstAfterIdle.Steady)
	}
	if steady < n {
		t.Fatalf("%d of %d signatures back-to-back, want most of each burst", steady, 2*n)
	}
	if mean := sum / time.Duration(steady); mean < 45*time.Millisecond || mean > 60*time.Millisecond {
		t.Errorf("back-to-back signatures %v apart on average; the card takes 50 ms", mean)
	}
	if got := b.Signatures("card", log[n].Seq); len(got) != n-1 || got[0].Seq != log[n+1].Seq {
		t.Errorf("signatures after %d: %d, want the last %d", log[n].Seq, len(got), n-1)
	}
	if got := b.Signatures("no such signer", 0); got != nil {
		t.Errorf("unknown signer: %v", got)
	}
}
