package statuspage_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/ops"
	"github.com/ceb179/ceb179/internal/ops/opstest"
	"github.com/ceb179/ceb179/internal/statuspage"
)

var update = flag.Bool("update", false, "write the screenshot to docs/status-page.png")

// The seeded day, and the clock of the page: the next morning.
const day = "2026-11-24"

var now = time.Date(2026, 11, 25, 9, 0, 0, 0, ceb179.China)

// site is the status page over a realistic day, served on 127.0.0.1.
type site struct {
	url    string
	seeded opstest.Seeded
}

var (
	siteOnce sync.Once
	theSite  *site
	siteErr  error
)

// signer is what a healthy bridge with one card reports.
func signer(context.Context) (*ceb179.SignerHealth, error) {
	return &ceb179.SignerHealth{Time: now, Policy: "edf", InMemory: 3, MaxBacklog: 2000, Waiting: 2,
		Signers: []ceb179.SignerStatus{
			{Name: "eport-card-1", EbpCode: opstest.EbpCodes[0], State: "healthy", Concurrency: 1, Signs: 1874, SignsPerMinute: 4, EstimateMs: 240},
			{Name: "cipher-machine", EbpCode: opstest.EbpCodes[1], State: "healthy", Concurrency: 8, Signs: 552, SignsPerMinute: 1, EstimateMs: 12},
			{Name: "eport-card-2", EbpCode: opstest.EbpCodes[0], State: "disabled: PIN refused", Concurrency: 1, Failures: 1, LastError: "signer: PIN refused: e-port cus-sec_SpcSignDataAsPEM: SW=63C7"},
		}}, nil
}

func startSite(t *testing.T) *site {
	t.Helper()
	siteOnce.Do(func() {
		env := awstest.New(t)
		store := dynamo.New(env.DynamoDB, dynamo.Tables{Requests: env.Table("RequestsTable"), Payments: env.Table("PaymentsTable")}, 0)
		s := &site{}
		if s.seeded, siteErr = opstest.SeedDay(context.Background(), store, day, 2500, "PAGE-", 11); siteErr != nil {
			return
		}
		if _, siteErr = opstest.SeedDay(context.Background(), store, "2026-11-23", 300, "PREV-", 12); siteErr != nil {
			return
		}
		svc := ops.New(store, nil, ops.WithClock(func() time.Time { return now }))
		mux := http.NewServeMux()
		statuspage.New(svc, statuspage.WithSigner(signer)).Mount(mux)
		srv := httptest.NewServer(mux) // 127.0.0.1
		s.url = srv.URL
		theSite = s
	})
	if siteErr != nil {
		t.Fatal(siteErr)
	}
	if theSite == nil {
		t.Fatal("the shared test data could not be set up (see the first test's failure)")
	}
	return theSite
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPage(t *testing.T) {
	s := startSite(t)
	failed := s.seeded.Sessions[ops.OutcomeFailed][0]
	tests := []struct {
		name   string
		path   string
		status int
		want   []string
	}{
		{"ok day", "/status?day=" + day, 200, []string{
			fmt.Sprintf(`id="requests">%d<`, s.seeded.Total()),
			fmt.Sprintf(`id="count-on_time">%d<`, s.seeded.Count(ops.OutcomeOnTime)),
			fmt.Sprintf(`id="count-rejected">%d<`, s.seeded.Count(ops.OutcomeRejected)),
			fmt.Sprintf(`id="failures">%d<`, s.seeded.Total()-s.seeded.Count(ops.OutcomeOnTime)),
			`<svg id="timeline"`, `<svg id="histogram"`, `href="/status/trail/` + failed + `"`, "eport-card-1", opstest.EbpCodes[2], "2026-11-23", "disabled: PIN refused"}},
		{"ok trail of a failure", "/status/trail/" + failed, 200, []string{failed, "FAILED (FAILED)", "upload attempt 3", "HTTP 502", `id="attempts"`}},
		{"ok a quiet day", "/status?day=2026-11-20", 200, []string{`id="requests">0<`}},
		{"fail unknown session", "/status/trail/NOPE", 404, []string{"no such session"}},
		{"fail bad day", "/status?day=tomorrow", 400, []string{"YYYY-MM-DD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, s.url+tt.path)
			if code != tt.status {
				t.Fatalf("HTTP %d, want %d: %.300s", code, tt.status, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, bad := range []string{"<script", "http://", "https://", "c2lnbmF0dXJl"} {
				if strings.Contains(strings.ReplaceAll(body, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
					t.Errorf("page holds %q", bad)
				}
			}
		})
	}
}

// chromium is the Debian package's browser; CI installs package chromium.
const chromium = "/usr/bin/chromium"

// headless runs chromium headless on url with extra arguments.
func headless(t *testing.T, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,1600", "--hide-scrollbars"}
	cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// TestChromium renders the page in headless Chromium: the DOM holds the
// day's numbers and the screenshot shows the charts.
func TestChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not installed (Debian package chromium)")
	}
	s := startSite(t)
	url := s.url + "/status?day=" + day

	dom := string(headless(t, "--dump-dom", url))
	for _, w := range []string{
		fmt.Sprintf(`id="requests">%d<`, s.seeded.Total()),
		fmt.Sprintf(`id="count-late">%d<`, s.seeded.Count(ops.OutcomeLate)),
		fmt.Sprintf(`id="count-no_data">%d<`, s.seeded.Count(ops.OutcomeNoData)),
		fmt.Sprintf(`id="count-failed">%d<`, s.seeded.Count(ops.OutcomeFailed)),
		fmt.Sprintf(`id="count-capped">%d<`, s.seeded.Count(ops.OutcomeCapped)),
		`id="ontime-rate">`, "<circle", "eport-card-1",
	} {
		if !strings.Contains(dom, w) {
			t.Errorf("rendered DOM lacks %q", w)
		}
	}

	shot := filepath.Join(t.TempDir(), "status-page.png")
	if *update {
		abs, err := filepath.Abs(filepath.Join("..", "..", "docs", "status-page.png"))
		if err != nil {
			t.Fatal(err)
		}
		shot = abs
	}
	headless(t, "--screenshot="+shot, url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 1600 {
		t.Fatalf("screenshot %dx%d, want 1280x1600", b.Dx(), b.Dy())
	}
	// The charts: the top third of the page must hold many coloured pixels
	// (the timeline's dots, hour bars and histogram bars), not a blank page.
	green, coloured := countPixels(img, image.Rect(0, 150, 1280, 900))
	t.Logf("screenshot %s: %d green, %d coloured pixels in the chart area", shot, green, coloured)
	if green < 2000 || coloured < 20000 {
		t.Errorf("the charts look empty: %d green and %d coloured pixels", green, coloured)
	}
}

// countPixels counts, inside r, the pixels of the on-time green and the
// pixels that are neither white nor grey.
func countPixels(img image.Image, r image.Rectangle) (green, coloured int) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c, g, b, _ := img.At(x, y).RGBA()
			c, g, b = c>>8, g>>8, b>>8
			if g > c+40 && g > b+20 {
				green++
			}
			if max(c, g, b)-min(c, g, b) > 40 {
				coloured++
			}
		}
	}
	return green, coloured
}

// TestPageRefusesForeignHost: a page reached under another name (DNS
// rebinding: a web page the operator visits resolves its own name to
// 127.0.0.1) is refused; order numbers never leave.
func TestPageRefusesForeignHost(t *testing.T) {
	s := startSite(t)
	for _, tt := range []struct {
		name, host string
		want       int
	}{
		{"ok loopback", "", http.StatusOK},
		{"fail rebinding name", "rebind.evil.example", http.StatusForbidden},
		{"fail rebinding name with port", "rebind.evil.example:80", http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.url+statuspage.Path+"?day="+day, nil)
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusForbidden && strings.Contains(string(b), s.seeded.Sessions[ops.OutcomeFailed][0]) {
				t.Error("refused answer holds a sessionID")
			}
		})
	}
}
