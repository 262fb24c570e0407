package eporttest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// client is a bare WebSocket client of the fake control: no pacing, no
// serialising of its own, as rude a client as can be.
type client struct {
	conn *websocket.Conn
	mu   sync.Mutex
	next int
}

func dial(t *testing.T, ctl *eporttest.Control) *client {
	t.Helper()
	conn, _, err := websocket.Dial(t.Context(), ctl.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	if _, _, err := conn.Read(t.Context()); err != nil { // the _id 0 notice
		t.Fatal(err)
	}
	return &client{conn: conn}
}

// send writes a sign request carrying pin and returns its _id.
func (c *client) send(t *testing.T, pin string) int {
	t.Helper()
	c.mu.Lock()
	c.next++
	id := c.next
	c.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"_method": "cus-sec_SpcSignDataAsPEM", "_id": id,
		"args": map[string]any{"inData": fmt.Sprintf("source %d", id), "passwd": pin}})
	if err := c.conn.Write(t.Context(), websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	return id
}

// replies reads n replies and returns when each arrived, by _id.
func (c *client) replies(t *testing.T, n int) map[int]time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	at := map[int]time.Time{}
	for len(at) < n {
		_, b, err := c.conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			ID   int                   `json:"_id"`
			Args struct{ Result bool } `json:"_args"`
		}
		if err := json.Unmarshal(b, &rep); err != nil || !rep.Args.Result {
			t.Fatalf("reply %s (%v)", b, err)
		}
		at[rep.ID] = time.Now()
	}
	return at
}

// TestCardPace checks that the fake card signs at its own pace whatever
// the client does: with a burst of one, the first signature after an idle
// spell is made at once and the others one interval apart, however many
// are asked at once; a signature the client gave up on still used the
// card's time; and without a burst every signature takes an interval.
func TestCardPace(t *testing.T) {
	const interval = 50 * time.Millisecond // 1,200 a minute
	tests := []struct {
		name  string
		burst int
		run   func(t *testing.T, ctl *eporttest.Control)
	}{
		{"ok free first signature after idle, then the card's pace", 1, func(t *testing.T, ctl *eporttest.Control) {
			c := dial(t, ctl)
			start := time.Now()
			for range 6 {
				c.send(t, "88888888")
			}
			at := c.replies(t, 6)
			first, last := at[1], at[1]
			for _, a := range at {
				first, last = minTime(first, a), maxTime(last, a)
			}
			if d := first.Sub(start); d > interval/2 {
				t.Errorf("first signature after idle took %v, want at once", d)
			}
			if d := last.Sub(start); d < 5*interval-5*time.Millisecond {
				t.Errorf("six signatures asked at once all done in %v; the card needs five intervals (%v)", d, 5*interval)
			}
			// Idle again for longer than an interval: free again.
			time.Sleep(3 * interval)
			again := time.Now()
			c.send(t, "88888888")
			if d := c.replies(t, 1)[7].Sub(again); d > interval/2 {
				t.Errorf("first signature after the second idle spell took %v", d)
			}
		}},
		{"ok several connections do not share out more", 1, func(t *testing.T, ctl *eporttest.Control) {
			a, b := dial(t, ctl), dial(t, ctl)
			start := time.Now()
			for range 2 {
				a.send(t, "88888888")
				b.send(t, "88888888")
			}
			var wg sync.WaitGroup
			var last [2]time.Time
			for i, c := range []*client{a, b} {
				wg.Go(func() {
					for _, at := range c.replies(t, 2) {
						last[i] = maxTime(last[i], at)
					}
				})
			}
			wg.Wait()
			if d := maxTime(last[0], last[1]).Sub(start); d < 3*interval-5*time.Millisecond {
				t.Errorf("four signatures over two connections done in %v; the card needs three intervals", d)
			}
		}},
		{"ok a signature given up still uses the card", 1, func(t *testing.T, ctl *eporttest.Control) {
			gone, c := dial(t, ctl), dial(t, ctl)
			start := time.Now()
			gone.send(t, "88888888")
			gone.conn.CloseNow()
			// The card took the free signature; the next waits its turn.
			for end := time.Now().Add(5 * time.Second); ctl.SignRequests() < 1; time.Sleep(time.Millisecond) {
				if time.Now().After(end) {
					t.Fatal("the request given up never reached the card")
				}
			}
			time.Sleep(2 * time.Millisecond)
			c.send(t, "88888888")
			if d := c.replies(t, 1)[1].Sub(start); d < interval-2*time.Millisecond {
				t.Errorf("second signature %v after the first, given up; the card takes %v", d, interval)
			}
		}},
		{"ok without a burst every signature takes an interval", 0, func(t *testing.T, ctl *eporttest.Control) {
			c := dial(t, ctl)
			start := time.Now()
			c.send(t, "88888888")
			if d := c.replies(t, 1)[1].Sub(start); d < interval-5*time.Millisecond {
				t.Errorf("first signature took %v, want a full interval", d)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := eporttest.NewSM2Key(t, 0x0300000000000777)
			ctl := eporttest.New(t, k.Signer, k.Cert, "88888888")
			ctl.SetRate(1200)
			ctl.SetBurst(tt.burst)
			tt.run(t, ctl)
		})
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
