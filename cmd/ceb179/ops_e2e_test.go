package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/records"
)

var e2eSeq atomic.Int64

// TestOperatorCommandsOnPipeline runs real traffic through the local
// pipeline and checks that the operator commands read what it wrote: an
// accepted request and one for an order without data, the status page
// served by the stack, then a replay after the record arrives, which the
// upload claims and customs accepts.
func TestOperatorCommandsOnPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local pipeline")
	}
	data := t.TempDir()
	stack, err := devstack.Start(context.Background(), devstack.Options{
		Listen: "127.0.0.1:0", DataDir: data, Prefix: fmt.Sprintf("ops%d-", e2eSeq.Add(1)), Window: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stack.Close() })

	ask := func(orderNo, sessionID string) {
		t.Helper()
		open, _ := json.Marshal(customs.OpenReq{OrderNo: orderNo, SessionID: sessionID, ServiceTime: time.Now().UnixMilli()})
		resp, err := http.PostForm(stack.URL+"/platDataOpen", url.Values{"openReq": {string(open)}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	final := func(sessionID string) ceb179.Request {
		t.Helper()
		for range 300 {
			r, err := stack.Store.GetRequest(context.Background(), sessionID)
			if err == nil && r.State.Final() {
				return r
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("session %s not final after 30 s", sessionID)
		return ceb179.Request{}
	}
	const lateOrder = "OPS-E2E-LATE-1"
	good, late := fmt.Sprintf("e2e-ok-%d", time.Now().UnixNano()), fmt.Sprintf("e2e-nodata-%d", time.Now().UnixNano())
	ask(devstack.DemoOrderSingle, good)
	ask(lateOrder, late)
	if r := final(good); r.State != ceb179.StateAccepted {
		t.Fatalf("demo order: %s (%s)", r.State, r.Reason)
	}
	if r := final(late); r.State != ceb179.StateNoData {
		t.Fatalf("unknown order: %s (%s)", r.State, r.Reason)
	}

	cli := func(code int, args ...string) string {
		t.Helper()
		r := runCLI(t, nil, append([]string{args[0], "--local", "--data", data}, args[1:]...)...)
		if r.code != code {
			t.Fatalf("ceb179 %v: exit %d, want %d\n%s\n%s", args, r.code, code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	out := cli(exitOK, "status", "--days", "1")
	for _, w := range []string{"requests 2, on time 1 (50.00%), late 0, NO_DATA 1,", devstack.DemoEbpCode, late} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	if out := cli(exitOK, "show", good); !strings.Contains(out, "ACCEPTED (ON_TIME)") || !strings.Contains(out, "customs 10000") {
		t.Errorf("show of the accepted request:\n%s", out)
	}

	resp, err := http.Get(stack.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range []string{`id="requests">2<`, `id="count-no_data">1<`, "keyfile-1", "/status/trail/" + late} {
		if !strings.Contains(string(page), w) {
			t.Errorf("status page of the stack lacks %q", w)
		}
	}

	// The record arrives late; the operator replays the request.
	p := devstack.DemoPayments(devstack.DemoEbpCode, time.Now())[0]
	p.PayTransactionID = "4200000000000000000000009001"
	p.Orders[0].OrderNo = lateOrder
	if _, err := records.NewRecorder(stack.Store).Record(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	cli(exitFail, "replay", "--why", "test", good) // accepted: refused
	out = cli(exitOK, "replay", "--why", "payment record imported late", "--by", "ops-test", "--wait", "30s", late)
	if !strings.Contains(out, "replay 1 of session "+late) || !strings.Contains(out, "now ACCEPTED (LATE)") {
		t.Errorf("replay:\n%s", out)
	}
	out = cli(exitOK, "show", late)
	for _, w := range []string{"assembled again for replay 1", "replay 1 asked by ops-test: payment record imported late", "ACCEPTED, HTTP 200, customs 10000"} {
		if !strings.Contains(out, w) {
			t.Errorf("show after the replay lacks %q:\n%s", w, out)
		}
	}
	if up, err := stack.Sim.Wait(context.Background(), late); err != nil || !up.Accepted() || !up.SignatureValid {
		t.Errorf("customs got %+v, %v", up, err)
	}
	if out := cli(exitOK, "status", "--days", "1"); !strings.Contains(out, "requests 2, on time 1 (50.00%), late 1, NO_DATA 0,") {
		t.Errorf("status after the replay:\n%s", out)
	}
}
