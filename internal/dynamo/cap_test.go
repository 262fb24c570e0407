package dynamo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"pgregory.net/rapid"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/dynamo"
)

func TestCountOrderRequestPerChinaDay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newPaymentsEnv(t, 0)
	// 2026-11-27 23:59:59 and 2026-11-28 00:00:00 in China (UTC+8).
	lastSecond := time.Date(2026, 11, 27, 15, 59, 59, 0, time.UTC)
	nextDay := lastSecond.Add(time.Second)
	tests := []struct {
		name    string
		order   string
		session string
		at      time.Time
		want    bool
	}{
		{"ok first request of the day", "O1", "S1", lastSecond, true},
		{"ok second request is within a cap of 2", "O1", "S2", lastSecond, true},
		{"ok the same request again keeps its answer", "O1", "S1", lastSecond, true},
		{"fail third request is over the cap", "O1", "S3", lastSecond, false},
		{"fail and stays over when asked again", "O1", "S3", lastSecond, false},
		{"ok the second again, after the cap is full", "O1", "S2", lastSecond, true},
		{"ok another order has its own count", "O2", "S4", lastSecond, true},
		{"ok a new China day starts again", "O1", "S5", nextDay, true},
		{"ok a request of yesterday counts again today", "O1", "S3", nextDay, true},
		{"fail and the day's cap is full", "O1", "S6", nextDay, false},
	}
	for _, tt := range tests {
		got, err := e.store.CountOrderRequest(ctx, tt.order, tt.session, tt.at, 2)
		if err != nil || got != tt.want {
			t.Fatalf("%s: within = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	// Counters stay out of the day's requests.
	n := 0
	if err := e.store.RequestsOfDay(ctx, ceb179.Day(lastSecond), func(ceb179.RequestView) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("requests of the day = %d, %v; counters must not appear", n, err)
	}
}

// lossy is an HTTP client that loses the answer to the first DynamoDB
// UpdateItem whose body holds match: the write reaches the table, the
// caller gets a connection reset, and the SDK sends the same write again.
type lossy struct {
	next  aws.HTTPClient
	match string
	lost  atomic.Int32
	sent  atomic.Int32
}

func (l *lossy) Do(req *http.Request) (*http.Response, error) {
	if req.Header.Get("X-Amz-Target") != "DynamoDB_20120810.UpdateItem" || req.Body == nil {
		return l.next.Do(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	if !strings.Contains(string(body), l.match) {
		return l.next.Do(req)
	}
	l.sent.Add(1)
	resp, err := l.next.Do(req)
	if err != nil || !l.lost.CompareAndSwap(0, 1) {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil, errors.New("read tcp 127.0.0.1:0: connection reset by peer")
}

// TestCountOrderRequestRetriedWriteCountsOnce loses the answer to a count
// write after the table applied it: the SDK's retry must find the request
// already counted, give the same answer and leave the count as it was.
func TestCountOrderRequestRetriedWriteCountsOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := awstest.New(t)
	table := env.Table("RequestsTable")
	cfg := env.Config.Copy()
	l := &lossy{next: cfg.HTTPClient, match: "ORDERDAY#"}
	cfg.HTTPClient = l
	store := dynamo.New(dynamodb.NewFromConfig(cfg), dynamo.Tables{Requests: table}, 0)
	at := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)

	const limit = 2
	for i, sid := range []string{"RETRIED-1", "RETRIED-2"} {
		if i == 1 {
			l.lost.Store(0) // lose the answer of the write that fills the cap
		}
		within, err := store.CountOrderRequest(ctx, "ORDER-R", sid, at, limit)
		if err != nil || !within {
			t.Fatalf("%s: within %v, %v; want within the cap", sid, within, err)
		}
	}
	if l.sent.Load() < 4 {
		t.Fatalf("%d count writes sent, want each of the two sent twice (the answer lost, the SDK retrying)", l.sent.Load())
	}
	if n := counted(t, env.DynamoDB, table, ceb179.Day(at), "ORDER-R"); n != 2 {
		t.Fatalf("requests counted %d, want 2: a retried write counts once", n)
	}
	// The cap is full with exactly the two: a third is over it.
	if within, err := store.CountOrderRequest(ctx, "ORDER-R", "RETRIED-3", at, limit); err != nil || within {
		t.Fatalf("third request: within %v, %v; want over the cap", within, err)
	}
}

// counted reads the number of requests within the cap stored for orderNo on day.
func counted(tb testing.TB, db *dynamodb.Client, table, day, orderNo string) int {
	tb.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(table),
		Key: map[string]types.AttributeValue{
			"sessionID": &types.AttributeValueMemberS{Value: "ORDERDAY#" + day + "#" + orderNo},
			"sk":        &types.AttributeValueMemberS{Value: "ORDERDAY"},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		tb.Fatal(err)
	}
	n, ok := out.Item["requests"].(*types.AttributeValueMemberN)
	if !ok {
		return 0
	}
	var v int
	fmt.Sscan(n.Value, &v)
	return v
}

// TestCountOrderRequestProperty: whatever the order in which sessions are
// counted, however often each is repeated and however many run at once,
// exactly the first min(cap, sessions) distinct sessions are within the
// cap, and every session always gets the same answer.
func TestCountOrderRequestProperty(t *testing.T) {
	t.Parallel()
	e := newPaymentsEnv(t, 0)
	at := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	var run atomic.Int32
	rapid.Check(t, func(rt *rapid.T) {
		order := fmt.Sprintf("PROP-%d", run.Add(1))
		limit := rapid.IntRange(1, 5).Draw(rt, "cap")
		sessions := rapid.IntRange(1, 8).Draw(rt, "sessions")
		calls := rapid.SliceOfN(rapid.IntRange(0, sessions-1), 1, 24).Draw(rt, "calls")
		parallel := rapid.Bool().Draw(rt, "parallel")

		answers := make([]bool, len(calls))
		errs := make([]error, len(calls))
		count := func(i int) {
			answers[i], errs[i] = e.store.CountOrderRequest(context.Background(), order, fmt.Sprintf("S%d", calls[i]), at, limit)
		}
		if parallel {
			var wg sync.WaitGroup
			for i := range calls {
				wg.Go(func() { count(i) })
			}
			wg.Wait()
		} else {
			for i := range calls {
				count(i)
			}
		}
		first := map[int]bool{}
		inCap := 0
		for i, c := range calls {
			if errs[i] != nil {
				rt.Fatalf("count %d: %v", i, errs[i])
			}
			if got, seen := first[c]; seen && got != answers[i] {
				rt.Fatalf("session S%d answered %v, then %v", c, got, answers[i])
			} else if !seen {
				first[c] = answers[i]
				if answers[i] {
					inCap++
				}
			}
		}
		if want := min(limit, len(first)); inCap != want {
			rt.Fatalf("%d sessions within the cap of %d, want %d (distinct sessions %d)", inCap, limit, want, len(first))
		}
		if !parallel {
			// In order, the first distinct sessions are the ones within.
			n := 0
			for _, c := range calls {
				if _, ok := first[c]; !ok {
					continue
				}
				n++
				if want := n <= limit; first[c] != want {
					rt.Fatalf("session S%d, the %d-th distinct one, within %v; want %v", c, n, first[c], want)
				}
				delete(first, c)
			}
		}
	})
}
