// Package opstest writes a realistic day of customs requests into the
// requests table, with every outcome the status reports, through the same
// store methods the pipeline uses (fast: no pipeline runs). The operator
// commands' and the status page's tests read it back.
package opstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/ops"
)

// EbpCodes are the platforms of the seeded day, the first the busiest.
var EbpCodes = []string{"46016602EV", "3301964J31", "4403169D3W"}

// Mix is the share of each outcome in a seeded day (they sum to 1).
var Mix = []struct {
	Outcome ops.Outcome
	Share   float64
}{
	{ops.OutcomeOnTime, 0.92},
	{ops.OutcomeLate, 0.02},
	{ops.OutcomeNoData, 0.02},
	{ops.OutcomeInvalid, 0.005},
	{ops.OutcomeRejected, 0.01},
	{ops.OutcomeFailed, 0.01},
	{ops.OutcomeCapped, 0.005},
	{ops.OutcomeStuck, 0.01},
}

// Seeded is what SeedDay wrote.
type Seeded struct {
	// Day is the day written (yyyy-mm-dd, China time).
	Day string
	// Sessions lists the sessionIDs of each outcome.
	Sessions map[ops.Outcome][]string
	// ByEbpCode counts the requests that reached assembly per ebpCode.
	ByEbpCode map[string]int
	// Orders maps each sessionID to its orderNo.
	Orders map[string]string
}

// Count returns how many requests of outcome o were written.
func (s Seeded) Count(o ops.Outcome) int { return len(s.Sessions[o]) }

// Total returns how many requests were written.
func (s Seeded) Total() int { return len(s.Orders) }

// plan is one request to write.
type plan struct {
	id, order, ebp string
	outcome        ops.Outcome
	received       time.Time
	e2e            time.Duration
	customs        time.Duration
}

// Store is what SeedDay writes through; the DynamoDB store implements it.
type Store interface {
	CreateRequest(ctx context.Context, r ceb179.Request) (ceb179.Request, bool, error)
	SetState(ctx context.Context, sessionID string, to ceb179.State, reason string, t ceb179.Transition) error
	CreatePending(ctx context.Context, p ceb179.Pending) (ceb179.Pending, bool, error)
	ClaimUpload(ctx context.Context, sessionID, owner string, now, leaseUntil time.Time) (ceb179.UploadClaim, error)
	PutAttempt(ctx context.Context, a ceb179.Attempt) error
	FinishUpload(ctx context.Context, sessionID, owner string, to ceb179.State, reason string, lastAttempt time.Time) error
}

// SeedDay writes n requests received on day (yyyy-mm-dd, China time),
// spread over the day as shop traffic is (quiet at night, busiest in the
// evening), with the outcomes of Mix, prefixing every sessionID with
// prefix. Every outcome gets at least one request. seed makes it
// repeatable.
func SeedDay(ctx context.Context, store Store, day string, n int, prefix string, seed uint64) (Seeded, error) {
	start, err := time.ParseInLocation(time.DateOnly, day, ceb179.China)
	if err != nil {
		return Seeded{}, err
	}
	rng := rand.New(rand.NewPCG(seed, 179))
	out := Seeded{Day: day, Sessions: map[ops.Outcome][]string{}, ByEbpCode: map[string]int{}, Orders: map[string]string{}}
	plans := make([]plan, n)
	for i := range plans {
		o := Mix[len(Mix)-1].Outcome
		if i < len(Mix) {
			o = Mix[i].Outcome // at least one of each
		} else {
			x := rng.Float64()
			for _, m := range Mix {
				if x < m.Share {
					o = m.Outcome
					break
				}
				x -= m.Share
			}
		}
		p := plan{
			id:       fmt.Sprintf("%s%05d", prefix, i),
			order:    fmt.Sprintf("ORD%s%06d", day[2:4]+day[5:7]+day[8:], i),
			outcome:  o,
			received: start.Add(timeOfDay(rng)),
			customs:  time.Duration(40+rng.IntN(300)) * time.Millisecond,
		}
		switch x := rng.Float64(); {
		case x < 0.7:
			p.ebp = EbpCodes[0]
		case x < 0.9:
			p.ebp = EbpCodes[1]
		default:
			p.ebp = EbpCodes[2]
		}
		// End to end: about a second and a half, a long tail; late ones
		// beyond the window.
		p.e2e = time.Duration(math.Exp(rng.NormFloat64()*0.5+0.3) * float64(time.Second))
		if p.e2e > 100*time.Second {
			p.e2e = 100 * time.Second
		}
		if o == ops.OutcomeLate {
			p.e2e = ceb179.Window + time.Duration(5+rng.IntN(400))*time.Second
		}
		plans[i] = p
		out.Sessions[o] = append(out.Sessions[o], p.id)
		out.Orders[p.id] = p.order
		if o != ops.OutcomeNoData && o != ops.OutcomeInvalid && o != ops.OutcomeCapped {
			out.ByEbpCode[p.ebp]++
		}
	}

	const workers = 8
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(plans); i += workers {
				if err := write(ctx, store, plans[i]); err != nil {
					errs[w] = fmt.Errorf("seed %s: %w", plans[i].id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Seeded{}, err
		}
	}
	return out, nil
}

// timeOfDay draws a time of day with more traffic in the day and evening.
func timeOfDay(rng *rand.Rand) time.Duration {
	for range 100 {
		h := rng.Float64() * 24
		// Quiet 1-8 h, busy 10-23 h, peak about 21 h.
		w := 0.15 + 0.85*math.Exp(-math.Pow((h-21)/6, 2))
		if h < 8 && h > 1 {
			w = 0.08
		}
		if rng.Float64() < w {
			return time.Duration(h * float64(time.Hour))
		}
	}
	return 12 * time.Hour
}

// write records one planned request the way ingest, assemble and upload
// would have.
func write(ctx context.Context, store Store, p plan) error {
	deadline := p.received.Add(ceb179.Window)
	req := ceb179.Request{SessionID: p.id, OrderNo: p.order, ServiceTime: p.received.UnixMilli() - 120,
		ReceivedAt: p.received, SourceIP: "203.0.113.7", Deadline: deadline, State: ceb179.StateReceived, Enqueued: true}
	if _, _, err := store.CreateRequest(ctx, req); err != nil {
		return err
	}
	switch p.outcome {
	case ops.OutcomeNoData:
		return store.SetState(ctx, p.id, ceb179.StateNoData, "no payment record for the order before the deadline", ceb179.Assemblable)
	case ops.OutcomeInvalid:
		return store.SetState(ctx, p.id, ceb179.StateInvalid, "payExchangeInfoLists[0].goodsInfo[0].itemLink: not a URL", ceb179.Assemblable)
	case ops.OutcomeCapped:
		return store.SetState(ctx, p.id, ceb179.StateCapped, "request 6 for this order today; at most 5 a day are signed", ceb179.Assemblable)
	}
	assembledAt := p.received.Add(time.Duration(30+p.e2e.Milliseconds()/10) * time.Millisecond)
	sum := sha256.Sum256([]byte(p.id))
	digest := hex.EncodeToString(sum[:])
	pend := ceb179.Pending{SessionID: p.id, EbpCode: p.ebp, GUID: fmt.Sprintf("%08X-0000-5000-8000-%012d", sum[:4], len(p.id)),
		Head: []byte("{}"), Lists: []byte("[]"), ServiceTime: fmt.Sprint(assembledAt.UnixMilli()), Digest: digest,
		Deadline: deadline, CreatedAt: assembledAt}
	if _, _, err := store.CreatePending(ctx, pend); err != nil {
		return err
	}
	if err := store.SetState(ctx, p.id, ceb179.StateAssembled, "", ceb179.Assemblable); err != nil {
		return err
	}
	if p.outcome == ops.OutcomeStuck {
		return nil // the sign job never came back
	}
	owner := "seed-" + p.id
	sent := p.received.Add(p.e2e - p.customs)
	if _, err := store.ClaimUpload(ctx, p.id, owner, sent, sent.Add(30*time.Second)); err != nil {
		return err
	}
	att := func(at time.Time, n int, o ceb179.Outcome, status int, code, msg, errKind string, lat time.Duration) error {
		return store.PutAttempt(ctx, ceb179.Attempt{SessionID: p.id, At: at, N: n, Outcome: o, HTTPStatus: status, Code: code,
			Message: msg, Error: errKind, Latency: lat, Digest: digest, BodyDigest: digest, CertNo: "0300000000000001",
			SignValue: "c2lnbmF0dXJl", Owner: owner})
	}
	var state ceb179.State
	var reason string
	last := sent
	switch p.outcome {
	case ops.OutcomeOnTime, ops.OutcomeLate:
		if p.outcome == ops.OutcomeLate {
			if err := att(sent.Add(-45*time.Second), 1, ceb179.OutcomeUncertain, 0, "", "", "timeout", 10*time.Second); err != nil {
				return err
			}
		}
		if err := att(sent, 1, ceb179.OutcomeAccepted, 200, "10000", "", "", p.customs); err != nil {
			return err
		}
		state = ceb179.StateAccepted
	case ops.OutcomeRejected:
		if err := att(sent, 1, ceb179.OutcomeRejected, 200, "20000", "支付原始数据校验失败: 支付企业不一致", "", p.customs); err != nil {
			return err
		}
		state, reason = ceb179.StateRejected, "customs 20000: 支付原始数据校验失败: 支付企业不一致"
	case ops.OutcomeFailed:
		for n := 1; n <= 3; n++ {
			last = sent.Add(time.Duration(n-1) * 2 * time.Second)
			if err := att(last, n, ceb179.OutcomeUncertain, 502, "", "", "http", 10*time.Second); err != nil {
				return err
			}
		}
		state, reason = ceb179.StateFailed, "gave up at the end of the retry window; last error: HTTP 502"
	}
	return store.FinishUpload(ctx, p.id, owner, state, reason, last)
}
