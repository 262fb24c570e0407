package signer

import "fmt"

// PKCS11Config configures a PKCS#11 signer (cipher machine, HSM, or
// SoftHSM2 in tests).
type PKCS11Config struct {
	// Module is the path of the vendor's PKCS#11 library.
	Module string
	// TokenLabel selects the token by label; Slot selects it by slot id
	// when TokenLabel is empty.
	TokenLabel string
	// Slot is the slot id, used when TokenLabel is empty.
	Slot *uint
	// KeyLabel and KeyID (hex) select the private key; at least one.
	KeyLabel string
	// KeyID is the hex CKA_ID of the private key.
	KeyID string
	// CertFile is the PEM certificate of the key. When empty the token's
	// certificate object with the same label or id is used.
	CertFile string
	// PIN is the user PIN.
	PIN PIN
	// Concurrency is how many sessions sign in parallel (default 1).
	Concurrency int
	// SM2Mechanism is the vendor mechanism that signs with SM2 (PKCS#11
	// defines none). Zero leaves SM2 keys unsupported.
	SM2Mechanism uint
	// SM2Input says what the SM2 mechanism takes: "message" (the
	// mechanism computes SM3 over Z||M itself, with the default user id)
	// or "digest" (hsmbridge computes e = SM3(Z||M) and the mechanism
	// signs e). Default "message".
	SM2Input string
	// Guard is the door the PIN goes through at login (one per process,
	// shared by every signer); a private in-memory guard when nil.
	Guard *PINGuard
	// Name is the signer entry's name, recorded on a refused-PIN marker.
	Name string
}

// cardID identifies the token for the PIN guard: the certificate's certNo
// when a certificate file is configured, the module, token and key
// otherwise.
func (c PKCS11Config) cardID(certNo string) string {
	if certNo != "" {
		return certNo
	}
	slot := "-"
	if c.Slot != nil {
		slot = fmt.Sprint(*c.Slot)
	}
	return fmt.Sprintf("pkcs11:%s|token=%s|slot=%s|key=%s|id=%s", c.Module, c.TokenLabel, slot, c.KeyLabel, c.KeyID)
}
