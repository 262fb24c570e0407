package customssim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ceb179/ceb179/internal/customs"
)

// DefaultWindow is how long the rehearsal waits for each upload: customs'
// "valid time", about two minutes.
const DefaultWindow = 120 * time.Second

// UserAgent is the User-Agent customs' caller sends; WAF rules that block it
// break the audit, so the rehearsal sends the same.
const UserAgent = "Apache-HttpClient/4.5.13 (Java/1.8.0_202)"

// Rehearsal describes a business-test rehearsal: customs calls the
// platform's platDataOpen for each order and waits for the uploads.
type Rehearsal struct {
	// PlatformURL is the platform's registered platDataOpen address.
	PlatformURL string
	// Orders are the orders to ask for, one request each.
	Orders []string
	// Window is how long an upload may take (default DefaultWindow).
	Window time.Duration
	// Client sends the calls (default: a client with a 10 s timeout).
	Client *http.Client
}

// Result is what the rehearsal found for one request.
type Result struct {
	OrderNo   string
	SessionID string
	// AckCode is the platform's answer code ("" when the call failed).
	AckCode string
	// AckLatency is how long the platform took to answer.
	AckLatency time.Duration
	// Upload is the upload received for the session, if any.
	Upload *Upload
	// UploadAfter is the time from the call to the upload.
	UploadAfter time.Duration
	// OnTime reports whether the upload arrived within the window.
	OnTime bool
	// Problems lists what failed, empty when the request passed.
	Problems []string
}

// Passed reports whether the request passed: answered 10000, uploaded in
// time, accepted with a valid signature.
func (r Result) Passed() bool { return len(r.Problems) == 0 }

// Report is the outcome of a rehearsal.
type Report struct {
	Results []Result
}

// Passed reports whether every request passed.
func (r Report) Passed() bool {
	for _, res := range r.Results {
		if !res.Passed() {
			return false
		}
	}
	return len(r.Results) > 0
}

// Rehearse calls the platform for every order at once, as customs' business
// test does, and waits for each upload up to the window.
func (s *Sim) Rehearse(ctx context.Context, r Rehearsal) Report {
	if r.Window <= 0 {
		r.Window = DefaultWindow
	}
	if r.Client == nil {
		r.Client = &http.Client{Timeout: 10 * time.Second}
	}
	results := make([]Result, len(r.Orders))
	var wg sync.WaitGroup
	for i, order := range r.Orders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.rehearseOne(ctx, r, order)
		}()
	}
	wg.Wait()
	return Report{Results: results}
}

func (s *Sim) rehearseOne(ctx context.Context, r Rehearsal, orderNo string) Result {
	res := Result{OrderNo: orderNo, SessionID: NewSessionID()}
	start := s.now()
	code, err := callPlatform(ctx, r.Client, r.PlatformURL, orderNo, res.SessionID, start)
	res.AckLatency = s.now().Sub(start)
	res.AckCode = code
	if err != nil {
		res.Problems = append(res.Problems, "platDataOpen: "+err.Error())
		return res
	}
	if code != customs.CodeSuccess {
		res.Problems = append(res.Problems, "platDataOpen answered "+code+", not 10000")
	}
	wctx, cancel := context.WithTimeout(ctx, r.Window)
	defer cancel()
	up, err := s.Wait(wctx, res.SessionID)
	if err != nil {
		res.Problems = append(res.Problems, fmt.Sprintf("no upload within %s", r.Window))
		return res
	}
	res.Upload = &up
	res.UploadAfter = up.At.Sub(start)
	res.OnTime = res.UploadAfter <= r.Window
	if !res.OnTime {
		res.Problems = append(res.Problems, "upload late")
	}
	if !up.SignatureValid {
		res.Problems = append(res.Problems, "signature not valid")
	}
	res.Problems = append(res.Problems, up.Problems...)
	found := false
	for _, o := range up.OrderNos {
		found = found || o == orderNo
	}
	if !found {
		res.Problems = append(res.Problems, "upload does not list order "+orderNo)
	}
	return res
}

// callPlatform POSTs one openReq and returns the answer's code.
func callPlatform(ctx context.Context, c *http.Client, platformURL, orderNo, sessionID string, now time.Time) (string, error) {
	openReq, _ := json.Marshal(customs.OpenReq{OrderNo: orderNo, SessionID: sessionID, ServiceTime: now.UnixMilli()})
	body := url.Values{"openReq": {string(openReq)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, platformURL, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", UserAgent)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	var ack customs.Ack
	if err := json.Unmarshal(raw, &ack); err != nil || ack.Code == "" {
		return "", fmt.Errorf("answer is not a customs ack (HTTP %d)", resp.StatusCode)
	}
	return ack.Code, nil
}

// NewSessionID returns a fresh sessionID in the shape customs uses.
func NewSessionID() string {
	b := make([]byte, 11)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:6] + "-" + h[6:14] + "-" + h[14:22]
}

// WriteTable writes the report as a table, one line per request, and a
// closing line saying whether the rehearsal passed.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tSESSION\tACK\tACK ms\tUPLOAD s\tON TIME\tSIGNATURE\tPROBLEMS")
	passed := 0
	for _, res := range r.Results {
		upload, sig := "-", "-"
		if res.Upload != nil {
			upload = fmt.Sprintf("%.1f", res.UploadAfter.Seconds())
			sig = "invalid"
			if res.Upload.SignatureValid {
				sig = "valid"
			}
		}
		problems := strings.Join(res.Problems, "; ")
		if problems == "" {
			problems = "-"
			passed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%s\t%v\t%s\t%s\n", res.OrderNo, res.SessionID, orDash(res.AckCode),
			float64(res.AckLatency.Microseconds())/1000, upload, res.OnTime, sig, problems)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "PASSED"
	if !r.Passed() {
		verdict = "FAILED"
	}
	_, err := fmt.Fprintf(w, "rehearsal %s: %d of %d requests passed\n", verdict, passed, len(r.Results))
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
