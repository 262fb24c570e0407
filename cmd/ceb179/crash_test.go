//go:build !windows

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/customssim"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// Bounds of the crash drill: a burst of drillRate requests a second for
// drillBurst against a card signing drillCardRate a minute, stopped by a
// signal drillStopAfter into it; after the restart, uploads are awaited
// until drillQuiet passes without a new post, at most drillWait.
const (
	drillRate      = 50
	drillBurst     = 4 * time.Second
	drillStopAfter = 3 * time.Second
	drillQuiet     = 5 * time.Second
	// drillCardRate is the card's signatures a minute: 20 a second, less
	// than half the burst.
	drillCardRate = 1200
	drillWait     = 60 * time.Second
	// drillWriteGap bounds the time from the emulator's last write of
	// its state to a kill: it writes about once a second (more on a busy
	// machine).
	drillWriteGap = 3 * time.Second
	// drillWriteSlack is how long before its file's time a write may have
	// read the state.
	drillWriteSlack = 250 * time.Millisecond
)

// TestLocalCrashDrill runs the built `ceb179 local --data DIR
// --bridge-config` as a process, signing with a fake E-Port card slower
// than the burst and uploading to a customs simulator outside it, bursts
// customs requests at it, stops it in the middle of the burst, starts it
// again on the same folder and counts, at the customs simulator, what
// became of the requests it answered 10000. Killed with SIGKILL, only the
// emulator's last second or so of writes may be lost: a request answered
// but not yet written (never uploaded), or an upload posted again
// (customs answers 入库失败); every request answered before that is in the
// restarted stack's table. Stopped with SIGINT (Ctrl-C), nothing may be
// lost and nothing posted twice, though hsmbridge held jobs at the stop.
// docs/operations.md reports the figures.
func TestLocalCrashDrill(t *testing.T) {
	bin, dir := builtCommand(t), t.TempDir()
	ebp := importFixture(t).EbpCode
	payments, orders := writeDrillPayments(t, dir, 100)

	for _, tc := range []struct {
		name   string
		signal syscall.Signal
	}{
		{"SIGKILL", syscall.SIGKILL},
		{"SIGINT", syscall.SIGINT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// An E-Port card slower than the burst, so that hsmbridge
			// holds jobs when the stack stops.
			card := eporttest.NewSM2Key(t, 0x0300000000000d71)
			ctl := eporttest.New(t, card.Signer, card.Cert, "88888888")
			ctl.SetRate(drillCardRate)
			ctl.SetBurst(1)
			// The machine's PIN memory in a folder of this subtest's (no
			// t.Setenv in a parallel test).
			cfg := filepath.Join(t.TempDir(), "hsmbridge.yaml")
			yaml := fmt.Sprintf("statusAddr: \"off\"\nprobeInterval: 1s\nsignTimeout: 10s\nstateDir: %q\nsigners:\n"+
				"  - {name: card-1, type: eport, ebpCode: %s, url: %q, pinFile: %q}\n", t.TempDir(), ebp, ctl.URL(), writePIN(t, "88888888"))
			if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			sim := customssim.Serve(t, customssim.WithFallback(customssim.Judge()))
			sim.Register(ebp, card.Cert)
			data := filepath.Join(dir, tc.name)
			args := []string{"--data", data, "--no-demo", "--bridge-config", cfg}

			first := startDrillStack(t, bin, dir, sim.UploadURL(), "first", args)
			if out, err := exec.Command(bin, "import", "--local", "--data", data, payments).CombinedOutput(); err != nil {
				t.Fatalf("import: %v\n%s", err, out)
			}
			// The records are older than the emulator's last write.
			time.Sleep(2 * time.Second)

			sent := burst(t, first.url, orders, func() {
				if err := first.cmd.Process.Signal(tc.signal); err != nil {
					t.Error(err)
				}
			})
			first.wait(t, tc.signal)
			stoppedAt, stopAt := time.Now(), sent[0].stopAt
			written := lastWrite(data)
			t.Logf("%s: the emulator's state was last written %s", tc.name, relative(written, stopAt, "the stop"))

			second := startDrillStack(t, bin, dir, sim.UploadURL(), "second", args)
			upAfter := time.Since(stoppedAt)
			awaitUploads(sim, sent)
			d := countDrill(sim, sent)
			// What the restarted stack knows of each one not posted or
			// posted twice: "not recorded" is lost for good; a state not
			// final is still worked on (a lease of the killed process
			// lapses first).
			state := map[string]string{}
			for _, r := range append(d.lost, d.twice...) {
				state[r.sid] = drillState(bin, data, r.sid)
			}
			recorded := drillRecorded(t, bin, data)
			// What was answered before the last write is kept: the
			// restarted stack knows the latest ten of those requests.
			var before []*drillRequest
			for _, r := range sent {
				if !r.answered.IsZero() && r.answered.Before(written.Add(-drillWriteSlack)) {
					before = append(before, r)
				}
			}
			slices.SortFunc(before, func(a, b *drillRequest) int { return b.answered.Compare(a.answered) })
			for _, r := range before[:min(10, len(before))] {
				if st := drillState(bin, data, r.sid); st == "not recorded" {
					t.Errorf("%s, answered %s, is not in the restarted stack's table", r.sid, relative(r.answered, written, "the last write"))
				}
			}
			second.stop(t)

			var gone, working, misread []*drillRequest
			for _, r := range d.lost {
				if state[r.sid] == "not recorded" {
					gone = append(gone, r)
				} else {
					working = append(working, r)
				}
			}
			for _, r := range d.twice {
				if !strings.HasPrefix(state[r.sid], "ACCEPTED") {
					misread = append(misread, r)
				}
			}
			t.Logf("%s %v into a %d/s burst: sent %d, answered 10000 %d, uploaded %d; not posted %d (not recorded, lost for good: %d; recorded, still in progress: %d); posted twice %d (recorded as other than ACCEPTED: %d); posted without an answer %d; requests in the table after the restart %d; up again %v after the stop",
				tc.name, drillStopAfter, drillRate, len(sent), d.answered, d.uploaded, len(d.lost), len(gone), len(working),
				len(d.twice), len(misread), d.unanswered, recorded, upAfter.Round(100*time.Millisecond))
			firstPost := map[string]time.Time{}
			for _, u := range sim.Uploads() {
				if _, ok := firstPost[u.SessionID]; !ok {
					firstPost[u.SessionID] = u.At
				}
			}
			for _, r := range append(d.lost, d.twice...) {
				posted := "never posted"
				if at, ok := firstPost[r.sid]; ok {
					posted = "first posted " + relative(at, stopAt, "the stop")
				}
				t.Logf("  %s answered %s, %s, posted %d times; now %s",
					r.sid, relative(r.answered, stopAt, "the stop"), posted, sim.PostsFor(r.sid), state[r.sid])
			}
			if d.answered == 0 {
				t.Fatalf("no request answered before the stop")
			}
			switch tc.signal {
			case syscall.SIGINT:
				if !written.After(stopAt) {
					t.Errorf("a graceful stop did not write the state: last written %s", relative(written, stopAt, "the stop"))
				}
				if len(d.lost) > 0 || len(d.twice) > 0 || recorded < d.answered {
					t.Errorf("a graceful stop left %d answered requests not posted, posted %d twice, and %d of %d answered in the table",
						len(d.lost), len(d.twice), recorded, d.answered)
				}
			case syscall.SIGKILL:
				// Only the last second or so is lost: the state was written
				// shortly before the kill, and a request lost for good was
				// answered after that write. (One recorded but still in
				// progress is not lost: the restarted stack works on it.)
				if written.IsZero() || stopAt.Sub(written) > drillWriteGap {
					t.Errorf("the emulator's state was last written %s; want within %v", relative(written, stopAt, "the kill"), drillWriteGap)
				}
				for _, r := range gone {
					if r.answered.Before(written.Add(-drillWriteSlack)) {
						t.Errorf("%s, answered %s, is lost", r.sid, relative(r.answered, written, "the last write"))
					}
				}
			}
		})
	}
}

// drillRecorded returns how many requests of the day the running local
// stack of data holds (`ceb179 status --json`).
func drillRecorded(t *testing.T, bin, data string) int {
	t.Helper()
	out, err := exec.Command(bin, "status", "--local", "--data", data, "--json").Output()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var st struct {
		Today struct {
			Requests int `json:"requests"`
		} `json:"today"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st.Today.Requests
}

// lastWrite returns when the emulator last wrote its tables in data
// (zero when it never did).
func lastWrite(data string) time.Time {
	fi, err := os.Stat(filepath.Join(data, "aws", "dynamodb.json"))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// relative says when t was next to ref, named what: "340ms before the
// stop", "1.2s after the stop", "never".
func relative(t, ref time.Time, what string) string {
	if t.IsZero() {
		return "never"
	}
	d := ref.Sub(t).Round(time.Millisecond)
	if d < 0 {
		return fmt.Sprintf("%v after %s", -d, what)
	}
	return fmt.Sprintf("%v before %s", d, what)
}

// drillState returns the state `ceb179 show` gives a session on the
// local stack of data ("ACCEPTED (ON_TIME)"), or "not recorded".
func drillState(bin, data, sid string) string {
	out, err := exec.Command(bin, "show", "--local", "--data", data, sid).Output()
	if err != nil {
		return "not recorded"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	// session SID  order ORDER  STATE (OUTCOME)
	if _, after, ok := strings.Cut(first, "order "); ok {
		if _, st, ok := strings.Cut(strings.TrimSpace(after), "  "); ok {
			return strings.TrimSpace(st)
		}
	}
	return first
}

// writeDrillPayments writes n single-order payments of the import fixture
// as JSON Lines and returns the file and the orders.
func writeDrillPayments(t *testing.T, dir string, n int) (string, []string) {
	t.Helper()
	base := importFixture(t)
	var b strings.Builder
	orders := make([]string, n)
	for i := range n {
		p := base
		p.PayTransactionID = fmt.Sprintf("42000003012026%010d", i)
		o := base.Orders[0]
		o.OrderNo = fmt.Sprintf("DRILL-%04d", i)
		p.Orders = []customs.Order{o}
		line, err := p.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(line, '\n'))
		orders[i] = o.OrderNo
	}
	path := filepath.Join(dir, "drill.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, orders
}

// localProcess is a running `ceb179 local`.
type localProcess struct {
	cmd  *exec.Cmd
	url  string
	done chan error
}

// startDrillStack starts `ceb179 local` with args on a free port, its output in
// dir/local-<name>-*.out, and waits until it answers /healthz.
func startDrillStack(t *testing.T, bin, dir, customsURL, name string, args []string) *localProcess {
	t.Helper()
	addr := freeAddr(t)
	out, err := os.Create(filepath.Join(dir, fmt.Sprintf("local-%s-%s.out", strings.ReplaceAll(t.Name(), "/", "-"), name)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	cmd := exec.Command(bin, append([]string{"local", "--listen", addr}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CUSTOMS_UPLOAD_URL="+customsURL)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &localProcess{cmd: cmd, url: "http://" + addr, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(p.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s run exited before it was up: %v\n%s", name, err, readFile(t, out.Name()))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s run not up in 90 s\n%s", name, readFile(t, out.Name()))
		}
	}
}

// wait waits for the process to end after sig: killed by SIGKILL, or
// exiting 0 after SIGINT.
func (p *localProcess) wait(t *testing.T, sig syscall.Signal) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		if sig == syscall.SIGINT && err != nil {
			t.Fatalf("stopped with SIGINT: %v", err)
		}
		if sig == syscall.SIGKILL {
			if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("not killed by SIGKILL: %v", err)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after %v", sig)
	}
}

// stop stops the process with Ctrl-C and waits for it.
func (p *localProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	p.wait(t, syscall.SIGINT)
}

// drillRequest is one customs request of the burst.
type drillRequest struct {
	sid      string
	answered time.Time // when 10000 came back; zero when it did not
	stopAt   time.Time // when the stack was told to stop
}

// burst calls platDataOpen drillRate times a second for drillBurst, each
// with a new sessionID and one of orders in turn (no order more often than
// the daily cap allows), and calls stop drillStopAfter into it. It returns
// every request, answered or not.
func burst(t *testing.T, base string, orders []string, stop func()) []*drillRequest {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	n := int(drillBurst.Seconds() * drillRate)
	if n > len(orders)*5 {
		t.Fatalf("%d requests for %d orders: over the daily cap", n, len(orders))
	}
	reqs := make([]*drillRequest, n)
	start := time.Now()
	var stopAt time.Time
	stopped := false
	var wg sync.WaitGroup
	for i := range n {
		at := start.Add(time.Duration(i) * time.Second / drillRate)
		time.Sleep(time.Until(at))
		if !stopped && time.Since(start) >= drillStopAfter {
			stopAt, stopped = time.Now(), true
			stop()
		}
		r := &drillRequest{sid: fmt.Sprintf("drill-%d-%04d", start.UnixNano(), i)}
		reqs[i] = r
		wg.Go(func() {
			open, _ := json.Marshal(customs.OpenReq{OrderNo: orders[i%len(orders)], SessionID: r.sid, ServiceTime: time.Now().UnixMilli()})
			resp, err := client.PostForm(base+"/platDataOpen", url.Values{"openReq": {string(open)}})
			if err != nil {
				return
			}
			defer resp.Body.Close()
			var ack customs.Ack
			if json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&ack) == nil && ack.Code == customs.CodeSuccess {
				r.answered = time.Now()
			}
		})
	}
	wg.Wait()
	for _, r := range reqs {
		r.stopAt = stopAt
	}
	return reqs
}

// awaitUploads waits until every answered request was posted to customs,
// or no new post came for drillQuiet, at most drillWait.
func awaitUploads(sim *customssim.Server, reqs []*drillRequest) {
	end := time.Now().Add(drillWait)
	last, lastPosts := time.Now(), sim.Posts()
	for time.Now().Before(end) && time.Since(last) < drillQuiet {
		missing := 0
		for _, r := range reqs {
			if !r.answered.IsZero() && sim.PostsFor(r.sid) == 0 {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
		if p := sim.Posts(); p != lastPosts {
			last, lastPosts = time.Now(), p
		}
	}
}

// drillCount is what the customs simulator saw of a burst.
type drillCount struct {
	answered, uploaded, unanswered int
	lost, twice                    []*drillRequest
}

// countDrill counts, at the customs simulator, the burst's answered
// requests that were uploaded (accepted by customs), never posted, or
// posted more than once, and the posts of requests not answered 10000.
func countDrill(sim *customssim.Server, reqs []*drillRequest) drillCount {
	accepted := map[string]bool{}
	for _, u := range sim.Uploads() {
		if u.Accepted() {
			accepted[u.SessionID] = true
		}
	}
	var d drillCount
	for _, r := range reqs {
		posts := sim.PostsFor(r.sid)
		if r.answered.IsZero() {
			if posts > 0 {
				d.unanswered++
			}
			continue
		}
		d.answered++
		if accepted[r.sid] {
			d.uploaded++
		}
		if posts == 0 {
			d.lost = append(d.lost, r)
		}
		if posts > 1 {
			d.twice = append(d.twice, r)
		}
	}
	byAnswer := func(a, b *drillRequest) int { return a.answered.Compare(b.answered) }
	slices.SortFunc(d.lost, byAnswer)
	slices.SortFunc(d.twice, byAnswer)
	return d
}
