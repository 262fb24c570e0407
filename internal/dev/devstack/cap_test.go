package devstack

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/records"
)

// The daily cap on the local stack, through the real platDataOpen handler:
// past the cap a request is still answered, signed and uploaded, only
// after every request within it.

// seedOrders records one single-order payment for each of n new orders
// and returns them.
func seedOrders(t *testing.T, s *Stack, tag string, n int) []string {
	t.Helper()
	base := DemoPayments(s.EbpCode, time.Now())[0]
	ps := make([]records.Payment, n)
	orders := make([]string, n)
	for i := range ps {
		p := base
		p.PayTransactionID = fmt.Sprintf("%sPAY%06d", tag, i)
		o := base.Orders[0]
		o.OrderNo = fmt.Sprintf("%s-ORDER-%04d", tag, i)
		p.Orders = []customs.Order{o}
		ps[i], orders[i] = p, o.OrderNo
	}
	for i, err := range s.Store.PutPayments(context.Background(), ps) {
		if err != nil {
			t.Fatalf("payment %d: %v", i, err)
		}
	}
	return orders
}

// askAll asks for orderNo once per sessionID, in order, and checks every
// answer is 10000.
func askAll(t *testing.T, s *Stack, orderNo string, ids []string) {
	t.Helper()
	for _, id := range ids {
		if code := ask(t, s, orderNo, id); code != customs.CodeSuccess {
			t.Fatalf("%s: answered %s, want 10000", id, code)
		}
	}
}

// onTime waits for every session to be final and checks each was accepted
// by customs on time, posted once, with the priority want gives it.
func onTime(t *testing.T, s *Stack, ids []string, want func(i int) ceb179.Priority) {
	t.Helper()
	for i, id := range ids {
		r := waitState(t, s, id, time.Minute)
		v, err := s.Store.GetRequestView(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != ceb179.StateAccepted || v.LastAttemptAt.After(v.Deadline) {
			t.Errorf("%s: %s, accepted post at %v, deadline %v; want accepted on time", id, r.State, v.LastAttemptAt, v.Deadline)
		}
		if posts := s.Sim.PostsFor(id); posts != 1 {
			t.Errorf("%s: %d posts at customs, want 1", id, posts)
		}
		if r.Priority != want(i) {
			t.Errorf("%s: priority %s, want %s", id, r.Priority, want(i))
		}
	}
}

// TestCapIdleSigner: seven requests for one order in one China day from a
// caller not on any allowlist are all answered 10000, and with an idle
// signer all seven are uploaded on time, the sixth and seventh with the
// low priority. The same caller on the allowlist is not capped at all.
func TestCapIdleSigner(t *testing.T) {
	t.Parallel()
	overCap := func(i int) ceb179.Priority {
		if i >= ceb179.DefaultDailyCap {
			return ceb179.PriorityLow
		}
		return ceb179.PriorityNormal
	}
	t.Run("ok no allowlist: over the cap uploaded too", func(t *testing.T) {
		t.Parallel()
		s := startStack(t, Options{})
		ids := sessionIDs("cap-idle", 7)
		askAll(t, s, s.DemoOrders[0], ids)
		onTime(t, s, ids, overCap)
		if n := s.Metrics["ingest"].Total("Capped"); n != 2 {
			t.Errorf("Capped metric %v, want 2", n)
		}
	})
	t.Run("ok the caller on the allowlist is never capped", func(t *testing.T) {
		t.Parallel()
		s := startStack(t, Options{Allowlist: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		ids := sessionIDs("cap-allowed", 7)
		askAll(t, s, s.DemoOrders[0], ids)
		onTime(t, s, ids, func(int) ceb179.Priority { return ceb179.PriorityNormal })
		if n := s.Metrics["ingest"].Total("Capped"); n != 0 {
			t.Errorf("Capped metric %v, want 0", n)
		}
	})
}

// TestCapUnderLoad: a signer as slow as a card is kept busy by requests
// within their orders' caps; seven requests for one order arrive, then
// more requests within their caps, due later than the seventh. The sixth
// and seventh are signed after every request within the cap, although
// their deadlines are earlier than those of the last wave; all are
// uploaded. The order is read from customs' record of uploads.
func TestCapUnderLoad(t *testing.T) {
	t.Parallel()
	s := startStack(t, Options{SignRate: 600}) // 100 ms a signature
	orders := seedOrders(t, s, "LOAD", 41)
	first, second := sessionIDs("load-first", 20), sessionIDs("load-second", 20)
	x := sessionIDs("load-x", 7)
	for i, id := range first {
		askAll(t, s, orders[i], []string{id})
	}
	askAll(t, s, orders[40], x)
	for i, id := range second {
		askAll(t, s, orders[20+i], []string{id})
	}
	all := slices.Concat(first, x, second)
	for _, id := range all {
		waitState(t, s, id, 2*time.Minute)
	}
	var order []string
	for _, u := range s.Sim.Uploads() {
		if u.Accepted() && slices.Contains(all, u.SessionID) {
			order = append(order, u.SessionID)
		}
	}
	if len(order) != len(all) {
		t.Fatalf("%d uploads accepted by customs, want %d: every request is uploaded", len(order), len(all))
	}
	t.Logf("upload order: the sixth at %d, the seventh at %d of %d", slices.Index(order, x[5])+1, slices.Index(order, x[6])+1, len(order))
	if last := order[len(order)-2:]; !slices.Contains(last, x[5]) || !slices.Contains(last, x[6]) {
		t.Errorf("the sixth and seventh requests for the order were uploaded at %d and %d of %d, want last: after every request within the cap",
			slices.Index(order, x[5])+1, slices.Index(order, x[6])+1, len(order))
	}
	for _, id := range all {
		v, err := s.Store.GetRequestView(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if id != x[5] && id != x[6] && (v.State != ceb179.StateAccepted || v.LastAttemptAt.After(v.Deadline)) {
			t.Errorf("%s within the cap: %s, accepted %v after its deadline", id, v.State, v.LastAttemptAt.Sub(v.Deadline))
		}
	}
}
