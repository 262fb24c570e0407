package ceb179

import "time"

// Ops of the upload function, invoked by hsmbridge (see docs/architecture.md).
const (
	// OpSource asks for the exact sign source of a session.
	OpSource = "source"
	// OpUpload hands over a signature and asks for the upload to customs.
	OpUpload = "upload"
)

// StateRetry is not a state of a session: it is the upload function's answer
// when the upload did not reach a final state in this invocation and the
// bridge should deliver the sign job again later.
const StateRetry State = "RETRY"

// Invocation is the JSON payload hsmbridge sends to the upload function.
// Op "source" needs only SessionID; op "upload" needs all fields.
type Invocation struct {
	Op        string `json:"op"`
	SessionID string `json:"sessionID"`
	Digest    string `json:"digest,omitempty"`
	CertNo    string `json:"certNo,omitempty"`
	SignValue string `json:"signValue,omitempty"`
	// LastDelivery, set by the bridge on op "upload", says the sign job will
	// not be delivered again (its receive count reached the queue's
	// maxReceiveCount): an upload that cannot finish now becomes FAILED
	// instead of RETRY.
	LastDelivery bool `json:"lastDelivery,omitempty"`
}

// SourceAnswer is the upload function's answer to op "source". When State
// is final the session needs no signature: SignSource is empty and the
// bridge should drop the sign job.
type SourceAnswer struct {
	SessionID  string `json:"sessionID"`
	EbpCode    string `json:"ebpCode"`
	SignSource string `json:"signSource"`
	Digest     string `json:"digest"`
	Deadline   int64  `json:"deadline"`
	State      State  `json:"state,omitempty"`
}

// UploadAnswer is the upload function's answer to op "upload". State is
// ACCEPTED, REJECTED, FAILED (final: the bridge deletes the sign job) or
// RETRY (the bridge leaves the job to come back). Message explains it
// without payment data.
type UploadAnswer struct {
	SessionID string `json:"sessionID"`
	State     State  `json:"state"`
	Message   string `json:"message"`
}

// Final reports whether the answer ends the sign job (ACCEPTED, REJECTED or
// FAILED): the bridge deletes its message. Any other state, RETRY or one
// it does not know, leaves the job to come back.
func (a UploadAnswer) Final() bool {
	switch a.State {
	case StateAccepted, StateRejected, StateFailed:
		return true
	}
	return false
}

// Outcome is what one upload attempt came to.
type Outcome string

// Outcomes of an upload attempt.
const (
	// OutcomeAccepted: customs answered 10000.
	OutcomeAccepted Outcome = "ACCEPTED"
	// OutcomeRejected: customs answered with another code and a message.
	OutcomeRejected Outcome = "REJECTED"
	// OutcomeDuplicate: customs answered that it already stored the
	// sessionID (入库失败).
	OutcomeDuplicate Outcome = "DUPLICATE"
	// OutcomeUncertain: the request may have reached customs but no
	// verdict came back (timeout, a connection lost after the request was
	// written, an HTTP error status, a body that is not customs' answer);
	// customs may have stored it.
	OutcomeUncertain Outcome = "UNCERTAIN"
	// OutcomeNotDelivered: the request certainly never reached customs
	// (name not resolved, connection refused, TLS handshake failed, the
	// connection failed before the request was written). Retried like
	// OutcomeUncertain, but customs cannot have stored it.
	OutcomeNotDelivered Outcome = "NOT_DELIVERED"
	// OutcomeRefused: the request could not be delivered and repeating it
	// cannot help (customs' TLS certificate is not trusted).
	OutcomeRefused Outcome = "REFUSED"
)

// MayHaveStored reports whether customs may have stored the session after
// an attempt with outcome o: it accepted it, or the request may have
// reached customs without a verdict coming back. Only such an earlier
// attempt makes customs' later 入库失败 (sessionID already stored) a
// duplicate of our own upload; any other earlier attempt (rejected,
// certainly not delivered, refused) leaves it customs' own refusal.
func (o Outcome) MayHaveStored() bool {
	return o == OutcomeAccepted || o == OutcomeUncertain
}

// Attempt is the record of one post of a signed upload to customs, kept as
// long as the payment data. With the session's PENDING bytes, CertNo and
// SignValue rebuild exactly what was sent; BodyDigest proves it.
type Attempt struct {
	// SessionID is customs' sessionID.
	SessionID string
	// At is when the request was sent.
	At time.Time
	// N numbers the attempts of one invocation, from 1.
	N int
	// Outcome is what the attempt came to.
	Outcome Outcome
	// HTTPStatus is the HTTP status, 0 when no answer arrived.
	HTTPStatus int
	// Code and Message are customs' answer, when there was one.
	Code, Message string
	// Error is the kind of failure (timeout, network, tls, http, answer), if any.
	Error string
	// Latency is how long the request took.
	Latency time.Duration
	// Digest is the lower-case hex SHA-256 of the sign source that was signed.
	Digest string
	// BodyDigest is the lower-case hex SHA-256 of the exact request body sent.
	BodyDigest string
	// CertNo and SignValue are the signature that was sent.
	CertNo, SignValue string
	// Owner identifies the invocation that made the attempt.
	Owner string
}
