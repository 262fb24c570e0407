// Package secret is ceb179's adapter for values kept secret in AWS: a
// Secrets Manager secret or an SSM SecureString parameter, named by its
// ARN and read with a cache, so that a function reads it once per cache
// period and not once per invocation. The notify function keeps its robots'
// webhooks and signing secrets there.
package secret

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// DefaultTTL is how long a value read is used before it is read again.
const DefaultTTL = 5 * time.Minute

// Kind is where a secret lives.
type Kind string

// The kinds of secret an ARN can name.
const (
	// SecretsManager is a Secrets Manager secret (its SecretString).
	SecretsManager Kind = "secretsmanager"
	// Parameter is an SSM parameter, read with decryption (a SecureString).
	Parameter Kind = "ssm"
)

// ErrBadARN means the ARN names neither a Secrets Manager secret nor an
// SSM parameter.
var ErrBadARN = errors.New("secret: not the ARN of a Secrets Manager secret or an SSM parameter")

// ParseARN tells which kind of secret arn names, and the identifier to ask
// the service for: the ARN itself for Secrets Manager, the parameter's name
// (a leading "/" for a hierarchy) for SSM.
func ParseARN(arn string) (Kind, string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[3] == "" || parts[4] == "" {
		return "", "", fmt.Errorf("%w: %q", ErrBadARN, arn)
	}
	switch {
	case parts[2] == string(SecretsManager) && strings.HasPrefix(parts[5], "secret:") && len(parts[5]) > len("secret:"):
		return SecretsManager, arn, nil
	case parts[2] == string(Parameter) && strings.HasPrefix(parts[5], "parameter/") && len(parts[5]) > len("parameter/"):
		name := strings.TrimPrefix(parts[5], "parameter/")
		if strings.Contains(name, "/") {
			name = "/" + name
		}
		return Parameter, name, nil
	}
	return "", "", fmt.Errorf("%w: %q", ErrBadARN, arn)
}

// Reader reads one secret and keeps it for its TTL. It is safe for
// concurrent use.
type Reader struct {
	kind Kind
	id   string
	arn  string
	ttl  time.Duration
	now  func() time.Time
	sm   *secretsmanager.Client
	ps   *ssm.Client

	mu    sync.Mutex
	value []byte
	at    time.Time
}

// New returns a Reader of the secret at arn, through the Secrets Manager
// client sm or the SSM client ps (whichever the ARN needs), kept for ttl
// (DefaultTTL when zero).
func New(sm *secretsmanager.Client, ps *ssm.Client, arn string, ttl time.Duration) (*Reader, error) {
	kind, id, err := ParseARN(arn)
	if err != nil {
		return nil, err
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Reader{kind: kind, id: id, arn: arn, ttl: ttl, now: time.Now, sm: sm, ps: ps}, nil
}

// ARN returns the secret's ARN.
func (r *Reader) ARN() string { return r.arn }

// Read returns the secret's value: the one read less than the TTL ago, or
// a fresh one. When reading fails and an older value is at hand, Read
// returns that value with the error wrapped in a *StaleError, so that the
// caller can go on with what it had and still say so.
func (r *Reader) Read(ctx context.Context) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.value != nil && r.now().Sub(r.at) < r.ttl {
		return r.value, nil
	}
	v, err := r.fetch(ctx)
	if err != nil {
		if r.value != nil {
			return r.value, &StaleError{Since: r.at, Err: err}
		}
		return nil, err
	}
	r.value, r.at = v, r.now()
	return v, nil
}

// StaleError is returned with a value read earlier when reading it again
// failed.
type StaleError struct {
	// Since is when the value returned was read.
	Since time.Time
	// Err is why it could not be read again.
	Err error
}

// Error says that an older value is used and why.
func (e *StaleError) Error() string {
	return fmt.Sprintf("secret: using the value read at %s: %v", e.Since.Format(time.RFC3339), e.Err)
}

// Unwrap returns the read error.
func (e *StaleError) Unwrap() error { return e.Err }

func (r *Reader) fetch(ctx context.Context) ([]byte, error) {
	switch r.kind {
	case SecretsManager:
		out, err := r.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(r.id)})
		if err != nil {
			return nil, fmt.Errorf("read secret %s: %w", r.arn, err)
		}
		if out.SecretString != nil {
			return []byte(*out.SecretString), nil
		}
		if len(out.SecretBinary) > 0 {
			return out.SecretBinary, nil
		}
		return nil, fmt.Errorf("read secret %s: it holds no value", r.arn)
	default:
		out, err := r.ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(r.id), WithDecryption: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("read parameter %s: %w", r.arn, err)
		}
		if out.Parameter == nil || out.Parameter.Value == nil {
			return nil, fmt.Errorf("read parameter %s: it holds no value", r.arn)
		}
		return []byte(*out.Parameter.Value), nil
	}
}

// Put stores value as the Secrets Manager secret name, creating it or
// adding a new version, and returns its ARN. The local stack keeps the
// robots of --notify-config this way.
func Put(ctx context.Context, sm *secretsmanager.Client, name string, value []byte) (string, error) {
	out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(string(value))})
	if err == nil {
		return aws.ToString(out.ARN), nil
	}
	var exists *smtypes.ResourceExistsException
	if !errors.As(err, &exists) {
		return "", fmt.Errorf("create secret %s: %w", name, err)
	}
	put, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(string(value))})
	if err != nil {
		return "", fmt.Errorf("update secret %s: %w", name, err)
	}
	return aws.ToString(put.ARN), nil
}
