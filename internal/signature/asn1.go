package signature

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// ecSignature is the ASN.1 SEQUENCE { r INTEGER, s INTEGER } that SM2 (like
// ECDSA) signatures use in DER form (GB/T 35276, RFC 3279 Ecdsa-Sig-Value).
type ecSignature struct {
	R, S *big.Int
}

// SM2RawToASN1 converts a raw 64-byte SM2 signature r||s, as customs expects
// it in signValue, to the DER form that OpenSSL and most libraries use.
func SM2RawToASN1(raw []byte) ([]byte, error) {
	if len(raw) != SM2SignatureSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrLength, len(raw), SM2SignatureSize)
	}
	r := new(big.Int).SetBytes(raw[:SM2SignatureSize/2])
	s := new(big.Int).SetBytes(raw[SM2SignatureSize/2:])
	if r.Sign() == 0 || s.Sign() == 0 {
		return nil, errors.New("signature: sm2 r or s is zero")
	}
	return asn1.Marshal(ecSignature{R: r, S: s})
}

// SM2ASN1ToRaw converts a DER SM2 signature to the raw 64-byte r||s form,
// each half left-padded with zeros to 32 bytes.
func SM2ASN1ToRaw(der []byte) ([]byte, error) {
	var sig ecSignature
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil {
		return nil, fmt.Errorf("signature: sm2 DER signature: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("signature: sm2 DER signature: trailing data")
	}
	const half = SM2SignatureSize / 2
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.BitLen() > 8*half || sig.S.BitLen() > 8*half {
		return nil, errors.New("signature: sm2 DER signature: r or s out of range")
	}
	raw := make([]byte, SM2SignatureSize)
	sig.R.FillBytes(raw[:half])
	sig.S.FillBytes(raw[half:])
	return raw, nil
}
