package config

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/metrics"
)

// Function is what the main of every Lambda function starts from: its
// logger, its settings and the AWS clients, read and built once per cold
// start.
type Function struct {
	// Name names the function in its metrics ("ingest", "assemble", ...).
	Name string
	// Log is the function's JSON logger (lambdacontext.NewLogger).
	Log *slog.Logger
	// Config holds the settings read from the environment.
	Config Config
	// Upload holds the optional upload settings; zero values mean the
	// defaults.
	Upload Upload
	// AWS holds the SDK configuration and clients.
	AWS *awsenv.Clients
	// Recorder, when set, is the function's metrics recorder (the local
	// stack keeps its components' recorders to read them); nil means one
	// writing to standard output.
	Recorder *metrics.Recorder
}

// LoadFunction reads the settings of the function name through getenv
// (os.Getenv when nil), checking that every variable in required is set,
// and builds the AWS clients from the process environment. The returned
// Function's Log is set even when the error is not nil, so that the
// caller can say why it cannot start.
func LoadFunction(ctx context.Context, getenv func(string) string, name string, required ...string) (Function, error) {
	f := Function{Name: name, Log: lambdacontext.NewLogger()}
	var err error
	if f.Config, err = FromEnv(getenv, required...); err != nil {
		return f, err
	}
	if f.Upload, err = UploadFromEnv(getenv); err != nil {
		return f, err
	}
	if f.AWS, err = awsenv.Load(ctx); err != nil {
		return f, err
	}
	return f, nil
}

// Metrics returns the function's metrics recorder: Recorder when set,
// else one writing the embedded metric format to standard output where
// CloudWatch picks it up.
func (f Function) Metrics() *metrics.Recorder {
	if f.Recorder != nil {
		return f.Recorder
	}
	return metrics.New(f.Name, os.Stdout)
}

// Exit logs err as the reason the function cannot start and ends the
// process with status 1, which Lambda reports as an init error. Only a
// main calls it, never a request path.
func (f Function) Exit(what string, err error) {
	f.Log.Error(what, slog.String("error", err.Error()))
	os.Exit(1)
}
