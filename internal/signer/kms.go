package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/ceb179/ceb179/internal/signature"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
)

// KMSAPI is the part of the AWS KMS client the KMS signer uses;
// *kms.Client implements it.
type KMSAPI interface {
	Sign(ctx context.Context, in *kms.SignInput, optFns ...func(*kms.Options)) (*kms.SignOutput, error)
}

var _ KMSAPI = (*kms.Client)(nil)

// KMSConfig configures a signer over an AWS KMS SM2 key (China regions).
type KMSConfig struct {
	// KeyID is the key id, ARN or alias of the SM2 key.
	KeyID string
	// CertFile is the PEM certificate of the key.
	CertFile string
	// Concurrency is how many Sign requests run at once (default 4).
	Concurrency int
	// CallTimeout bounds one Sign request (default 10s).
	CallTimeout time.Duration
}

// NewKMS returns a Signer over an SM2 key held in AWS KMS. KMS signs
// SM2DSA over a digest the signer computes itself, e = SM3(Z||M) with the
// default user id, because a sign source may exceed the 4 KB KMS takes as a
// raw message. It needs kms:Sign on the key.
func NewKMS(client KMSAPI, cfg KMSConfig) (*KeySigner, error) {
	if cfg.KeyID == "" {
		return nil, errors.New("kms: keyID is required")
	}
	pemBytes, err := os.ReadFile(cfg.CertFile)
	if err != nil {
		return nil, fmt.Errorf("kms: read certificate: %w", err)
	}
	cert, err := signature.ParseCertificatePEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !sm2.IsSM2PublicKey(pub) {
		return nil, fmt.Errorf("%w: kms signer needs an SM2 certificate", signature.ErrUnsupportedKey)
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 4
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	key := &kmsKey{client: client, keyID: cfg.KeyID, pub: pub, timeout: cfg.CallTimeout}
	return NewKeySigner(key, cert, cfg.Concurrency, nil)
}

// kmsKey is a crypto.Signer over a KMS SM2 key.
type kmsKey struct {
	client  KMSAPI
	keyID   string
	pub     *ecdsa.PublicKey
	timeout time.Duration
}

// Public returns the key's public key (from its certificate).
func (k *kmsKey) Public() crypto.PublicKey { return k.pub }

// Sign signs msg (the message, as package signature passes it with an
// *sm2.SM2SignerOption) and returns the ASN.1 DER signature KMS made.
func (k *kmsKey) Sign(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	o, ok := opts.(*sm2.SM2SignerOption)
	if !ok || !o.ForceGMSign {
		return nil, errors.New("kms: SM2 keys sign messages with an SM2 signer option")
	}
	za, err := sm2.CalculateZA(k.pub, o.UID)
	if err != nil {
		return nil, err
	}
	h := sm3.New()
	h.Write(za)
	h.Write(msg)
	ctx, cancel := context.WithTimeout(context.Background(), k.timeout)
	defer cancel()
	out, err := k.client.Sign(ctx, &kms.SignInput{
		KeyId:            aws.String(k.keyID),
		Message:          h.Sum(nil),
		MessageType:      kmstypes.MessageTypeDigest,
		SigningAlgorithm: kmstypes.SigningAlgorithmSpecSm2dsa,
	})
	if err != nil {
		return nil, classifyKMS(err)
	}
	return out.Signature, nil
}

// classifyKMS maps a KMS error to ErrDevice (the key cannot sign: disabled,
// missing, not allowed) or ErrUnavailable (anything else, such as the
// network).
func classifyKMS(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "DisabledException", "KMSInvalidStateException", "NotFoundException",
			"AccessDeniedException", "InvalidKeyUsageException", "KeyUnavailableException":
			return fmt.Errorf("%w: kms sign: %w", ErrDevice, err)
		}
	}
	return fmt.Errorf("%w: kms sign: %w", ErrUnavailable, err)
}
