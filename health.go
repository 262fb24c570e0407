package ceb179

import (
	"strings"
	"time"
)

// SignerHealth is the state of hsmbridge, the on-prem signer, as its local
// status endpoint reports it (JSON) and the operator tools show it.
type SignerHealth struct {
	// Time is when the status was taken.
	Time time.Time `json:"time"`
	// Policy is the scheduling policy.
	Policy string `json:"policy"`
	// InMemory is how many jobs the bridge holds (the backlog in use).
	InMemory int `json:"inMemory"`
	// MaxBacklog is the bound on InMemory.
	MaxBacklog int `json:"maxBacklog"`
	// Waiting is how many jobs wait for a signer and can still be on time.
	Waiting int `json:"waiting"`
	// Hopeless is how many waiting jobs can no longer be on time.
	Hopeless int `json:"hopeless"`
	// Queue is the sign queue's approximate depth, read every 30 s (absent
	// when the queue cannot tell).
	Queue *SignQueueDepth `json:"queue,omitempty"`
	// Totals are the counters since start: jobs received, uploads on
	// time and late, rejections, failures, jobs given back, alarms.
	Totals BridgeTotals `json:"totals"`
	// Signers is the health and rate of each signer.
	Signers []SignerStatus `json:"signers"`
}

// SignQueueDepth is the sign queue's depth as the bridge last read it.
type SignQueueDepth struct {
	// Waiting is the approximate number of visible messages.
	Waiting int `json:"waiting"`
	// InFlight is the approximate number of received, undeleted messages.
	InFlight int `json:"inFlight"`
	// At is when it was read.
	At time.Time `json:"at"`
}

// BridgeTotals are the bridge's counters since start.
type BridgeTotals struct {
	// Received counts sign jobs received; Malformed those that could not be read.
	Received  int64 `json:"received"`
	Malformed int64 `json:"malformed"`
	// OnTime and Late count uploads answered before and after the deadline.
	OnTime int64 `json:"onTime"`
	Late   int64 `json:"late"`
	// Rejected and Failed count uploads customs refused or that failed for good.
	Rejected int64 `json:"rejected"`
	Failed   int64 `json:"failed"`
	// GivenBack counts jobs handed back to the queue.
	GivenBack int64 `json:"givenBack"`
	// UploadErrors and SignErrors count failed invokes and failed signatures.
	UploadErrors int64 `json:"uploadErrors"`
	SignErrors   int64 `json:"signErrors"`
	// AlreadyFinal counts jobs whose session needed no signature any more.
	AlreadyFinal int64 `json:"alreadyFinal"`
	// Alarms counts alarms raised. PINRefused counts the signers disabled
	// for a blocked PIN among them, refused or struck; PINStruck counts
	// the strikes among those (a call that carried the PIN and got no
	// usable answer).
	Alarms     int64 `json:"alarms"`
	PINRefused int64 `json:"pinRefused"`
	PINStruck  int64 `json:"pinStruck"`
}

// SignerStatus is the state of one signer of the bridge.
type SignerStatus struct {
	// Name is the signer's configured name.
	Name string `json:"name"`
	// EbpCode is the platform code it signs for.
	EbpCode string `json:"ebpCode"`
	// CertNo is its certificate's certNo, once opened.
	CertNo string `json:"certNo,omitempty"`
	// CertNotAfter is when its certificate expires, once opened.
	CertNotAfter time.Time `json:"certNotAfter,omitzero"`
	// State is starting, healthy, unhealthy, or disabled followed by the
	// reason when it is known: "disabled: PIN refused".
	State string `json:"state"`
	// Concurrency is how many signatures it makes at once.
	Concurrency int `json:"concurrency"`
	// Signs counts its signatures since start.
	Signs int64 `json:"signs"`
	// Failures counts its failures since start.
	Failures int64 `json:"failures"`
	// SignsPerMinute counts its signatures in the last minute.
	SignsPerMinute int `json:"signsPerMinute"`
	// EstimateMs is its expected time per signature.
	EstimateMs int64 `json:"estimateMs"`
	// LastError is its last failure.
	LastError string `json:"lastError,omitempty"`
}

// Disabled reports whether the signer is disabled: it signs nothing until
// an operator acts (a refused PIN, for one).
func (s SignerStatus) Disabled() bool { return strings.HasPrefix(s.State, "disabled") }
