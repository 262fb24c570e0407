package secret_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/dev/awstest"
	"github.com/ceb179/ceb179/internal/secret"
)

func TestParseARN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		arn      string
		kind     secret.Kind
		id       string
		wantFail bool
	}{
		{"ok secrets manager", "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:ceb179/robots-AbCdEf", secret.SecretsManager,
			"arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:ceb179/robots-AbCdEf", false},
		{"ok ssm parameter in a hierarchy", "arn:aws:ssm:us-east-1:123456789012:parameter/ceb179/robots", secret.Parameter, "/ceb179/robots", false},
		{"ok ssm parameter at the top", "arn:aws:ssm:us-east-1:123456789012:parameter/robots", secret.Parameter, "robots", false},
		{"fail another service", "arn:aws:s3:::bucket/key", "", "", true},
		{"fail not an ARN", "none", "", "", true},
		{"fail secret without a name", "arn:aws:secretsmanager:us-east-1:123456789012:secret:", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, id, err := secret.ParseARN(tc.arn)
			if tc.wantFail {
				if !errors.Is(err, secret.ErrBadARN) {
					t.Fatalf("err = %v, want ErrBadARN", err)
				}
				return
			}
			if err != nil || kind != tc.kind || id != tc.id {
				t.Fatalf("ParseARN = %q %q %v, want %q %q", kind, id, err, tc.kind, tc.id)
			}
		})
	}
}

// TestReaderEmulator reads a Secrets Manager secret and an SSM SecureString
// through the SDK against the embedded emulator, and shows the cache: a
// changed value is read only after the TTL.
func TestReaderEmulator(t *testing.T) {
	t.Parallel()
	env := awstest.Start(t)
	ctx := t.Context()
	sm, ps := awsenv.NewSecretsManager(env.Config), awsenv.NewSSM(env.Config)
	name := env.Prefix + "robots"
	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(`{"robots":[1]}`)})
	if err != nil {
		t.Fatal(err)
	}
	param := "/" + env.Prefix + "/robots"
	if _, err := ps.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(param), Value: aws.String(`{"robots":[2]}`), Type: ssmtypes.ParameterTypeSecureString}); err != nil {
		t.Fatal(err)
	}
	got, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		arn    string
		want   string
		update func(context.Context, string) error
		after  string
	}{
		{"ok secrets manager secret", aws.ToString(created.ARN), `{"robots":[1]}`, func(ctx context.Context, v string) error {
			_, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: created.ARN, SecretString: aws.String(v)})
			return err
		}, `{"robots":[3]}`},
		{"ok ssm securestring", aws.ToString(got.Parameter.ARN), `{"robots":[2]}`, func(ctx context.Context, v string) error {
			_, err := ps.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(param), Value: aws.String(v), Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true)})
			return err
		}, `{"robots":[4]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := secret.New(sm, ps, tc.arn, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			clock := time.Now()
			secret.SetNow(r, func() time.Time { return clock })
			v, err := r.Read(ctx)
			if err != nil || string(v) != tc.want {
				t.Fatalf("Read = %q, %v; want %q", v, err, tc.want)
			}
			if err := tc.update(ctx, tc.after); err != nil {
				t.Fatal(err)
			}
			if v, _ := r.Read(ctx); string(v) != tc.want {
				t.Fatalf("within the TTL Read = %q, want the cached %q", v, tc.want)
			}
			clock = clock.Add(time.Hour)
			if v, err := r.Read(ctx); err != nil || string(v) != tc.after {
				t.Fatalf("after the TTL Read = %q, %v; want %q", v, err, tc.after)
			}
		})
	}
	t.Run("fail missing secret, stale value kept after a failure", func(t *testing.T) {
		r, err := secret.New(sm, ps, "arn:aws:secretsmanager:us-east-1:000000000000:secret:"+env.Prefix+"missing", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := r.Read(ctx); err == nil || v != nil {
			t.Fatalf("Read of a missing secret = %q, %v; want an error", v, err)
		}
		ok, err := secret.New(sm, ps, aws.ToString(created.ARN), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		clock := time.Now()
		secret.SetNow(ok, func() time.Time { return clock })
		first, err := ok.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: created.ARN, ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(2 * time.Minute)
		v, err := ok.Read(ctx)
		var stale *secret.StaleError
		if !errors.As(err, &stale) || string(v) != string(first) {
			t.Fatalf("Read after the secret vanished = %q, %v; want the old value and a StaleError", v, err)
		}
	})
}
