package signer

// The PIN policy: the states of one card's PIN as the guard sees it, and
// what moves it from one to another. No I/O here: PINGuard.Do reads the
// state from its store, asks this policy, and writes what it says.

// PINResult is how a PIN-bearing call ended, as the backend that made it
// knows: it is the one thing a backend tells the guard, and it must say
// it plainly, never leave the guard to infer it from an error's text.
type PINResult int

const (
	// PINUnknown means the PIN may have reached the device and no usable
	// answer says what the device made of it: a timeout, a dropped
	// connection, a reply that is not the device's protocol, words
	// without a known code, a call abandoned at its timeout. The card may
	// have counted a wrong PIN, so this is a strike. It is the zero value:
	// a call that says nothing is a strike.
	PINUnknown PINResult = iota
	// PINNotSent means the call failed certainly before the PIN left the
	// process (the connection was refused, the request was never
	// written): the card saw nothing.
	PINNotSent
	// PINAccepted means the device accepted the PIN (it signed, or said
	// so), even if the call failed afterwards.
	PINAccepted
	// PINRefused means the device refused the PIN.
	PINRefused
	// PINDeviceCode means the device answered with a known reader or
	// device error, named by its code (50070, 50200, CKR_DEVICE_REMOVED,
	// ...), that leaves the PIN unchecked.
	PINDeviceCode
)

// String names the result for logs and tests.
func (r PINResult) String() string {
	switch r {
	case PINNotSent:
		return "not sent"
	case PINAccepted:
		return "accepted"
	case PINRefused:
		return "refused"
	case PINDeviceCode:
		return "device error with a known code"
	}
	return "unknown (a strike)"
}

// pinState is the state of one PIN value on one card.
type pinState int

const (
	// pinFresh: the PIN has not been accepted by the card in this process
	// since its last failure (or ever). The next call is a trial: it goes
	// only after a PIN-free check of the card succeeded, and exclusively
	// across the processes that share the state directory.
	pinFresh pinState = iota
	// pinProven: the card accepted this PIN at the last call.
	pinProven
	// pinBlocked: the card refused this PIN, or a call that carried it
	// ended in a strike. It is never sent again until pin-reset or
	// another PIN.
	pinBlocked
)

// markNone: the guard writes nothing after the call. Otherwise it writes
// a mark of the kind after returns (MarkRefused, MarkStruck), before
// anything else happens.
const markNone MarkKind = ""

// pinPolicy is the rule of the door. strikeUnknown is the rule that a
// PIN-bearing call without a usable answer is a strike; it is a field only
// so that a test can show what breaks without it.
type pinPolicy struct {
	strikeUnknown bool
}

// policy is the policy PINGuard follows.
var policy = pinPolicy{strikeUnknown: true}

// admit says whether a PIN in state s may be sent, and whether the call is
// a trial (PIN-free check first, exclusive across processes).
func (pinPolicy) admit(s pinState) (send, trial bool) {
	switch s {
	case pinProven:
		return true, false
	case pinFresh:
		return true, true
	}
	return false, false
}

// after returns the state of the PIN after a call made in state s that
// ended with r, and the mark to write before anything else happens.
func (p pinPolicy) after(s pinState, r PINResult) (pinState, MarkKind) {
	switch r {
	case PINAccepted:
		return pinProven, markNone
	case PINRefused:
		return pinBlocked, MarkRefused
	case PINNotSent:
		// The card saw nothing: nothing changes.
		return s, markNone
	case PINDeviceCode:
		// The card did not check the PIN, but something is wrong with
		// it: it is checked without the PIN before the next try.
		return pinFresh, markNone
	}
	if !p.strikeUnknown {
		return pinFresh, markNone
	}
	return pinBlocked, MarkStruck
}
