package signer

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

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
	// CallTimeout bounds the login (which carries the PIN) and the
	// closing of the sessions; default 10s. A login that has not returned
	// by then is abandoned and is a strike.
	CallTimeout time.Duration
	// Guard is the door the PIN goes through at login (one per process,
	// shared by every signer). Required.
	Guard *PINGuard
	// Name is the signer entry's name, recorded on a PIN marker.
	Name string
}

// withDefaults fills in the defaults of the fields left zero.
func (c PKCS11Config) withDefaults() PKCS11Config {
	if c.Concurrency < 1 {
		c.Concurrency = 1
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 10 * time.Second
	}
	return c
}

// tokenCard identifies the token for the PIN guard: the user PIN belongs
// to the token, so every key on it shares one identity, made of the
// module and the token's serial number and label (and the slot when the
// token gives neither).
func (c PKCS11Config) tokenCard(serial, label string, slot uint) string {
	serial, label = strings.TrimSpace(serial), strings.TrimSpace(label)
	id := fmt.Sprintf("pkcs11:%s|serial=%s|label=%s", filepath.Clean(c.Module), serial, label)
	if serial == "" && label == "" {
		id += fmt.Sprintf("|slot=%d", slot)
	}
	return id
}
