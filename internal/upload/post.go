package upload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/customsapi"
)

// duplicateMessage is customs' answer to a sessionID it already stored.
const duplicateMessage = "入库失败"

// run is one invocation's posting of one claimed session.
type run struct {
	h       *Handler
	log     *slog.Logger
	job     ceb179.Invocation
	pending ceb179.Pending
	owner   string
	doc     []byte

	received  time.Time // when ingest received customs' request
	deadline  time.Time // customs' deadline for the data
	giveUpAt  time.Time // when uncertain uploads stop being retried
	budgetEnd time.Time // when this invocation must stop posting
	last      time.Time // the last post of any invocation, zero if none

	// uncertain: an attempt that may have reached customs went without a
	// verdict in this invocation, or an earlier invocation died holding
	// the lease (perhaps after posting). An attempt that certainly never
	// reached customs does not count.
	uncertain bool
	// keepLease: an unanswered attempt could not be recorded. The lease is
	// left to lapse instead of being released, so the next claim takes it
	// over and counts it as an earlier unanswered attempt: a later
	// 入库失败 is then read as ours, never as a rejection.
	keepLease bool
}

// post sends the document until an outcome is final or this invocation
// should stop, records every attempt, and ends the lease.
func (r *run) post(ctx context.Context) (ceb179.UploadAnswer, error) {
	h := r.h
	now := h.now()
	if now.After(r.giveUpAt) {
		return r.finish(ctx, ceb179.StateFailed, fmt.Sprintf("gave up: no answer from customs by %s (deadline + %s)",
			r.giveUpAt.UTC().Format(time.RFC3339), h.policy.GiveUpAfter))
	}
	if slow := h.policy.slowInterval(now, r.deadline); !now.Before(r.deadline) && !r.last.IsZero() && now.Sub(r.last) < slow {
		// After the deadline posts are paced, whoever delivers the job.
		next := r.last.Add(slow)
		return r.release(ctx, fmt.Sprintf("late upload paced: next post not before %s", next.UTC().Format(time.RFC3339)))
	}
	var lastErr string
	for n := 1; ; n++ {
		now := h.now()
		timeLeft := r.budgetEnd.Sub(now)
		if n > 1 && timeLeft < h.policy.MinAttempt {
			return r.release(ctx, "no time left in this invocation; last error: "+lastErr)
		}
		att, ans, err := r.attempt(ctx, n, max(timeLeft, h.policy.MinAttempt))
		r.last = att.At
		switch att.Outcome {
		case ceb179.OutcomeAccepted:
			return r.finish(ctx, ceb179.StateAccepted, ans.Ack.Message)
		case ceb179.OutcomeRejected:
			return r.finish(ctx, ceb179.StateRejected, fmt.Sprintf("customs %s: %s", ans.Ack.Code, ans.Ack.Message))
		case ceb179.OutcomeDuplicate:
			ours, derr := r.ownDuplicate(ctx)
			if derr != nil {
				// Unknown whether an earlier post of ours may have been
				// stored: neither an acceptance nor customs' own failure;
				// the job comes back.
				r.uncertain = true
				return r.release(ctx, "customs answered 入库失败 and the earlier attempts could not be read: "+derr.Error())
			}
			if ours {
				return r.finish(ctx, ceb179.StateAccepted, "duplicate after an unanswered attempt: customs already stored this session ("+ans.Ack.Message+")")
			}
			// No attempt of ours can have been stored: customs' own
			// storage failure (or another's copy). Retried like a post
			// without a verdict; never read as an acceptance.
			lastErr = fmt.Sprintf("customs %s: %s (not after an attempt of ours that may have been stored)", ans.Ack.Code, ans.Ack.Message)
		case ceb179.OutcomeRefused:
			return r.finish(ctx, ceb179.StateFailed, "not delivered, repeating cannot help: "+err.Error())
		default:
			// No verdict: customs may have the data (UNCERTAIN), or
			// certainly does not (NOT_DELIVERED). Retried alike.
			r.uncertain = r.uncertain || att.Outcome.MayHaveStored()
			lastErr = err.Error()
		}
		now = h.now()
		switch {
		case now.Add(h.policy.slowInterval(now, r.deadline)).After(r.giveUpAt):
			// No later post would be allowed: decide now.
			return r.finish(ctx, ceb179.StateFailed, "gave up at the end of the retry window; last error: "+lastErr)
		case !now.Before(r.deadline):
			return r.release(ctx, "late upload unanswered, will retry: "+lastErr)
		case n >= h.policy.MaxAttempts:
			return r.release(ctx, fmt.Sprintf("%d attempts unanswered, will retry: %s", n, lastErr))
		}
		wait := h.backoff(n)
		if !now.Add(wait).Before(r.deadline) || r.budgetEnd.Sub(now.Add(wait)) < h.policy.MinAttempt {
			return r.release(ctx, "unanswered, will retry later: "+lastErr)
		}
		if err := h.sleep(ctx, wait); err != nil {
			return r.release(ctx, "interrupted while waiting to retry: "+lastErr)
		}
	}
}

// attempt posts the document once with at most timeout and records it.
func (r *run) attempt(ctx context.Context, n int, timeout time.Duration) (ceb179.Attempt, customsapi.Answer, error) {
	h := r.h
	actx, cancel := context.WithTimeout(ctx, timeout)
	at := h.now()
	ans, err := h.poster.Upload(actx, r.doc)
	cancel()
	att := ceb179.Attempt{
		SessionID:  r.job.SessionID,
		At:         at,
		N:          n,
		HTTPStatus: ans.HTTPStatus,
		Code:       ans.Ack.Code,
		Message:    ans.Ack.Message,
		Latency:    ans.Latency,
		Digest:     r.pending.Digest,
		BodyDigest: ans.BodyDigest,
		CertNo:     r.job.CertNo,
		SignValue:  r.job.SignValue,
		Owner:      r.owner,
	}
	var cerr *customsapi.Error
	switch {
	case err == nil && ans.Ack.Accepted():
		att.Outcome = ceb179.OutcomeAccepted
	case err == nil && strings.Contains(ans.Ack.Message, duplicateMessage):
		att.Outcome = ceb179.OutcomeDuplicate
	case err == nil:
		att.Outcome = ceb179.OutcomeRejected
	case errors.As(err, &cerr):
		att.Error = string(cerr.Kind)
		switch {
		case !cerr.Retryable():
			att.Outcome = ceb179.OutcomeRefused
		case cerr.NotDelivered:
			att.Outcome = ceb179.OutcomeNotDelivered
		default:
			att.Outcome = ceb179.OutcomeUncertain
		}
	default:
		att.Error = "unknown"
		att.Outcome = ceb179.OutcomeUncertain
	}
	if att.BodyDigest == "" {
		att.BodyDigest = bodyDigest(r.doc)
	}
	h.metrics.Add(MetricAttempts, 1)
	if ans.Latency > 0 {
		h.metrics.Duration(MetricCustomsLatency, ans.Latency)
	}
	attrs := []any{slog.Int("attempt", n), slog.String("outcome", string(att.Outcome)),
		slog.Int("httpStatus", att.HTTPStatus), slog.String("code", att.Code),
		slog.Int64("latencyMs", ans.Latency.Milliseconds())}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	} else {
		attrs = append(attrs, slog.String("customsMessage", att.Message))
	}
	r.log.Info("upload attempt", attrs...)
	// The record must outlive a cancelled invocation, and is retried: a
	// missing record of a post that may have reached customs could turn a
	// later 入库失败 of ours into a rejection.
	if perr := h.retryStore(ctx, func(ctx context.Context) error { return h.store.PutAttempt(ctx, att) }); perr != nil {
		r.log.Error("record attempt", slog.Int("attempt", n), slog.String("error", perr.Error()))
		if att.Outcome.MayHaveStored() && att.Outcome != ceb179.OutcomeAccepted {
			r.keepLease = true
		}
	}
	return att, ans, err
}

// ownDuplicate decides whether customs' 入库失败 (the sessionID is already
// stored) answers an earlier upload of ours: true when an earlier attempt
// may have left the session stored at customs (it may have reached customs
// without a verdict coming back, or customs accepted it), or an earlier
// invocation died holding the lease. An earlier attempt that certainly
// never reached customs stored nothing.
func (r *run) ownDuplicate(ctx context.Context) (bool, error) {
	if r.uncertain {
		return true, nil
	}
	atts, err := r.h.listAttempts(ctx, r.job.SessionID)
	if err != nil {
		return false, err
	}
	for _, a := range atts {
		if a.Outcome.MayHaveStored() {
			return true, nil
		}
	}
	return false, nil
}

// finish records the final state and ends the lease. The write is retried
// until it holds; if it never does, the invocation fails, so the bridge
// keeps the job and a later delivery finishes the session (an ACCEPTED
// attempt record is found before anything is posted again).
func (r *run) finish(ctx context.Context, to ceb179.State, reason string) (ceb179.UploadAnswer, error) {
	h := r.h
	if err := h.retryStore(ctx, func(ctx context.Context) error {
		err := h.store.FinishUpload(ctx, r.job.SessionID, r.owner, to, reason, r.last)
		if errors.Is(err, ceb179.ErrLeaseLost) {
			// A retry of a write whose answer was lost finds the lease gone
			// and the state already set.
			if req, gerr := h.store.GetRequest(ctx, r.job.SessionID); gerr == nil && req.State == to {
				return nil
			}
		}
		return err
	}); err != nil {
		r.log.Error("finish upload", slog.String("state", string(to)), slog.String("error", err.Error()))
		return ceb179.UploadAnswer{}, fmt.Errorf("%w: record outcome", ErrInternal)
	}
	r.record(to)
	r.log.Info("upload finished", slog.String("state", string(to)))
	return ceb179.UploadAnswer{SessionID: r.job.SessionID, State: to, Message: reason}, nil
}

// release ends the lease without a final state: the bridge delivers the
// job again later. On the job's last delivery the job dead-letters and the
// settler sends it again while the give-up window lasts, so the last
// delivery is no reason to give up.
func (r *run) release(ctx context.Context, reason string) (ceb179.UploadAnswer, error) {
	h := r.h
	if r.keepLease {
		if err := h.store.NoteUpload(context.WithoutCancel(ctx), r.job.SessionID, reason); err != nil {
			r.log.Error("note upload", slog.String("error", err.Error()))
		}
	} else if err := h.store.ReleaseUpload(context.WithoutCancel(ctx), r.job.SessionID, r.owner, reason, r.last); err != nil {
		r.log.Error("release upload", slog.String("error", err.Error()))
	}
	h.metrics.Add(MetricRetry, 1)
	r.log.Info("upload to be retried", slog.String("reason", reason))
	return ceb179.UploadAnswer{SessionID: r.job.SessionID, State: ceb179.StateRetry, Message: reason}, nil
}

// record counts a final state; an acceptance also counts as on time or
// late against the deadline, with its time since the request's receipt.
func (r *run) record(to ceb179.State) {
	h := r.h
	switch to {
	case ceb179.StateAccepted:
		h.metrics.Add(MetricAccepted, 1)
		now := h.now()
		if now.After(r.deadline) {
			h.metrics.Add(MetricLate, 1)
		} else {
			h.metrics.Add(MetricOnTime, 1)
		}
		if !r.received.IsZero() {
			h.metrics.Duration(MetricEndToEndLatency, now.Sub(r.received))
		}
	case ceb179.StateRejected:
		h.metrics.Add(MetricRejected, 1)
	default:
		h.metrics.Add(MetricFailed, 1)
	}
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// bodyDigest is the digest of the form body customs receives for doc.
func bodyDigest(doc []byte) string {
	return digestOf(customs.EncodeUploadForm(doc))
}
