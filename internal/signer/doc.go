// Package signer holds the signing backends of hsmbridge: the E-Port client
// control (card or UKey reached over its local WebSocket), PKCS#11 cipher
// machines and HSMs, and PEM key files for development and tests.
//
// Every backend is a Signer: it signs a 179 sign source and returns the
// signValue customs expects (base64 of a raw SM2 r||s, or of an RSA PKCS#1
// v1.5 SHA-1 signature), and it knows the certificate whose certNo goes
// with the upload. Backends that hold a key locally (key file, PKCS#11)
// expose it as a crypto.Signer and share the signing rules of package
// signature through KeySigner.
//
// A refused PIN is reported as an error wrapping ErrPINRefused. Callers must
// stop using that signer at once: a card locks after a few wrong PINs.
// Because the E-Port control's wording of a wrong PIN is not published, a
// failed call that carried the PIN counts as refused unless it names a
// known reader or control error. Every PIN goes to its device through a
// PINGuard, which records refusals on disk by card (they outlive the
// process), withholds the PIN from a card that has not answered a PIN-free
// check since its last failure, and lets one PIN-bearing call reach a card
// at a time. PINs are held in a PIN value that never prints itself.
package signer
