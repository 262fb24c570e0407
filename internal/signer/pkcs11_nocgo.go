//go:build !cgo

package signer

import (
	"context"
	"errors"
)

// OpenPKCS11 is unavailable in builds without cgo: PKCS#11 modules are C
// libraries. Build hsmbridge with CGO_ENABLED=1 to use a cipher machine.
func OpenPKCS11(context.Context, PKCS11Config) (*KeySigner, error) {
	return nil, errors.New("signer: PKCS#11 support needs a cgo build of hsmbridge (CGO_ENABLED=1)")
}
