package ceb179

import "time"

// RequestView is a request as operators see it: the request, the upload's
// bookkeeping, the replays an operator asked for and what the settler did.
type RequestView struct {
	Request
	// LastAttemptAt is when the last post to customs was sent (zero: none).
	// For an ACCEPTED session it is the accepted post.
	LastAttemptAt time.Time
	// LeaseOwner and LeaseUntil are set while an upload invocation holds the session.
	LeaseOwner string
	LeaseUntil time.Time
	// Replays counts the replays operators asked for.
	Replays int
	// LastReplayAt, LastReplayBy and LastReplayWhy record the last replay.
	LastReplayAt  time.Time
	LastReplayBy  string
	LastReplayWhy string
	// Settles counts what the settler did to the request; LastSettleAt and
	// LastSettleWhy record its last action.
	Settles       int
	LastSettleAt  time.Time
	LastSettleWhy string
}

// Replay is an operator's request to assemble, sign and upload a session again.
type Replay struct {
	// SessionID is the session to replay.
	SessionID string
	// By names the operator; Why is the reason given.
	By, Why string
	// At is when the replay was asked for.
	At time.Time
	// Force allows replaying a session that customs accepted, or one
	// still in progress (Replayable).
	Force bool
	// Window is the time customs allows for an upload, which sets the due
	// time after an earlier replay (Window when zero).
	Window time.Duration
}

// UploadClaim is the upload function's view of a request: who holds the
// right to post its upload, and until when.
type UploadClaim struct {
	// Request is the request as stored after the claim (or as found, when
	// the claim failed).
	Request Request
	// Owner holds the lease, if anyone does.
	Owner string
	// LeaseUntil is when the lease ends.
	LeaseUntil time.Time
	// LastAttemptAt is when the last post to customs was made, zero if none.
	LastAttemptAt time.Time
	// TakenOver reports that the claim took the session from an earlier
	// owner whose lease ended without a release: that invocation died,
	// perhaps after posting.
	TakenOver bool
}

// Certificate is a signing certificate registered with customs for an
// ebpCode.
type Certificate struct {
	// EbpCode is the platform's customs registration code.
	EbpCode string
	// CertNo is the certificate's serial number in lower-case hex.
	CertNo string
	// PEM is the certificate.
	PEM []byte
	// NotAfter is the end of the certificate's validity.
	NotAfter time.Time
	// RegisteredAt is when it was registered.
	RegisteredAt time.Time
}
