package records

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// ErrUnavailable is wrapped by the errors of Client when the payments API
// did not store a payment (it answered 503 or 5xx, throttled, or could not
// be reached) after every retry. Sending it again later is safe.
var ErrUnavailable = errors.New("payments API unavailable")

// Client records payments and declares orders through the payments API
// (the stack's PaymentsUrl), for services that have no access to the
// payments table. Every request is signed with SigV4 (service
// execute-api) with the credentials of an aws.Config, so the caller needs
// execute-api:Invoke on the API. Failures that may pass (throttling, 5xx,
// network errors) are retried with exponential backoff and full jitter
// within the context; recording is idempotent, so a retried payment that
// was stored the first time answers Duplicate. It is safe for concurrent
// use.
type Client struct {
	base     string // the API's base URL, without /payments
	region   string
	creds    aws.CredentialsProvider
	signer   *v4.Signer
	http     *http.Client
	attempts int
	backoff  time.Duration
	maxWait  time.Duration
}

// ClientOption changes a Client made by NewClient.
type ClientOption func(*Client)

// WithHTTPClient sets the HTTP client (default: one with a 30 s timeout).
func WithHTTPClient(h *http.Client) ClientOption { return func(c *Client) { c.http = h } }

// WithRetries sets how many times a request is sent at most (default 5)
// and the first and longest wait between two tries (default 200 ms and
// 5 s).
func WithRetries(attempts int, first, longest time.Duration) ClientOption {
	return func(c *Client) { c.attempts, c.backoff, c.maxWait = max(attempts, 1), first, max(longest, first) }
}

// NewClient returns a client of the payments API at paymentsURL (the
// stack's PaymentsUrl output, https://…/payments; the base URL of the API
// works too), signing with cfg's credentials for cfg's region.
func NewClient(paymentsURL string, cfg aws.Config, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(paymentsURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("records: payments URL %q is not an http(s) URL", paymentsURL)
	}
	if cfg.Credentials == nil || cfg.Region == "" {
		return nil, errors.New("records: the AWS configuration has no credentials or no region")
	}
	c := &Client{
		base:   strings.TrimSuffix(strings.TrimSuffix(u.String(), "/"), "/payments"),
		region: cfg.Region, creds: cfg.Credentials, signer: v4.NewSigner(),
		http:     &http.Client{Timeout: 30 * time.Second},
		attempts: 5, backoff: 200 * time.Millisecond, maxWait: 5 * time.Second,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Record validates p and records it through the API, with the results and
// errors of Recorder.Record; a payment the API could not store after every
// retry gives an error wrapping ErrUnavailable.
func (c *Client) Record(ctx context.Context, p Payment) (Result, error) {
	out, err := c.RecordBatch(ctx, []Payment{p})
	if err != nil {
		return "", err
	}
	switch o := out[0]; o.Result {
	case Recorded, Duplicate:
		return o.Result, nil
	default:
		return "", fmt.Errorf("record payment %s: %w", p.PayTransactionID, o.Err)
	}
}

// RecordBatch validates every payment of ps and records the valid ones
// through the API in batches of MaxBatch, each payment atomically, and
// returns one Outcome per payment in order (Err set as RecordBatch of a
// Recorder sets it). Payments the API could not store are sent again while
// tries remain; those still not stored are Unavailable. The error reports
// a failure of the whole call (the context ended, an answer that cannot be
// read); outcomes are returned as far as known.
func (c *Client) RecordBatch(ctx context.Context, ps []Payment) ([]Outcome, error) {
	out := make([]Outcome, len(ps))
	var todo []int
	bodies := make([]json.RawMessage, len(ps))
	for i, p := range ps {
		out[i] = Outcome{Index: i, PayTransactionID: p.PayTransactionID}
		err := p.Validate()
		if err == nil {
			bodies[i], err = p.MarshalJSON()
		}
		if err != nil {
			out[i].set(err)
			continue
		}
		todo = append(todo, i)
	}
	for _, chunk := range chunks(todo, bodies, MaxBatch) {
		if err := c.batch(ctx, "/payments", chunk, bodies, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// chunks splits the items at into batches of at most limit items whose
// JSON array stays within MaxBatchBytes.
func chunks(at []int, bodies []json.RawMessage, limit int) [][]int {
	var (
		out  [][]int
		cur  []int
		size int
	)
	for _, i := range at {
		if len(cur) > 0 && (len(cur) == limit || size+len(bodies[i])+1 > MaxBatchBytes-1024) {
			out, cur, size = append(out, cur), nil, 0
		}
		cur = append(cur, i)
		size += len(bodies[i]) + 1
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// DeclareOrders sends declared orders to POST /orders in batches of
// MaxOrderBatch and returns one Outcome per order (Declared, Duplicate,
// Invalid or Unavailable), sending those not stored again while tries
// remain.
func (c *Client) DeclareOrders(ctx context.Context, orders []DeclaredOrder) ([]Outcome, error) {
	out := make([]Outcome, len(orders))
	bodies := make([]json.RawMessage, len(orders))
	var todo []int
	for i, o := range orders {
		out[i] = Outcome{Index: i, OrderNo: o.OrderNo}
		b, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		bodies[i] = b
		todo = append(todo, i)
	}
	for _, chunk := range chunks(todo, bodies, MaxOrderBatch) {
		if err := c.batch(ctx, "/orders", chunk, bodies, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

// batch posts the items at (indexes into bodies and out) as a JSON array
// to path and fills in their outcomes, sending the unstored ones again
// while tries remain.
func (c *Client) batch(ctx context.Context, path string, at []int, bodies []json.RawMessage, out []Outcome) error {
	for attempt := 0; len(at) > 0; attempt++ {
		if attempt > 0 {
			if err := c.wait(ctx, attempt); err != nil {
				return err
			}
		}
		items := make([]json.RawMessage, len(at))
		for j, i := range at {
			items[j] = bodies[i]
		}
		body, _ := json.Marshal(items)
		status, resp, err := c.post(ctx, path, body)
		var a BatchAnswer
		switch {
		case err != nil && ctx.Err() != nil:
			return err
		case err == nil && json.Unmarshal(resp, &a) == nil && len(a.Items) == len(at):
		case err == nil && status < 500 && status != http.StatusTooManyRequests:
			return fmt.Errorf("records: POST %s answered HTTP %d: %s", path, status, short(resp))
		default:
			// No usable answer: every item is unavailable this time.
			a = BatchAnswer{Items: make([]Outcome, len(at))}
			for j := range a.Items {
				a.Items[j] = Outcome{Result: Unavailable, Reasons: []string{UnavailableReason}}
			}
		}
		var again []int
		for j, i := range at {
			o := a.Items[j]
			o.Index, o.PayTransactionID, o.OrderNo = i, cmp.Or(o.PayTransactionID, out[i].PayTransactionID), cmp.Or(o.OrderNo, out[i].OrderNo)
			o.Err = answerErr(o, status, err)
			out[i] = o
			if o.Result == Unavailable {
				again = append(again, i)
			}
		}
		if attempt+1 >= c.attempts {
			return nil
		}
		at = again
	}
	return nil
}

// answerErr is the Go error of an outcome read from the API.
func answerErr(o Outcome, status int, transport error) error {
	switch o.Result {
	case Recorded, Duplicate, Declared:
		return nil
	case Conflict:
		for _, r := range o.Reasons {
			if t := parseOrderTaken(r); t != nil {
				return t
			}
		}
		return ErrConflict
	case Invalid:
		if len(o.Reasons) == 1 && o.Reasons[0] == ExpiredReason {
			return ErrExpired
		}
		ve := &ValidationError{}
		for _, r := range o.Reasons {
			path, msg, ok := strings.Cut(r, ": ")
			if !ok || strings.ContainsAny(path, " \"") {
				return fmt.Errorf("%w: %s", ErrMalformed, r)
			}
			field := path[strings.LastIndex(path, ".")+1:]
			if k := strings.IndexByte(field, '['); k >= 0 {
				field = field[:k]
			}
			ve.Violations = append(ve.Violations, Violation{Path: path, Field: field, Message: msg})
		}
		return ve
	}
	if transport != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, transport)
	}
	return fmt.Errorf("%w: HTTP %d", ErrUnavailable, status)
}

// parseOrderTaken reads the reason OrderTakenError.Error writes.
func parseOrderTaken(r string) *OrderTakenError {
	rest, ok := strings.CutPrefix(r, "order ")
	if !ok {
		return nil
	}
	if no, owner, ok := strings.Cut(rest, " already belongs to payment "); ok {
		return &OrderTakenError{OrderNo: no, Owner: owner}
	}
	if no, ok := strings.CutSuffix(rest, " already belongs to another payment"); ok {
		return &OrderTakenError{OrderNo: no}
	}
	return nil
}

// post sends body to path, signed, and returns the status and body of the
// answer. Network errors, throttling and 5xx answers other than 503 (whose
// body says which items were stored) are tried again within the tries.
func (c *Client) post(ctx context.Context, path string, body []byte) (int, []byte, error) {
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := c.wait(ctx, attempt); err != nil {
				return 0, nil, err
			}
		}
		status, resp, err := c.send(ctx, path, body, hash)
		retry := err != nil || status == http.StatusTooManyRequests || (status >= 500 && status != http.StatusServiceUnavailable)
		if !retry || attempt+1 >= c.attempts || ctx.Err() != nil {
			return status, resp, err
		}
	}
}

// send makes one signed request.
func (c *Client) send(ctx context.Context, path string, body []byte, hash string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("records: AWS credentials: %w", err)
	}
	if err := c.signer.SignHTTP(ctx, creds, req, hash, "execute-api", c.region, time.Now()); err != nil {
		return 0, nil, fmt.Errorf("records: sign request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBatchBytes))
	return resp.StatusCode, b, err
}

// wait sleeps before try number attempt (from 1): a random time up to
// backoff doubled attempt-1 times, at most maxWait.
func (c *Client) wait(ctx context.Context, attempt int) error {
	d := min(c.backoff<<min(attempt-1, 20), c.maxWait)
	t := time.NewTimer(rand.N(d + 1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// short cuts an answer body for an error message.
func short(b []byte) string {
	s := strings.TrimSpace(string(b))
	if r := []rune(s); len(r) > 200 {
		return string(r[:200]) + "…"
	}
	return s
}
