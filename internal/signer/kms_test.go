package signer_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/ceb179/ceb179/internal/signature"
	"github.com/ceb179/ceb179/internal/signer"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
	"github.com/emmansun/gmsm/sm2"
)

// fakeKMS signs digests with a local SM2 key, as KMS does for SM2DSA with
// MessageType DIGEST, or fails with err.
type fakeKMS struct {
	key   *sm2.PrivateKey
	err   error
	calls []*kms.SignInput
}

func (f *fakeKMS) Sign(_ context.Context, in *kms.SignInput, _ ...func(*kms.Options)) (*kms.SignOutput, error) {
	f.calls = append(f.calls, in)
	if f.err != nil {
		return nil, f.err
	}
	sig, err := sm2.SignASN1(rand.Reader, f.key, in.Message, nil)
	if err != nil {
		return nil, err
	}
	return &kms.SignOutput{Signature: sig}, nil
}

func TestKMS(t *testing.T) {
	sm2Key := eporttest.NewSM2Key(t, 0x81)
	rsaKey := eporttest.NewRSAKey(t, 0x82)
	dir := t.TempDir()
	sm2Cert, rsaCert := filepath.Join(dir, "sm2.pem"), filepath.Join(dir, "rsa.pem")
	os.WriteFile(sm2Cert, sm2Key.CertPEM, 0o600)
	os.WriteFile(rsaCert, rsaKey.CertPEM, 0o600)
	for _, tc := range []struct {
		name     string
		cert     string
		kmsErr   error
		openErr  error
		signErr  error
		wantCall bool
	}{
		{"ok SM2 digest signed by KMS", sm2Cert, nil, nil, nil, true},
		{"fail RSA certificate", rsaCert, nil, signature.ErrUnsupportedKey, nil, false},
		{"fail key disabled", sm2Cert, &smithy.GenericAPIError{Code: "DisabledException", Message: "disabled"}, nil, signer.ErrDevice, true},
		{"fail network", sm2Cert, errors.New("dial tcp: connection refused"), nil, signer.ErrUnavailable, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeKMS{key: sm2Key.Signer.(*sm2.PrivateKey), err: tc.kmsErr}
			s, err := signer.NewKMS(f, signer.KMSConfig{KeyID: "alias/ceb179-sign", CertFile: tc.cert})
			if tc.openErr != nil {
				if !errors.Is(err, tc.openErr) {
					t.Fatalf("open err = %v, want %v", err, tc.openErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v, err := s.Sign(context.Background(), source)
			if tc.signErr != nil {
				if !errors.Is(err, tc.signErr) {
					t.Fatalf("sign err = %v, want %v", err, tc.signErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if err := signature.Verify(sm2Key.Cert, source, v); err != nil {
					t.Error(err)
				}
			}
			if len(f.calls) != 1 {
				t.Fatalf("%d KMS calls, want 1", len(f.calls))
			}
			in := f.calls[0]
			if in.MessageType != kmstypes.MessageTypeDigest || in.SigningAlgorithm != kmstypes.SigningAlgorithmSpecSm2dsa || len(in.Message) != 32 || *in.KeyId != "alias/ceb179-sign" {
				t.Errorf("sign input = %+v", in)
			}
		})
	}
}
