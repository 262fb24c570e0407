package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/customssim"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/signature"
)

func TestUploadSendsExactlyWhatWasSigned(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.assemble(t, "sid-exact&x=1+2%")
	job := f.sign(t, "sid-exact&x=1+2%", f.signer)
	a := f.upload(t, job)
	if a.State != ceb179.StateAccepted {
		t.Fatalf("answer = %+v, want ACCEPTED", a)
	}
	ups := f.customs.Uploads()
	if len(ups) != 1 {
		t.Fatalf("customs received %d posts, want 1", len(ups))
	}
	up := ups[0]
	if up.ContentType != customs.UploadContentType {
		t.Errorf("content type %q", up.ContentType)
	}
	u := customs.Unsigned{SessionID: p.SessionID, Head: p.Head, Lists: p.Lists, ServiceTime: p.ServiceTime}
	want := u.PayExInfoStr(job.CertNo, job.SignValue)
	if up.PayExInfoStr != string(want) {
		t.Fatalf("customs' form parser read\n%s\nwant\n%s", up.PayExInfoStr, want)
	}
	// Customs' side: read the document and verify it from the received bytes.
	got, err := customs.ReadPayExInfoStr([]byte(up.PayExInfoStr))
	if err != nil {
		t.Fatalf("customs cannot read the upload: %v", err)
	}
	if string(got.Head) != awkwardHead || string(got.Lists) != awkwardLists {
		t.Errorf("head or lists bytes changed on the way")
	}
	if err := signature.Verify(f.signer.cert, got.SignSource(), got.SignValue); err != nil {
		t.Errorf("the signature does not verify on the received document: %v", err)
	}
	atts := f.attempts(t, p.SessionID)
	if len(atts) != 1 {
		t.Fatalf("%d attempts recorded, want 1", len(atts))
	}
	sum := sha256.Sum256(up.Body)
	at := atts[0]
	if at.BodyDigest != hex.EncodeToString(sum[:]) || at.Digest != p.Digest || at.HTTPStatus != 200 ||
		at.Code != customs.CodeSuccess || at.Message != "上传成功" || at.CertNo != job.CertNo || at.SignValue != job.SignValue ||
		!at.At.Equal(epoch) || at.Outcome != ceb179.OutcomeAccepted {
		t.Errorf("attempt = %+v", at)
	}
	if r := f.request(t, p.SessionID); r.State != ceb179.StateAccepted {
		t.Errorf("request state = %s, want ACCEPTED", r.State)
	}
}

func TestUploadOutcomes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	deadline := epoch.Add(ceb179.Window)
	tests := []struct {
		name     string
		now      time.Time // when the upload is invoked
		last     bool      // the bridge's last delivery of the job
		script   []customssim.Reply
		fallback *customssim.Reply
		want     ceb179.State
		posts    int
		outcomes string
		reason   string // part of the answer's message
		state    ceb179.State
		metrics  string // the final-state metrics it records
	}{
		{name: "ok accepted", now: epoch, script: []customssim.Reply{customssim.Accepted()},
			want: ceb179.StateAccepted, posts: 1, outcomes: "ACCEPTED", reason: "上传成功", metrics: "Accepted=1 OnTime=1"},
		{name: "ok rejected keeps message and is not retried", now: epoch, script: []customssim.Reply{customssim.Rejected("certNo : certNo不为空;")},
			want: ceb179.StateRejected, posts: 1, outcomes: "REJECTED", reason: "certNo : certNo不为空;", metrics: "Rejected=1"},
		{name: "ok 5xx retried until accepted", now: epoch, script: []customssim.Reply{customssim.Status(503), customssim.Status(502), customssim.Accepted()},
			want: ceb179.StateAccepted, posts: 3, outcomes: "UNCERTAIN UNCERTAIN ACCEPTED", metrics: "Accepted=1 OnTime=1"},
		{name: "ok timeout retried until accepted", now: epoch, script: []customssim.Reply{customssim.Hang(), customssim.Accepted()},
			want: ceb179.StateAccepted, posts: 2, outcomes: "UNCERTAIN ACCEPTED", metrics: "Accepted=1 OnTime=1"},
		{name: "ok network error retried until accepted", now: epoch, script: []customssim.Reply{customssim.Drop(), customssim.Accepted()},
			want: ceb179.StateAccepted, posts: 2, outcomes: "UNCERTAIN ACCEPTED", metrics: "Accepted=1 OnTime=1"},
		{name: "ok duplicate after a timeout counts as accepted", now: epoch, script: []customssim.Reply{customssim.Hang(), customssim.Duplicate()},
			want: ceb179.StateAccepted, posts: 2, outcomes: "UNCERTAIN DUPLICATE", reason: "duplicate after an unanswered attempt", metrics: "Accepted=1 OnTime=1"},
		{name: "ok duplicate without an earlier attempt of ours is customs' own failure, retried", now: epoch, script: []customssim.Reply{customssim.Duplicate()},
			want: ceb179.StateAccepted, posts: 2, outcomes: "DUPLICATE ACCEPTED", reason: "上传成功", metrics: "Accepted=1 OnTime=1"},
		{name: "fail duplicate without an earlier attempt of ours, to the end of the window", now: deadline.Add(ceb179.GiveUpAfter - time.Second),
			fallback: &[]customssim.Reply{customssim.Duplicate()}[0],
			want:     ceb179.StateFailed, posts: 1, outcomes: "DUPLICATE", reason: "入库失败 (not after an attempt of ours", metrics: "Failed=1"},
		{name: "ok 404 (maintenance) retried until accepted", now: epoch, script: []customssim.Reply{customssim.Status(404)},
			want: ceb179.StateAccepted, posts: 2, outcomes: "UNCERTAIN ACCEPTED", metrics: "Accepted=1 OnTime=1"},
		{name: "ok HTTP 400 with customs' own answer is its verdict", now: epoch, script: []customssim.Reply{{Status: 400, Code: "20000", Message: "payExInfoStr : 格式错误;"}},
			want: ceb179.StateRejected, posts: 1, outcomes: "REJECTED", reason: "格式错误", metrics: "Rejected=1"},
		{name: "ok unanswered near the deadline leaves it to the next delivery", now: deadline.Add(-300 * time.Millisecond),
			fallback: &[]customssim.Reply{customssim.Status(503)}[0],
			want:     ceb179.StateRetry, posts: 1, outcomes: "UNCERTAIN", reason: "will retry", state: ceb179.StateSigned, metrics: "Retry=1"},
		{name: "ok unanswered early retries with backoff then hands back", now: epoch,
			fallback: &[]customssim.Reply{customssim.Status(500)}[0],
			want:     ceb179.StateRetry, posts: 6, outcomes: "UNCERTAIN UNCERTAIN UNCERTAIN UNCERTAIN UNCERTAIN UNCERTAIN", reason: "6 attempts unanswered", state: ceb179.StateSigned, metrics: "Retry=1"},
		{name: "ok late upload is still sent once", now: deadline.Add(10 * time.Minute),
			fallback: &[]customssim.Reply{customssim.Status(503)}[0],
			want:     ceb179.StateRetry, posts: 1, outcomes: "UNCERTAIN", reason: "late upload unanswered", state: ceb179.StateSigned, metrics: "Retry=1"},
		{name: "ok late upload accepted", now: deadline.Add(10 * time.Minute), script: []customssim.Reply{customssim.Accepted()},
			want: ceb179.StateAccepted, posts: 1, outcomes: "ACCEPTED", metrics: "Accepted=1 Late=1"},
		{name: "fail gives up after the retry window", now: deadline.Add(ceb179.GiveUpAfter + time.Minute),
			want: ceb179.StateFailed, posts: 0, reason: "gave up", metrics: "Failed=1"},
		{name: "fail unanswered at the end of the retry window", now: deadline.Add(ceb179.GiveUpAfter - time.Second),
			fallback: &[]customssim.Reply{customssim.Status(503)}[0],
			want:     ceb179.StateFailed, posts: 1, outcomes: "UNCERTAIN", reason: "end of the retry window", metrics: "Failed=1"},
		{name: "ok unanswered on the last delivery is retried in the window (the settler sends the job again)", now: deadline.Add(time.Minute), last: true,
			fallback: &[]customssim.Reply{customssim.Status(503)}[0],
			want:     ceb179.StateRetry, posts: 1, outcomes: "UNCERTAIN", reason: "late upload unanswered", state: ceb179.StateSigned, metrics: "Retry=1"},
		{name: "ok accepted on the last delivery", now: deadline.Add(time.Minute), last: true,
			want: ceb179.StateAccepted, posts: 1, outcomes: "ACCEPTED", metrics: "Accepted=1 Late=1"},
	}
	rec := metrics.New("upload", nil)
	f.handler.metrics = rec
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "sid-outcome-" + string(rune('a'+i))
			f.customs.Script(tt.script...)
			fb := customssim.Accepted()
			if tt.fallback != nil {
				fb = *tt.fallback
			}
			f.customs.Fallback(fb)
			f.assemble(t, id)
			job := f.sign(t, id, f.signer)
			job.LastDelivery = tt.last
			f.clock.Set(tt.now)
			before := f.customs.Posts()
			totals := snapshot(rec)
			a := f.upload(t, job)
			if got := finalMetrics(totals, snapshot(rec)); got != tt.metrics {
				t.Errorf("metrics %q, want %q", got, tt.metrics)
			}
			e2e := snapshot(rec)[MetricEndToEndLatency] - totals[MetricEndToEndLatency]
			if want := float64(f.clock.Now().Sub(epoch).Milliseconds()); tt.want == ceb179.StateAccepted && e2e != want {
				t.Errorf("EndToEndLatency %v ms, want %v (acceptance − receipt)", e2e, want)
			}
			if a.State != tt.want || !strings.Contains(a.Message, tt.reason) {
				t.Errorf("answer = %+v, want state %s with %q", a, tt.want, tt.reason)
			}
			if got := f.customs.Posts() - before; got != tt.posts {
				t.Errorf("customs received %d posts, want %d", got, tt.posts)
			}
			if got := outcomes(f.attempts(t, id)); got != tt.outcomes {
				t.Errorf("attempts = %q, want %q", got, tt.outcomes)
			}
			state := tt.state
			if state == "" {
				state = tt.want
			}
			if r := f.request(t, id); r.State != state || (tt.want != ceb179.StateRetry && r.Reason != a.Message) {
				t.Errorf("request = %s %q, want %s %q", r.State, r.Reason, state, a.Message)
			}
		})
	}
}

func TestUploadBackoff(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.customs.Script(customssim.Status(503), customssim.Status(503), customssim.Status(503), customssim.Status(503), customssim.Accepted())
	f.assemble(t, "sid-backoff")
	a := f.upload(t, f.sign(t, "sid-backoff", f.signer))
	if a.State != ceb179.StateAccepted {
		t.Fatalf("answer = %+v", a)
	}
	// The jitter is the identity in tests: the ceilings show.
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}
	got := f.clock.Sleeps()
	if len(got) != len(want) {
		t.Fatalf("sleeps = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sleeps = %v, want %v", got, want)
		}
	}
	h := New(nil, nil, nil)
	for n := 1; n < 10; n++ {
		if d := h.backoff(n); d < 0 || d > h.policy.BackoffMax {
			t.Errorf("backoff(%d) = %v, outside [0, %v]", n, d, h.policy.BackoffMax)
		}
	}
}

func TestUploadLatePacing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.customs.Fallback(customssim.Status(503))
	id := "sid-late"
	f.assemble(t, id)
	job := f.sign(t, id, f.signer)
	late := epoch.Add(ceb179.Window + 5*time.Minute)
	steps := []struct {
		name  string
		at    time.Time
		posts int
		want  ceb179.State
	}{
		{"ok first late post", late, 1, ceb179.StateRetry},
		{"ok redelivered at once is paced without posting", late.Add(time.Second), 0, ceb179.StateRetry},
		{"ok redelivered after the interval posts again", late.Add(DefaultPolicy().SlowInterval), 1, ceb179.StateRetry},
		{"ok an hour late posts again", epoch.Add(ceb179.Window + time.Hour), 1, ceb179.StateRetry},
		{"ok an hour late the interval has grown to six minutes", epoch.Add(ceb179.Window + time.Hour + 2*time.Minute), 0, ceb179.StateRetry},
		{"ok seven minutes later posts again", epoch.Add(ceb179.Window + time.Hour + 7*time.Minute), 1, ceb179.StateRetry},
		{"fail past the window becomes FAILED without posting", epoch.Add(ceb179.Window + ceb179.GiveUpAfter + time.Minute), 0, ceb179.StateFailed},
		{"ok a final session is answered from the table", epoch.Add(ceb179.Window + ceb179.GiveUpAfter + 10*time.Minute), 0, ceb179.StateFailed},
	}
	for _, s := range steps {
		f.clock.Set(s.at)
		before := f.customs.Posts()
		a := f.upload(t, job)
		if a.State != s.want || f.customs.Posts()-before != s.posts {
			t.Fatalf("%s: answer %+v after %d posts; want %s after %d", s.name, a, f.customs.Posts()-before, s.want, s.posts)
		}
	}
}

func TestUploadRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	other := newSigner(t, 0x0300000000cde6f)
	stranger := newSigner(t, 0x77)
	f.registerCert(t, ebpCode, other)
	f.registerCert(t, "EBP-OTHER", stranger)
	tests := []struct {
		name   string
		edit   func(job *ceb179.Invocation, p ceb179.Pending)
		at     time.Time
		want   ceb179.State
		reason string
	}{
		{name: "fail digest of something else", edit: func(j *ceb179.Invocation, _ ceb179.Pending) {
			j.Digest = strings.Repeat("0", 64)
		}, want: ceb179.StateRetry, reason: "signed digest is not the digest"},
		{name: "fail signature of other bytes", edit: func(j *ceb179.Invocation, _ ceb179.Pending) {
			j.SignValue, _ = signature.Sign(f.signer.key, []byte("something else"))
		}, want: ceb179.StateRetry, reason: "does not verify"},
		{name: "fail signature by another registered card under this certNo", edit: func(j *ceb179.Invocation, p ceb179.Pending) {
			u := customs.Unsigned{SessionID: p.SessionID, Head: p.Head, Lists: p.Lists, ServiceTime: p.ServiceTime}
			j.SignValue, _ = signature.Sign(other.key, u.SignSource())
		}, want: ceb179.StateRetry, reason: "does not verify"},
		{name: "fail garbage signValue", edit: func(j *ceb179.Invocation, _ ceb179.Pending) {
			j.SignValue = "not base64 !"
		}, want: ceb179.StateRetry, reason: "does not verify"},
		{name: "fail certificate not registered", edit: func(j *ceb179.Invocation, _ ceb179.Pending) {
			j.CertNo = "deadbeef"
		}, want: ceb179.StateRetry, reason: "not registered for ebpCode " + ebpCode},
		{name: "fail certificate registered for another ebpCode", edit: func(j *ceb179.Invocation, p ceb179.Pending) {
			u := customs.Unsigned{SessionID: p.SessionID, Head: p.Head, Lists: p.Lists, ServiceTime: p.ServiceTime}
			j.CertNo = stranger.certNo
			j.SignValue, _ = signature.Sign(stranger.key, u.SignSource())
		}, want: ceb179.StateRetry, reason: "not registered for ebpCode " + ebpCode},
		{name: "fail refusal past the window becomes FAILED", edit: func(j *ceb179.Invocation, _ ceb179.Pending) {
			j.CertNo = "deadbeef"
		}, at: epoch.Add(ceb179.Window + ceb179.GiveUpAfter + time.Hour), want: ceb179.StateFailed, reason: "gave up"},
		{name: "ok refusal on the last delivery waits for the give-up window", edit: func(j *ceb179.Invocation, _ ceb179.Pending) {
			j.CertNo = "deadbeef"
			j.LastDelivery = true
		}, want: ceb179.StateRetry, reason: "not registered"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "sid-refuse-" + string(rune('a'+i))
			p := f.assemble(t, id)
			job := f.sign(t, id, f.signer)
			tt.edit(&job, p)
			at := tt.at
			if at.IsZero() {
				at = epoch
			}
			f.clock.Set(at)
			before := f.customs.Posts()
			a := f.upload(t, job)
			if a.State != tt.want || !strings.Contains(a.Message, tt.reason) {
				t.Errorf("answer = %+v, want %s with %q", a, tt.want, tt.reason)
			}
			if f.customs.Posts() != before {
				t.Errorf("customs received a post for a refused job")
			}
			if n := len(f.attempts(t, id)); n != 0 {
				t.Errorf("%d attempts recorded, want none", n)
			}
			if r := f.request(t, id); !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("request reason = %q, want it to say %q", r.Reason, tt.reason)
			}
		})
	}
}

func TestUploadCorruptStoredBytes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.assemble(t, "sid-corrupt")
	u := customs.Unsigned{SessionID: p.SessionID, Head: p.Head, Lists: p.Lists, ServiceTime: p.ServiceTime}
	sv, err := signature.Sign(f.signer.key, u.SignSource())
	if err != nil {
		t.Fatal(err)
	}
	// A replayed assembly with different bytes under the old digest.
	p.Head = []byte(strings.Replace(awkwardHead, "88.08", "88.080000001", 1))
	p.Replay = 1
	if _, _, err := f.store.CreatePending(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if _, err := f.handler.Source(context.Background(), p.SessionID); !errors.Is(err, ErrInternal) {
		t.Errorf("Source of corrupt bytes: err = %v, want ErrInternal", err)
	}
	a := f.upload(t, ceb179.Invocation{Op: ceb179.OpUpload, SessionID: p.SessionID, Digest: p.Digest, CertNo: f.signer.certNo, SignValue: sv})
	if a.State != ceb179.StateRetry || !strings.Contains(a.Message, "does not match its digest") || f.customs.Posts() != 0 {
		t.Fatalf("answer = %+v after %d posts, want a refusal and no post", a, f.customs.Posts())
	}
}

func TestUploadIdempotent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.assemble(t, "sid-twice")
	job := f.sign(t, "sid-twice", f.signer)
	first := f.upload(t, job)
	second := f.upload(t, job)
	if first.State != ceb179.StateAccepted || second != first {
		t.Fatalf("answers %+v then %+v, want the same ACCEPTED twice", first, second)
	}
	if n := f.customs.Posts(); n != 1 {
		t.Fatalf("customs received %d posts, want 1", n)
	}
	src, err := f.handler.Source(context.Background(), "sid-twice")
	if err != nil || src.State != ceb179.StateAccepted || src.SignSource != "" {
		t.Errorf("Source after acceptance = %+v, %v; want only the final state", src, err)
	}
}

func TestUploadConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *fixtureConfig) { c.timeout = 5 * time.Second })
	// Customs is slow, so every duplicate arrives while the first post is
	// in flight.
	f.customs.Fallback(customssim.Accepted().After(300 * time.Millisecond))
	f.assemble(t, "sid-race")
	job := f.sign(t, "sid-race", f.signer)
	const n = 8
	answers := make(chan ceb179.UploadAnswer, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers <- f.upload(t, job)
		}()
	}
	wg.Wait()
	close(answers)
	accepted := 0
	for a := range answers {
		switch a.State {
		case ceb179.StateAccepted:
			accepted++
		case ceb179.StateRetry:
		default:
			t.Errorf("answer %+v, want ACCEPTED or RETRY", a)
		}
	}
	if accepted == 0 {
		t.Errorf("no invocation reported ACCEPTED")
	}
	if got := f.customs.Posts(); got != 1 {
		t.Fatalf("customs received %d posts from %d concurrent invocations, want 1", got, n)
	}
	if a := f.upload(t, job); a.State != ceb179.StateAccepted || f.customs.Posts() != 1 {
		t.Fatalf("redelivery after the race = %+v, posts %d", a, f.customs.Posts())
	}
}

func TestUploadTakeOverAfterCrash(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.assemble(t, "sid-crash")
	job := f.sign(t, "sid-crash", f.signer)
	// An invocation claimed the session and died (perhaps after posting).
	if _, err := f.store.ClaimUpload(context.Background(), "sid-crash", "dead", epoch, epoch.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(epoch.Add(10 * time.Second))
	if a := f.upload(t, job); a.State != ceb179.StateRetry || f.customs.Posts() != 0 {
		t.Fatalf("while the lease lives: %+v, posts %d; want RETRY without posting", a, f.customs.Posts())
	}
	f.clock.Set(epoch.Add(31 * time.Second))
	f.customs.Script(customssim.Duplicate())
	a := f.upload(t, job)
	if a.State != ceb179.StateAccepted || !strings.Contains(a.Message, "duplicate after an unanswered attempt") {
		t.Fatalf("after the lease ended: %+v, want ACCEPTED as a duplicate", a)
	}
}

func TestUploadTLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		trust bool
		want  ceb179.State
	}{
		{name: "fail self-signed customs certificate refused by default", want: ceb179.StateFailed},
		{name: "ok accepted when its CA is configured", trust: true, want: ceb179.StateAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(c *fixtureConfig) { c.tls, c.trustCA = true, tt.trust })
			f.assemble(t, "sid-tls")
			a := f.upload(t, f.sign(t, "sid-tls", f.signer))
			if a.State != tt.want {
				t.Fatalf("answer = %+v, want %s", a, tt.want)
			}
			if !tt.trust && (f.customs.Posts() != 0 || !strings.Contains(a.Message, "tls")) {
				t.Errorf("untrusted: %d posts, message %q; want none and a TLS reason", f.customs.Posts(), a.Message)
			}
		})
	}
}

func TestSourceAndInvoke(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.assemble(t, "sid-source")
	ctx := context.Background()
	src, err := f.handler.Source(ctx, "sid-source")
	if err != nil {
		t.Fatal(err)
	}
	u := customs.Unsigned{SessionID: p.SessionID, Head: p.Head, Lists: p.Lists, ServiceTime: p.ServiceTime}
	if src.SignSource != string(u.SignSource()) || src.Digest != p.Digest || src.EbpCode != ebpCode ||
		src.Deadline != p.Deadline.UnixMilli() || src.State != ceb179.StateAssembled {
		t.Errorf("Source = %+v", src)
	}
	tests := []struct {
		name    string
		in      ceb179.Invocation
		wantErr error
	}{
		{name: "ok source", in: ceb179.Invocation{Op: "source", SessionID: "sid-source"}},
		{name: "fail unknown op", in: ceb179.Invocation{Op: "sign", SessionID: "sid-source"}, wantErr: ErrBadRequest},
		{name: "fail source without sessionID", in: ceb179.Invocation{Op: "source"}, wantErr: ErrBadRequest},
		{name: "fail source of unknown session", in: ceb179.Invocation{Op: "source", SessionID: "nope"}, wantErr: ErrUnknownSession},
		{name: "fail upload without signValue", in: ceb179.Invocation{Op: "upload", SessionID: "sid-source", Digest: p.Digest, CertNo: "01"}, wantErr: ErrBadRequest},
		{name: "fail upload of unknown session", in: ceb179.Invocation{Op: "upload", SessionID: "nope", Digest: "d", CertNo: "c", SignValue: "s"}, wantErr: ErrUnknownSession},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.handler.Invoke(ctx, tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Invoke err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestLogsHoldNoPayload(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var buf syncBuffer
	f.handler.log = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.handler.metrics = metrics.New("upload", &buf)
	f.customs.Script(customssim.Hang(), customssim.Status(503), customssim.Rejected("orderNo : 格式错误;"))
	f.assemble(t, "sid-logs")
	job := f.sign(t, "sid-logs", f.signer)
	if a := f.upload(t, job); a.State != ceb179.StateRejected {
		t.Fatalf("answer = %+v", a)
	}
	bad := job
	bad.SignValue = job.SignValue[:10] + "AAAA" + job.SignValue[14:]
	f.assemble(t, "sid-logs-2")
	bad.SessionID, bad.Digest = "sid-logs-2", f.sign(t, "sid-logs-2", f.signer).Digest
	f.upload(t, bad)
	out := buf.String()
	if !strings.Contains(out, "sid-logs") || !strings.Contains(out, "upload attempt") {
		t.Fatalf("logs do not show the work: %s", out)
	}
	for _, secret := range []string{"initalRequest", "pay.example", "商品", "收款", "88.08", "6222", job.SignValue, bad.SignValue} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// snapshot returns every total of rec.
func snapshot(rec *metrics.Recorder) map[string]float64 {
	m := map[string]float64{}
	for _, n := range rec.Names() {
		m[n] = rec.Total(n)
	}
	return m
}

// finalMetrics renders the change of the outcome counters between two
// snapshots, for example "Accepted=1 OnTime=1".
func finalMetrics(before, after map[string]float64) string {
	var parts []string
	for _, n := range []string{MetricAccepted, MetricRejected, MetricFailed, MetricOnTime, MetricLate, MetricRetry} {
		if d := after[n] - before[n]; d != 0 {
			parts = append(parts, fmt.Sprintf("%s=%v", n, d))
		}
	}
	return strings.Join(parts, " ")
}
