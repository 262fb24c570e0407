package ceb179

import (
	"slices"
	"time"
)

// Window is how long the platform has, from receiving a customs request, to
// upload the signed data. Operators report about two minutes.
const Window = 120 * time.Second

// State is where a customs request stands on its way to an upload.
type State string

// The states of a customs request, in the order it normally passes them.
const (
	// StateReceived: the request is recorded and queued for assembly.
	StateReceived State = "RECEIVED"
	// StateAssembled: the payment data is built and waits for a signature.
	StateAssembled State = "ASSEMBLED"
	// StateNoData: no payment record was found for the order before the deadline.
	StateNoData State = "NO_DATA"
	// StateInvalid: the stored payment record breaks a customs field rule.
	StateInvalid State = "INVALID"
	// StateSigned: the data is signed and being uploaded.
	StateSigned State = "SIGNED"
	// StateAccepted: customs answered 10000 to the upload.
	StateAccepted State = "ACCEPTED"
	// StateRejected: customs refused the upload with a validation message.
	StateRejected State = "REJECTED"
	// StateFailed: the upload could not be delivered within the retry budget.
	StateFailed State = "FAILED"
	// StateCapped was recorded, final, by earlier versions for a request
	// over its order's daily cap, which was then never signed. No request
	// is recorded CAPPED any more (over the cap means PriorityLow); the
	// state stays final so that such records read as they were.
	StateCapped State = "CAPPED"
)

// DefaultDailyCap is how many requests for one orderNo per China calendar
// day are signed with PriorityNormal unless configured otherwise; the
// others are signed too, with PriorityLow. Customs' audit asks for an
// order once or twice; the cap keeps a caller who repeats order numbers
// from delaying customs' other requests.
const DefaultDailyCap = 5

// Priority says which sign jobs a signer takes first: every waiting
// PriorityNormal job before any PriorityLow one, earliest deadline first
// within each. The zero value is PriorityNormal, so a message without a
// priority (an older one) is signed as usual.
type Priority int

// The priorities of a customs request and its sign job.
const (
	// PriorityNormal: the request is within its order's daily cap, or
	// came from an allowlisted source.
	PriorityNormal Priority = 0
	// PriorityLow: the request is over its order's daily cap. It is
	// recorded, answered 10000, signed and uploaded like any other, after
	// every PriorityNormal job waiting for the same signers.
	PriorityLow Priority = 1
)

// String names the priority ("normal", "low").
func (p Priority) String() string {
	if p >= PriorityLow {
		return "low"
	}
	return "normal"
}

// FinalStates are the states after which no further work happens for a
// request. Every other state, an unknown one included, is open: the
// settler keeps watching it.
var FinalStates = []State{StateNoData, StateInvalid, StateAccepted, StateRejected, StateFailed, StateCapped}

// Final reports whether no further work will happen for a request in state s.
func (s State) Final() bool {
	return slices.Contains(FinalStates, s)
}

// Request is one call of customs to platDataOpen, as the platform recorded it.
type Request struct {
	// SessionID is customs' identifier of the request, echoed unchanged in the upload.
	SessionID string
	// OrderNo is the order customs asked about.
	OrderNo string
	// ServiceTime is customs' own time of the request, in milliseconds since the epoch.
	ServiceTime int64
	// ReceivedAt is when the platform received the request.
	ReceivedAt time.Time
	// SourceIP is the address the request came from.
	SourceIP string
	// Deadline is when the upload is due: ReceivedAt plus Window.
	Deadline time.Time
	// State is where the request stands.
	State State
	// Enqueued reports whether the request was handed to the assemble queue.
	Enqueued bool
	// Reason explains a final state that is not a success, for operators.
	Reason string
	// Priority is how its sign job is scheduled: PriorityLow when it is
	// over its order's daily cap.
	Priority Priority
}

// AssembleMessage is the body of a message on the assemble queue.
type AssembleMessage struct {
	SessionID  string `json:"sessionID"`
	OrderNo    string `json:"orderNo"`
	ReceivedAt int64  `json:"receivedAt"`
	Deadline   int64  `json:"deadline"`
	// Replay, when above zero, is the number of an operator's replay of the
	// session: assemble builds a new pending upload with this replay number
	// and a new serviceTime, due by Deadline (the replay's own window).
	Replay int `json:"replay,omitempty"`
	// Priority is carried to the sign job (absent: PriorityNormal).
	Priority Priority `json:"priority,omitempty"`
}

// NewAssembleMessage returns the assemble queue message for r.
func NewAssembleMessage(r Request) AssembleMessage {
	return AssembleMessage{
		SessionID:  r.SessionID,
		OrderNo:    r.OrderNo,
		ReceivedAt: r.ReceivedAt.UnixMilli(),
		Deadline:   r.Deadline.UnixMilli(),
		Priority:   r.Priority,
	}
}

// SignJob is the body of a message on the sign queue. It never holds payment
// data: the signer fetches the sign source from the upload function.
type SignJob struct {
	SessionID string `json:"sessionID"`
	EbpCode   string `json:"ebpCode"`
	Deadline  int64  `json:"deadline"`
	Digest    string `json:"digest"`
	// Priority orders the job at the signers (absent: PriorityNormal).
	Priority Priority `json:"priority,omitempty"`
}

// Pending is an assembled upload waiting for its signature: the exact bytes
// that will be signed and uploaded, kept so that nothing is re-serialised
// between signing and upload.
type Pending struct {
	// SessionID is customs' sessionID.
	SessionID string
	// EbpCode is the platform code whose certificate must sign the data.
	EbpCode string
	// GUID is the guid inside Head.
	GUID string
	// Head is the exact payExchangeInfoHead JSON text.
	Head []byte
	// Lists is the exact payExchangeInfoLists JSON text.
	Lists []byte
	// ServiceTime is the upload serviceTime (ms since the epoch) as decimal text.
	ServiceTime string
	// Digest is the lower-case hex SHA-256 of the sign source.
	Digest string
	// Deadline is when the upload is due.
	Deadline time.Time
	// CreatedAt is when the upload was assembled.
	CreatedAt time.Time
	// Replay counts how many times an operator replayed the session (0 for the first assembly).
	Replay int
}

// SignJob returns the sign-queue message of p, scheduled with priority.
func (p Pending) SignJob(priority Priority) SignJob {
	return SignJob{SessionID: p.SessionID, EbpCode: p.EbpCode, Deadline: p.Deadline.UnixMilli(), Digest: p.Digest, Priority: priority}
}
