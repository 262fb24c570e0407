// Package awsenv builds the AWS SDK configuration and the clients of every
// AWS service ceb179 calls (DynamoDB, SQS, Lambda, hsmbridge's KMS and
// CloudWatch, and the notify function's Secrets Manager and SSM), from the
// process environment. The adapters call the services; only this package
// builds their clients.
//
// Build the clients once per process (a Lambda cold start, a daemon start)
// and share them; never per request. The endpoint comes from the standard SDK
// settings: AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_DYNAMODB, _SQS, _LAMBDA)
// points every client at an emulator such as the one internal/dev/awstest starts,
// or LocalStack, without any code here knowing about it.
package awsenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// EnvEmulator names the environment variable that, when set to "1", makes
// Load treat the configured endpoint as an emulator (see WithEmulator).
// Load also does so on its own when AWS_ENDPOINT_URL points at a loopback
// address.
const EnvEmulator = "CEB179_AWS_EMULATOR"

// Clients holds the SDK configuration and one client per AWS service that
// ceb179 calls. All fields are safe for concurrent use.
type Clients struct {
	// Config is the resolved SDK configuration the clients were built from.
	Config aws.Config
	// DynamoDB is the DynamoDB client.
	DynamoDB *dynamodb.Client
	// SQS is the SQS client.
	SQS *sqs.Client
	// Lambda is the Lambda client.
	Lambda *lambda.Client
}

// settings collects what the options of this package choose.
type settings struct {
	emulator    bool
	loadOptions []func(*config.LoadOptions) error
}

// Option adjusts how Load and the client constructors build configuration
// and clients.
type Option func(*settings)

// WithEmulator marks the endpoint as an emulator. Emulators do not compute
// the response checksums that AWS sends (DynamoDB's X-Amz-Crc32), so the
// clients built with this option do not validate them.
func WithEmulator() Option {
	return func(s *settings) { s.emulator = true }
}

// WithLoadOptions passes extra options to config.LoadDefaultConfig, for
// example a fixed region or static credentials.
func WithLoadOptions(opts ...func(*config.LoadOptions) error) Option {
	return func(s *settings) { s.loadOptions = append(s.loadOptions, opts...) }
}

// WithRegion fixes the region; an empty region leaves the environment's.
func WithRegion(region string) Option {
	return func(s *settings) {
		if region != "" {
			s.loadOptions = append(s.loadOptions, config.WithRegion(region))
		}
	}
}

// WithEmulatorAt points the clients at the emulator listening at endpoint,
// in region, with the fixed credentials an emulator accepts (the state a
// development stack publishes), whatever the environment says.
func WithEmulatorAt(region, endpoint string) Option {
	return func(s *settings) {
		s.emulator = true
		s.loadOptions = append(s.loadOptions,
			config.WithRegion(region),
			config.WithBaseEndpoint(endpoint),
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
}

// Load resolves the SDK configuration from the environment (region,
// credentials, AWS_ENDPOINT_URL) and builds the clients. It treats the
// endpoint as an emulator when WithEmulator is given, when the environment
// variable named by EnvEmulator is "1", or when AWS_ENDPOINT_URL names a
// loopback host.
func Load(ctx context.Context, opts ...Option) (*Clients, error) {
	var s settings
	for _, o := range opts {
		o(&s)
	}
	cfg, err := config.LoadDefaultConfig(ctx, s.loadOptions...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if os.Getenv(EnvEmulator) == "1" || IsLoopbackEndpoint(aws.ToString(cfg.BaseEndpoint)) {
		opts = append(opts, WithEmulator())
	}
	return New(cfg, opts...), nil
}

// New builds the clients from an already resolved configuration.
func New(cfg aws.Config, opts ...Option) *Clients {
	return &Clients{
		Config:   cfg,
		DynamoDB: NewDynamoDB(cfg, opts...),
		SQS:      NewSQS(cfg, opts...),
		Lambda:   NewLambda(cfg, opts...),
	}
}

// NewDynamoDB builds a DynamoDB client from cfg.
func NewDynamoDB(cfg aws.Config, opts ...Option) *dynamodb.Client {
	s := apply(opts)
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if s.emulator {
			o.DisableValidateResponseChecksum = true
		}
	})
}

// NewSQS builds an SQS client from cfg. Message MD5 checksums stay
// validated: every emulator ceb179 supports computes them.
func NewSQS(cfg aws.Config, opts ...Option) *sqs.Client {
	apply(opts)
	return sqs.NewFromConfig(cfg)
}

// NewLambda builds a Lambda client from cfg.
func NewLambda(cfg aws.Config, opts ...Option) *lambda.Client {
	apply(opts)
	return lambda.NewFromConfig(cfg)
}

// NewKMS builds a KMS client from cfg (hsmbridge's KMS signers).
func NewKMS(cfg aws.Config) *kms.Client { return kms.NewFromConfig(cfg) }

// NewCloudWatch builds a CloudWatch client from cfg (hsmbridge's heartbeat).
func NewCloudWatch(cfg aws.Config) *cloudwatch.Client { return cloudwatch.NewFromConfig(cfg) }

// NewSecretsManager builds a Secrets Manager client from cfg (the notify
// function's robot secret).
func NewSecretsManager(cfg aws.Config) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(cfg)
}

// NewSSM builds a Systems Manager client from cfg (the robot secret kept as
// an SSM SecureString).
func NewSSM(cfg aws.Config) *ssm.Client { return ssm.NewFromConfig(cfg) }

// IsLoopbackEndpoint reports whether endpoint is a URL whose host is a
// loopback address or "localhost".
func IsLoopbackEndpoint(endpoint string) bool {
	if endpoint == "" {
		return false
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// apply folds opts into settings.
func apply(opts []Option) settings {
	var s settings
	for _, o := range opts {
		o(&s)
	}
	return s
}
