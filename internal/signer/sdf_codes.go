package signer

import (
	"errors"
	"fmt"
)

// sdfCode is what an SDF error code means to the signer.
type sdfCode struct {
	// name is the code's name in the header that defines it.
	name string
	// what is its meaning, for messages.
	what string
	// kind is how a failed call other than the access-right call is
	// taken: ErrUnavailable (the device or the session is in trouble; the
	// session is closed and another opened) or ErrDevice (the call or the
	// configuration is wrong).
	kind error
	// password says the code is a refused password when the access-right
	// call answers it.
	password bool
}

// sdfCodes names the error codes of GM/T 0018-2012 appendix A (as GmSSL's
// src/sdf/sdf.h and Tongsuo's include/openssl/sdf.h define them) and the
// Sansec codes of GmSSL's src/sdf/sdf_sansec.h that say a network cipher
// machine could not be reached. A code not named here is unknown: any
// call but the access-right call takes it as ErrDevice, and the
// access-right call, like every failure of that call, as a refused
// password.
var sdfCodes = map[uint32]sdfCode{
	0x01000001: {"SDR_UNKNOWERR", "unknown error", ErrUnavailable, false},
	0x01000002: {"SDR_NOTSUPPORT", "function not supported", ErrDevice, false},
	0x01000003: {"SDR_COMMFAIL", "communication with the device failed", ErrUnavailable, false},
	0x01000004: {"SDR_HARDFAIL", "hardware failure", ErrUnavailable, false},
	0x01000005: {"SDR_OPENDEVICE", "cannot open the device", ErrUnavailable, false},
	0x01000006: {"SDR_OPENSESSION", "cannot open the session, or the session is gone", ErrUnavailable, false},
	0x01000007: {"SDR_PARDENY", "permission denied", ErrUnavailable, true},
	0x01000008: {"SDR_KEYNOTEXIST", "no key at this index", ErrDevice, false},
	0x01000009: {"SDR_ALGNOTSUPPORT", "algorithm not supported", ErrDevice, false},
	0x0100000A: {"SDR_ALGMODNOTSUPPORT", "algorithm mode not supported", ErrDevice, false},
	0x0100000B: {"SDR_PKOPERR", "public-key operation failed", ErrDevice, false},
	0x0100000C: {"SDR_SKOPERR", "private-key operation failed", ErrDevice, false},
	0x0100000D: {"SDR_SIGNERR", "signing failed", ErrDevice, false},
	0x0100000E: {"SDR_VERIFYERR", "verification failed", ErrDevice, false},
	0x0100000F: {"SDR_SYMOPERR", "symmetric operation failed", ErrDevice, false},
	0x01000010: {"SDR_STEPERR", "calls out of order", ErrUnavailable, false},
	0x01000011: {"SDR_FILESIZEERR", "wrong file size or input length", ErrDevice, false},
	0x01000012: {"SDR_FILENOEXIST", "no such file", ErrDevice, false},
	0x01000013: {"SDR_FILEOFSERR", "wrong file offset", ErrDevice, false},
	0x01000014: {"SDR_KEYTYPEERR", "wrong key type", ErrDevice, false},
	0x01000015: {"SDR_KEYERR", "key error", ErrDevice, false},
	0x01000016: {"SDR_ENCDATAERR", "bad encrypted data", ErrDevice, false},
	0x01000017: {"SDR_RANDERR", "random number generator failed", ErrUnavailable, false},
	0x01000018: {"SDR_PRKRERR", "private-key access right refused or missing", ErrUnavailable, true},
	0x01000019: {"SDR_MACERR", "MAC error", ErrDevice, false},
	0x0100001A: {"SDR_FILEEXSITS", "file exists", ErrDevice, false},
	0x0100001B: {"SDR_FILEWERR", "file write failed", ErrDevice, false},
	0x0100001C: {"SDR_NOBUFFER", "device out of memory", ErrUnavailable, false},
	0x0100001D: {"SDR_INARGERR", "bad input argument", ErrDevice, false},
	0x0100001E: {"SDR_OUTARGERR", "bad output argument", ErrDevice, false},

	0x01010002: {"SANSEC_INVALID_AUTHENCODE", "authentication code refused", ErrUnavailable, true},
	0x01010100: {"SANSEC_SOCKET_TIMEOUT", "the cipher machine did not answer in time", ErrUnavailable, false},
	0x01010101: {"SANSEC_CONNECT_ERROR", "cannot connect to the cipher machine", ErrUnavailable, false},
	0x01010104: {"SANSEC_SOCKET_SEND_ERROR", "sending to the cipher machine failed", ErrUnavailable, false},
	0x01010105: {"SANSEC_SOCKET_RECV_ERROR", "receiving from the cipher machine failed", ErrUnavailable, false},
	0x01010106: {"SANSEC_SOCKET_RECV_0", "the cipher machine closed the connection", ErrUnavailable, false},
	0x01010200: {"SANSEC_SEM_TIMEOUT", "no free connection in time", ErrUnavailable, false},
	0x01010201: {"SANSEC_NO_AVAILABLE_HSM", "no cipher machine available", ErrUnavailable, false},
	0x01010202: {"SANSEC_NO_AVAILABLE_CSM", "no cipher machine available", ErrUnavailable, false},
	0x01010301: {"SANSEC_CONFIG_ERROR", "the library's configuration file is wrong", ErrDevice, false},
	0x01020007: {"SANSEC_CARD_PRIVATE_KEY_ACCESS_DENYED", "private-key access denied", ErrUnavailable, true},
	0x010363CE: {"SANSEC_CARD_READER_PIN_ERROR", "wrong PIN", ErrUnavailable, true},
}

// sdfCodeName returns "NAME (0x01000003, meaning)" for a known code and
// "unknown code 0x..." otherwise.
func sdfCodeName(code uint32) string {
	if c, ok := sdfCodes[code]; ok {
		return fmt.Sprintf("%s (%#08x, %s)", c.name, code, c.what)
	}
	return fmt.Sprintf("unknown code %#08x", code)
}

// SDFError is a failed call into an SDF library: the C function and the
// code it answered, named when GM/T 0018 or a vendor header names it. It
// wraps ErrPINRefused, ErrUnavailable or ErrDevice.
type SDFError struct {
	// Func is the C function, such as SDF_InternalSign_ECC.
	Func string
	// Code is the code it returned; 0 when it did not return in time.
	Code uint32
	// Note says more, such as why a failure counts as a refused password.
	Note  string
	kind  error
	cause error
}

// Error names the function, the code and what the failure means.
func (e *SDFError) Error() string {
	what := sdfCodeName(e.Code)
	if e.Code == 0 {
		what = "no answer in time"
	}
	msg := fmt.Sprintf("%v: %s: %s", e.kind, e.Func, what)
	if e.Note != "" {
		msg += "; " + e.Note
	}
	return msg
}

// Unwrap returns the error kind and, for a call that did not answer in
// time, why it was abandoned.
func (e *SDFError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// sdfFailure is the error of a call other than the access-right call that
// answered code (not SDR_OK).
func sdfFailure(fn string, code uint32) *SDFError {
	kind := ErrDevice
	if c, ok := sdfCodes[code]; ok {
		kind = c.kind
	}
	return &SDFError{Func: fn, Code: code, kind: kind}
}

// errSDFTimeout marks a call that did not answer within its bound; it is
// abandoned, and the session it ran on is never used again.
var errSDFTimeout = errors.New("no answer in time")

// sdfAccessRefusal is the error of a failed SDF_GetPrivateKeyAccessRight:
// it answered code, or did not answer in time (timeout wraps
// errSDFTimeout). The password had left the process, so every failure
// keeps it from being sent again: a code that names a refused password is
// a refusal (the error wraps ErrPINRefused), and any other answer (a
// device error, a code no header names) or none at all is a strike,
// since the device may have counted a wrong password (the guard makes it
// one; see PINUnknown).
func sdfAccessRefusal(code uint32, timeout error) *SDFError {
	e := &SDFError{Func: "SDF_GetPrivateKeyAccessRight", Code: code, kind: ErrPINRefused, cause: timeout}
	switch {
	case timeout != nil:
		e.kind = ErrUnavailable
		e.Note = timeout.Error() + " after the password was sent: the device may have counted a wrong password"
	case sdfCodes[code].password:
		e.Note = "the device refused the password"
	default:
		e.kind = ErrDevice
		e.Note = "a failure after the password was sent: the device may have counted a wrong password"
	}
	return e
}
