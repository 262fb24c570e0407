// Package signature signs and verifies the payment data that a platform
// uploads to China Customs under announcement No.179.
//
// Two algorithms are in use, chosen by the key or certificate:
//
//   - SM2 with SM3 and the default user id 1234567812345678 (E-Port cards
//     issued since about 2022 and cipher machines). The signValue is the
//     base64 of the raw 64-byte r||s, each half left-padded to 32 bytes.
//   - RSA PKCS#1 v1.5 with SHA-1 (older E-Port cards, RSA-1024). The
//     signValue is the base64 of the signature, as long as the modulus.
//
// The package also loads certificates and private keys from PEM and derives
// the certNo (the certificate serial number in lower-case hex) that goes
// next to the signature in payExInfoStr.
package signature
