// Package signer holds the signing backends of hsmbridge: the E-Port client
// control (card or UKey reached over its local WebSocket), cipher machines
// through their vendor's GM/T 0018 SDF library (loaded at run time,
// without cgo), PKCS#11 cipher machines and HSMs, AWS KMS, and PEM key
// files for development and tests.
//
// Every backend is a Signer: it signs a 179 sign source and returns the
// signValue customs expects (base64 of a raw SM2 r||s, or of an RSA PKCS#1
// v1.5 SHA-1 signature), and it knows the certificate whose certNo goes
// with the upload. Backends that hold a key locally (key file, PKCS#11)
// expose it as a crypto.Signer and share the signing rules of package
// signature through KeySigner.
//
// A card locks after a few wrong PINs, so every PIN goes to its device
// through PINGuard.Do, the one door: a backend makes its PIN-bearing call
// inside it and says how the call ended (PINResult). A PIN the device
// refused, or that a call carried without a usable answer (a strike: a
// timeout, a dropped connection, garbage, words without a known code, a
// process that stopped during the call), is blocked on that card: a
// marker is written to the machine's state directory before anyone hears
// of it, and the PIN is not sent again, by any process, until pin-reset
// or another PIN. The error wraps ErrPINRefused (ErrPINStruck for a
// strike); callers must stop using that signer. Only a known device error
// named by its code leaves the PIN unchecked, and the card is then tried
// again only after a check without the PIN. PINs are held in a PIN value
// that never prints itself, and read from files strictly (LoadPIN).
package signer
