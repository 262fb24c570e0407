package devstack

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/customssim"
	"github.com/ceb179/ceb179/internal/dev/emulator"
)

// startStack starts a local stack on a free port with its data in a
// temporary directory.
func startStack(t *testing.T, o Options) *Stack {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Prefix == "" {
		// One emulator serves the test binary: each stack gets its own tables.
		o.Prefix = emulator.NewPrefix(t.Name())
	}
	s, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// ask calls platDataOpen as customs does and returns the ack code.
func ask(t *testing.T, s *Stack, orderNo, sessionID string) string {
	t.Helper()
	open, _ := json.Marshal(customs.OpenReq{OrderNo: orderNo, SessionID: sessionID, ServiceTime: time.Now().UnixMilli()})
	resp, err := http.PostForm(s.URL+"/platDataOpen", url.Values{"openReq": {string(open)}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ack customs.Ack
	if err := json.NewDecoder(resp.Body).Decode(&ack); err != nil {
		t.Fatal(err)
	}
	return ack.Code
}

// waitState waits for the request of sessionID to reach a final state.
func waitState(t *testing.T, s *Stack, sessionID string, within time.Duration) ceb179.Request {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		req, err := s.Store.GetRequest(context.Background(), sessionID)
		if err == nil && req.State.Final() {
			return req
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s not final after %s (state %q, err %v)", sessionID, within, req.State, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPipeline(t *testing.T) {
	var journeyOut syncWriter
	s := startStack(t, Options{Journey: &journeyOut})

	resp, err := http.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}

	tests := []struct {
		name      string
		orderNo   string
		wantState ceb179.State
		wantLists []string
	}{
		{"ok single-order payment", DemoOrderSingle, ceb179.StateAccepted, []string{DemoOrderSingle}},
		{"ok multi-order payment lists every order", DemoOrderMultiB, ceb179.StateAccepted, []string{DemoOrderMultiA, DemoOrderMultiB}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sid := customssim.NewSessionID()
			if code := ask(t, s, tt.orderNo, sid); code != customs.CodeSuccess {
				t.Fatalf("ack %s", code)
			}
			req := waitState(t, s, sid, 30*time.Second)
			if req.State != tt.wantState {
				t.Fatalf("state %s (%s), want %s", req.State, req.Reason, tt.wantState)
			}
			up, err := s.Sim.Wait(context.Background(), sid)
			if err != nil {
				t.Fatal(err)
			}
			if !up.SignatureValid || !up.Accepted() {
				t.Fatalf("upload at customs: %+v", up)
			}
			if strings.Join(up.OrderNos, ",") != strings.Join(tt.wantLists, ",") {
				t.Fatalf("uploaded orders %v, want %v", up.OrderNos, tt.wantLists)
			}
		})
	}

	// A repeated customs request: answered 10000, uploaded once.
	sid := customssim.NewSessionID()
	for range 2 {
		if code := ask(t, s, DemoOrderSingle, sid); code != customs.CodeSuccess {
			t.Fatalf("ack %s", code)
		}
	}
	waitState(t, s, sid, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	if n := s.Sim.PostsFor(sid); n != 1 {
		t.Fatalf("duplicate customs request uploaded %d times, want 1", n)
	}

	time.Sleep(time.Second) // let the journey watcher catch up
	sum := s.Summary()
	if sum.ByState[ceb179.StateAccepted] != 3 || sum.OnTime != 3 {
		t.Errorf("summary %+v", sum)
	}
	out := journeyOut.String()
	for _, want := range []string{"→ ", "ack 10000", "✓ ", "accepted by customs", "on time"} {
		if !strings.Contains(out, want) {
			t.Errorf("journey output lacks %q:\n%s", want, out)
		}
	}
}

func TestUnknownOrderEndsNoData(t *testing.T) {
	s := startStack(t, Options{Window: 3 * time.Second})
	sid := customssim.NewSessionID()
	if code := ask(t, s, "NO-SUCH-ORDER", sid); code != customs.CodeSuccess {
		t.Fatalf("ack %s: customs must get 10000 even for an unknown order", code)
	}
	req := waitState(t, s, sid, 30*time.Second)
	if req.State != ceb179.StateNoData {
		t.Fatalf("state %s (%s), want NO_DATA", req.State, req.Reason)
	}
	if n := s.Sim.PostsFor(sid); n != 0 {
		t.Fatalf("%d uploads were made for an order without data", n)
	}
}

func TestUploadRejectedByCustoms(t *testing.T) {
	// A customs endpoint where the platform's certificate is not registered.
	strict := customssim.New()
	srv := httptest.NewServer(strict)
	defer srv.Close()
	s := startStack(t, Options{CustomsUploadURL: srv.URL + customssim.UploadPath})
	if s.Sim != nil {
		t.Fatal("the embedded simulator runs although CustomsUploadURL is set")
	}
	sid := customssim.NewSessionID()
	if code := ask(t, s, DemoOrderSingle, sid); code != customs.CodeSuccess {
		t.Fatalf("ack %s", code)
	}
	req := waitState(t, s, sid, 30*time.Second)
	if req.State != ceb179.StateRejected || !strings.Contains(req.Reason, "not registered") {
		t.Fatalf("state %s (%q), want REJECTED with customs' message", req.State, req.Reason)
	}
	if n := len(strict.Uploads()); n != 1 {
		t.Fatalf("customs received %d uploads, want 1 (a rejection is not retried)", n)
	}
}

func TestBridgeRestart(t *testing.T) {
	s := startStack(t, Options{})
	s.StopBridge()
	var sids []string
	for _, order := range []string{DemoOrderSingle, DemoOrderMultiA, DemoOrderMultiB} {
		sid := customssim.NewSessionID()
		sids = append(sids, sid)
		if code := ask(t, s, order, sid); code != customs.CodeSuccess {
			t.Fatalf("ack %s", code)
		}
	}
	// With the bridge down the jobs wait on the sign queue.
	time.Sleep(time.Second)
	for _, sid := range sids {
		req, err := s.Store.GetRequest(context.Background(), sid)
		if err != nil || req.State.Final() {
			t.Fatalf("session %s is %s (%v) while the bridge is down", sid, req.State, err)
		}
	}
	if err := s.StartBridge(); err != nil {
		t.Fatal(err)
	}
	for _, sid := range sids {
		if req := waitState(t, s, sid, 30*time.Second); req.State != ceb179.StateAccepted {
			t.Fatalf("session %s: %s (%s)", sid, req.State, req.Reason)
		}
	}
	for _, sid := range sids {
		if n := s.Sim.PostsFor(sid); n != 1 {
			t.Errorf("session %s uploaded %d times, want 1", sid, n)
		}
	}
}
