// Package wiring builds each Lambda function from its configuration: the
// adapters over the configured endpoints, the settings, and the handler
// that lambda.Start runs. It is the one wiring: functions/*/main.go call
// it after config.LoadFunction, and the local stack (internal/dev/devstack)
// calls it with the emulator's clients and its own endpoints, so that the
// product tried locally is wired the way it is deployed. Each constructor
// also returns the Settings it applied, which a test compares between the
// two.
package wiring

import (
	"cmp"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/assemble"
	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/customsapi"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/ingest"
	"github.com/ceb179/ceb179/internal/notify"
	"github.com/ceb179/ceb179/internal/paymentsapi"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/secret"
	"github.com/ceb179/ceb179/internal/settle"
	"github.com/ceb179/ceb179/internal/upload"
	"github.com/ceb179/ceb179/records"
)

// CertTTL is how long the upload function uses a registered certificate
// before it reads it again.
const CertTTL = 5 * time.Minute

// Settings are what a function was built with beyond its endpoints (table
// names, queue URLs, the customs URL, the AWS clients): what the deployed
// function and the local stack must share. A field a function does not use
// stays zero.
type Settings struct {
	// Function names the function.
	Function string
	// Retention is how long the store keeps what it writes.
	Retention time.Duration
	// Window is the time customs allows for an upload.
	Window time.Duration
	// DailyCap and Allowlist are ingest's.
	DailyCap  int
	Allowlist []netip.Prefix
	// CertTTL, Policy, CustomsTimeout and CustomsCAFile are the upload
	// function's (CustomsTimeout zero: customsapi's default).
	CertTTL        time.Duration
	Policy         upload.Policy
	CustomsTimeout time.Duration
	CustomsCAFile  string
	// GiveUp, Grace, StuckAfter and MissingGrace are the settler's;
	// Missing says whether it runs the Missing pass.
	GiveUp, Grace, StuckAfter, MissingGrace time.Duration
	Missing                                 bool
	// SecretTTL and DocsBaseURL are the notify function's (SecretTTL zero:
	// no robot secret).
	SecretTTL   time.Duration
	DocsBaseURL string
}

// Option changes what a constructor builds, for the local stack's fault
// drills only; the mains pass none.
type Option func(*options)

type options struct {
	uploadStore func(upload.Store) upload.Store
	ingestQueue func(ingest.Sender) ingest.Sender
}

// WithUploadStore wraps the table store the upload function writes through.
func WithUploadStore(wrap func(upload.Store) upload.Store) Option {
	return func(o *options) { o.uploadStore = wrap }
}

// WithIngestQueue wraps the assemble queue as ingest sends to it.
func WithIngestQueue(wrap func(ingest.Sender) ingest.Sender) Option {
	return func(o *options) { o.ingestQueue = wrap }
}

func apply(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Store returns the DynamoDB store over fn's tables.
func Store(fn config.Function) *dynamo.Store {
	return dynamo.New(fn.AWS.DynamoDB, dynamo.Tables{Requests: fn.Config.RequestsTable, Payments: fn.Config.PaymentsTable}, fn.Config.Retention)
}

func queueOf(c *awsenv.Clients, url string) *queue.Queue { return queue.New(c.SQS, url) }

// settings starts the Settings of fn.
func settings(fn config.Function, store *dynamo.Store) Settings {
	return Settings{Function: fn.Name, Retention: store.Retention(), Window: cmp.Or(fn.Config.Window, ceb179.Window)}
}

// Ingest returns the ingest handler (platDataOpen) of fn.
func Ingest(fn config.Function, opts ...Option) (*ingest.Handler, Settings) {
	o := apply(opts)
	store := Store(fn)
	st := settings(fn, store)
	st.DailyCap = cmp.Or(fn.Config.OrderDailyCap, ceb179.DefaultDailyCap)
	st.Allowlist = fn.Config.SourceAllowlist
	var q ingest.Sender = queueOf(fn.AWS, fn.Config.AssembleQueueURL)
	if o.ingestQueue != nil {
		q = o.ingestQueue(q)
	}
	h := ingest.New(store, q, ingest.WithLogger(fn.Log), ingest.WithMetrics(fn.Metrics()), ingest.WithWindow(st.Window),
		ingest.WithDailyCap(store, st.DailyCap), ingest.WithAllowlist(st.Allowlist))
	return h, st
}

// Assemble returns the assemble handler of fn.
func Assemble(fn config.Function) (*assemble.Handler, Settings) {
	store := Store(fn)
	h := assemble.New(store, store, queueOf(fn.AWS, fn.Config.SignQueueURL),
		assemble.WithVisibility(queueOf(fn.AWS, fn.Config.AssembleQueueURL)),
		assemble.WithLogger(fn.Log), assemble.WithMetrics(fn.Metrics()))
	return h, settings(fn, store)
}

// Upload returns the upload handler of fn: the customs client, the
// certificate cache and the upload policy.
func Upload(fn config.Function, opts ...Option) (*upload.Handler, Settings, error) {
	o := apply(opts)
	store := Store(fn)
	st := settings(fn, store)
	st.CertTTL, st.CustomsTimeout, st.CustomsCAFile = CertTTL, fn.Upload.Timeout, fn.Upload.CAFile
	copts := []customsapi.Option{customsapi.WithCAFile(st.CustomsCAFile)}
	if st.CustomsTimeout > 0 {
		copts = append(copts, customsapi.WithTimeout(st.CustomsTimeout))
	}
	customs, err := customsapi.New(fn.Config.CustomsUploadURL, copts...)
	if err != nil {
		return nil, st, fmt.Errorf("customs client: %w", err)
	}
	st.Policy = upload.DefaultPolicy()
	st.Policy.GiveUpAfter = cmp.Or(fn.Upload.GiveUpAfter, ceb179.GiveUpAfter)
	if fn.Upload.LatePace > 0 {
		st.Policy.SlowInterval, st.Policy.SlowIntervalMax = fn.Upload.LatePace, fn.Upload.LatePace
	}
	var us upload.Store = store
	if o.uploadStore != nil {
		us = o.uploadStore(us)
	}
	h := upload.New(us, upload.NewCertCache(store, st.CertTTL), customs,
		upload.WithPolicy(st.Policy), upload.WithLogger(fn.Log), upload.WithMetrics(fn.Metrics()))
	return h, st, nil
}

// Settle returns the settler of fn and its Missing pass (nil without a
// payments table). Its give-up window is the upload function's
// (UPLOAD_GIVE_UP_MINUTES); a window shorter than customs' (the local
// stack's time-compressed runs) shortens its grace and stuck times with it.
func Settle(fn config.Function) (*settle.Settler, *settle.Missing, Settings) {
	store := Store(fn)
	st := settings(fn, store)
	st.GiveUp = cmp.Or(fn.Upload.GiveUpAfter, ceb179.GiveUpAfter)
	st.Grace, st.StuckAfter = settle.DefaultGrace, settle.DefaultStuckAfter
	if st.Window < ceb179.Window {
		st.Grace, st.StuckAfter = min(st.Grace, st.Window/4), min(st.StuckAfter, st.Window)
	}
	rec := fn.Metrics()
	opts := []settle.Option{settle.WithLogger(fn.Log), settle.WithMetrics(rec), settle.WithWindow(st.Window),
		settle.WithGiveUp(st.GiveUp), settle.WithTimes(st.Grace, st.StuckAfter)}
	var missing *settle.Missing
	if fn.Config.PaymentsTable != "" {
		st.Missing, st.MissingGrace = true, cmp.Or(fn.Config.MissingGrace, settle.DefaultMissingGrace)
		missing = settle.NewMissing(store, fn.Log, rec, settle.WithGrace(st.MissingGrace))
		opts = append(opts, settle.WithMissing(missing))
	}
	s := settle.New(store, queueOf(fn.AWS, fn.Config.AssembleQueueURL), queueOf(fn.AWS, fn.Config.SignQueueURL),
		queueOf(fn.AWS, fn.Config.SignDLQURL), opts...)
	return s, missing, st
}

// Notify returns the notify function of fn, reading the robots from the
// secret nc names (none: no robots).
func Notify(fn config.Function, nc config.Notify) (*notify.Notifier, Settings, error) {
	st := Settings{Function: fn.Name, DocsBaseURL: cmp.Or(nc.DocsBaseURL, notify.DefaultDocsBaseURL)}
	var src notify.ConfigSource = notify.NoRobots
	if nc.SecretARN != "" {
		st.SecretTTL = secret.DefaultTTL
		r, err := secret.New(awsenv.NewSecretsManager(fn.AWS.Config), awsenv.NewSSM(fn.AWS.Config), nc.SecretARN, st.SecretTTL)
		if err != nil {
			return nil, st, fmt.Errorf("robot secret: %w", err)
		}
		src = r
	}
	n := notify.New(src, notify.WithDocsBaseURL(st.DocsBaseURL), notify.WithSignDeadLetters(queueOf(fn.AWS, fn.Config.SignDLQURL)),
		notify.WithLogger(fn.Log), notify.WithMetrics(fn.Metrics()))
	return n, st, nil
}

// Payments returns the payments API (POST /payments, POST /orders) of fn.
func Payments(fn config.Function) (http.Handler, Settings) {
	store := Store(fn)
	return paymentsapi.NewHandler(records.NewRecorder(store), store, fn.Log), settings(fn, store)
}
