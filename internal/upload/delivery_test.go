package upload

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customsapi"
	"github.com/ceb179/ceb179/internal/dev/customssim"
)

// TestUploadUnreachableThenOwnFailure: customs' port is closed for the
// session's first attempts (connection refused: they certainly never
// reached customs), then customs answers 20000 入库失败 once (its own
// storage failure: nothing of ours can be stored there), then 10000. The
// session must end ACCEPTED by the real 10000, not by the 入库失败. Posts
// are counted where they arrive, at the customs fake.
func TestUploadUnreachableThenOwnFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := "sid-unreachable"
	f.assemble(t, id)
	job := f.sign(t, id, f.signer)
	f.customs.Unreachable()
	f.customs.Script(customssim.Duplicate(), customssim.Accepted())
	// Customs comes back after the second refused attempt, while the
	// upload waits for its third.
	sleeps := 0
	f.handler.sleep = func(ctx context.Context, d time.Duration) error {
		if sleeps++; sleeps == 2 {
			if err := f.customs.Reachable(); err != nil {
				t.Error(err)
			}
		}
		return f.clock.Sleep(ctx, d)
	}

	a := f.upload(t, job)
	if a.State != ceb179.StateAccepted || a.Message != "上传成功" {
		t.Fatalf("answer %+v, want ACCEPTED by customs' 10000 (上传成功)", a)
	}
	ups := f.customs.Uploads()
	if len(ups) != 2 || f.customs.PostsFor(id) != 2 || ups[0].Message != "入库失败" || !ups[1].Accepted() {
		t.Fatalf("customs saw %d posts (%d for the session): want 入库失败 then 10000", len(ups), f.customs.PostsFor(id))
	}
	if got := outcomes(f.attempts(t, id)); got != "NOT_DELIVERED NOT_DELIVERED DUPLICATE ACCEPTED" {
		t.Errorf("attempts %q", got)
	}
	r := f.request(t, id)
	if r.State != ceb179.StateAccepted || r.Reason != "上传成功" {
		t.Errorf("request %s %q, want ACCEPTED 上传成功", r.State, r.Reason)
	}
}

// TestUploadMaintenance403: customs answers HTTP 403 (its gateway during
// maintenance, no verdict) for 20 s, then 10000: the session ends
// ACCEPTED, on time while the window lasts and late past it, never
// FAILED. The bridge delivers the job again after each RETRY (visibility
// timeout, 60 s).
func TestUploadMaintenance403(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		start    time.Time // when the first post goes out
		wantLate bool
	}{
		{"ok inside the window: accepted on time", epoch, false},
		{"ok maintenance past the deadline: accepted late", epoch.Add(ceb179.Window - 5*time.Second), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			id := "sid-403"
			f.assemble(t, id)
			job := f.sign(t, id, f.signer)
			f.clock.Set(tc.start)
			until := tc.start.Add(20 * time.Second)
			// The customs fake answers by the clock: 403 for 20 s, then
			// its judgement (10000).
			f.customs.Fallback(customssim.Status(http.StatusForbidden))
			answer := func() {
				if !f.clock.Now().Before(until) {
					f.customs.Fallback(customssim.Accepted())
				}
			}
			f.handler.sleep = func(ctx context.Context, d time.Duration) error {
				err := f.clock.Sleep(ctx, d)
				answer()
				return err
			}
			var a ceb179.UploadAnswer
			for delivery := 0; delivery < 20; delivery++ {
				answer()
				if a = f.upload(t, job); a.Final() {
					break
				}
				f.clock.Set(f.clock.Now().Add(60 * time.Second)) // the job comes back
			}
			if a.State != ceb179.StateAccepted {
				t.Fatalf("answer %+v, want ACCEPTED", a)
			}
			ups := f.customs.Uploads()
			if len(ups) < 2 || !ups[len(ups)-1].Accepted() {
				t.Fatalf("customs saw %d posts, the last accepted %v", len(ups), len(ups) > 0 && ups[len(ups)-1].Accepted())
			}
			for _, u := range ups[:len(ups)-1] {
				if u.Status != http.StatusForbidden {
					t.Errorf("a post before the acceptance got HTTP %d, want 403", u.Status)
				}
			}
			r := f.request(t, id)
			late := f.lastAttemptAfterDeadline(t, id)
			if r.State != ceb179.StateAccepted || late != tc.wantLate {
				t.Errorf("request %s, accepted after the deadline %v; want ACCEPTED, late %v", r.State, late, tc.wantLate)
			}
		})
	}
}

// lastAttemptAfterDeadline reports whether the session's last attempt was
// sent after its deadline.
func (f *fixture) lastAttemptAfterDeadline(tb testing.TB, id string) bool {
	tb.Helper()
	atts := f.attempts(tb, id)
	if len(atts) == 0 {
		tb.Fatal("no attempts")
	}
	return atts[len(atts)-1].At.After(epoch.Add(ceb179.Window))
}

// scheduled is the customs client with customs' behaviour set before each
// post from a script: it changes only what the real customs fake does,
// never what the client sees of it. Each post goes through a client of its
// own, as posts minutes apart do: a connection kept from an earlier post
// and closed by customs going down could take a request customs never
// reads, which the client rightly counts as maybe delivered.
type scheduled struct {
	customs *customssim.Server
	script  []string
	n       atomic.Int32
}

func (s *scheduled) Upload(ctx context.Context, doc []byte) (customsapi.Answer, error) {
	i := int(s.n.Add(1)) - 1
	step := "accept"
	if i < len(s.script) {
		step = s.script[i]
	}
	client, err := customsapi.New(s.customs.UploadURL(), customsapi.WithTimeout(300*time.Millisecond))
	if err != nil {
		return customsapi.Answer{}, err
	}
	if step == "refused" {
		s.customs.Unreachable()
	} else if err := s.customs.Reachable(); err != nil {
		return customsapi.Answer{}, err
	}
	replies := map[string]customssim.Reply{
		"503": customssim.Status(http.StatusServiceUnavailable), "403": customssim.Status(http.StatusForbidden),
		"drop": customssim.Drop(), "dup": customssim.Duplicate(), "reject": customssim.Rejected("certNo : certNo不为空;"),
		"accept": customssim.Accepted(), "refused": customssim.Accepted(),
	}
	s.customs.Script(replies[step])
	return client.Upload(ctx, doc)
}

// TestUploadOutcomeIsTrueProperty: whatever customs does to the posts of a
// session (port closed, 503, 403, dropped connection, 入库失败, rejection,
// acceptance), the outcome recorded is what customs' own record of the
// posts supports. ACCEPTED only when customs answered 10000 to a post, or
// answered 入库失败 after a post that reached it without a verdict;
// REJECTED only when it rejected a post; never a final state before
// customs gave a verdict or the give-up window ended.
func TestUploadOutcomeIsTrueProperty(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *fixtureConfig) {
		c.policy = func(p *Policy) { p.GiveUpAfter = 10 * time.Minute }
	})
	var run atomic.Int32
	rapid.Check(t, func(rt *rapid.T) {
		id := fmt.Sprintf("sid-prop-%d", run.Add(1))
		steps := []string{"refused", "503", "403", "drop", "dup", "reject", "accept"}
		script := rapid.SliceOfN(rapid.SampledFrom(steps), 0, 10).Draw(rt, "customs")
		f.clock.Set(epoch)
		f.assemble(t, id)
		job := f.sign(t, id, f.signer)
		sc := &scheduled{customs: f.customs, script: script}
		h := *f.handler
		h.poster = sc
		before := len(f.customs.Uploads())

		var a ceb179.UploadAnswer
		for delivery := 0; delivery < 40 && !a.Final(); delivery++ {
			var err error
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			a, err = h.Upload(ctx, job)
			cancel()
			if err != nil {
				rt.Fatalf("upload: %v", err)
			}
			f.clock.Set(f.clock.Now().Add(time.Minute))
		}
		if err := f.customs.Reachable(); err != nil {
			rt.Fatal(err)
		}
		var seen []customssim.Upload
		for _, u := range f.customs.Uploads()[before:] {
			if u.SessionID == id {
				seen = append(seen, u)
			}
		}
		accepted, rejected, ownDup, noVerdictBefore := false, false, false, false
		for _, u := range seen {
			switch {
			case u.Status == http.StatusOK && u.Code == "10000":
				accepted = true
			case u.Status == http.StatusOK && strings.Contains(u.Message, "入库失败"):
				ownDup = ownDup || noVerdictBefore || accepted
			case u.Status == http.StatusOK && u.Code != "":
				rejected = true
			default:
				noVerdictBefore = true // 503, 403, dropped: may have stored it
			}
		}
		switch a.State {
		case ceb179.StateAccepted:
			if !accepted && !ownDup {
				rt.Fatalf("ACCEPTED (%s) but customs never accepted a post and answered no 入库失败 after one that may have reached it (script %v)", a.Message, script)
			}
		case ceb179.StateRejected:
			if !rejected {
				rt.Fatalf("REJECTED (%s) but customs rejected no post (script %v)", a.Message, script)
			}
		case ceb179.StateFailed:
			if accepted || rejected {
				rt.Fatalf("FAILED (%s) although customs gave a verdict (script %v)", a.Message, script)
			}
		default:
			rt.Fatalf("no final state after 40 deliveries: %+v (script %v)", a, script)
		}
	})
}
