package ceb179

import "errors"

// Kind is a kind of failure the domain knows. Adapters wrap a Kind (with
// fmt.Errorf and %w) into the errors they return, consumers test it with
// errors.Is, and only the edges (ingest's answer, the upload function's
// answer, the HTTP handlers, the command's exit codes) turn it into a
// customs code, an HTTP status or an exit code.
type Kind string

// Error implements error.
func (k Kind) Error() string { return string(k) }

// The kinds of failure.
const (
	// ErrNotFound: nothing is stored under the key asked for (a request, a
	// pending upload, a certificate, a payment).
	ErrNotFound Kind = "not found"
	// ErrConflict: a conditional write found the item in another state than
	// the caller expected.
	ErrConflict Kind = "conflict"
	// ErrClaimed: an upload cannot be claimed, because another invocation
	// holds a live lease or the session is in no state to upload.
	ErrClaimed Kind = "upload not claimable"
	// ErrLeaseLost: an invocation finished or released an upload whose
	// lease it no longer holds.
	ErrLeaseLost Kind = "upload lease lost"
	// ErrRefused: the operation is not allowed in the item's present state
	// (for example a replay of a session customs accepted).
	ErrRefused Kind = "refused"
	// ErrUnavailable: the service could not do the call now (throttled,
	// overloaded, unreachable); the same call may succeed later.
	ErrUnavailable Kind = "unavailable"
)

// KindOf returns the first Kind wrapped in err, or "" when there is none.
func KindOf(err error) Kind {
	var k Kind
	if errors.As(err, &k) {
		return k
	}
	return ""
}
