// Package devstack runs the whole ceb179 pipeline on one machine, with no
// AWS account and nothing installed: an embedded AWS emulator provisioned
// from template.yaml, the ingest handler on a local listener, assemble and
// upload fed by local event source mappings, hsmbridge with key-file
// signers, and the customs simulator as the default customs endpoint. It is
// what `ceb179 local` runs, what the end-to-end tests drive, and what the
// bench measures.
package devstack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/infra"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/dev/alarmeval"
	"github.com/ceb179/ceb179/internal/dev/customssim"
	"github.com/ceb179/ceb179/internal/dev/devcert"
	"github.com/ceb179/ceb179/internal/dev/emulator"
	"github.com/ceb179/ceb179/internal/dev/eventsource"
	"github.com/ceb179/ceb179/internal/dev/localalarm"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/ingest"
	"github.com/ceb179/ceb179/internal/loopback"
	"github.com/ceb179/ceb179/internal/metrics"
	"github.com/ceb179/ceb179/internal/ops"
	"github.com/ceb179/ceb179/internal/paymentsapi"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/settle"
	"github.com/ceb179/ceb179/internal/signer"
	"github.com/ceb179/ceb179/internal/statuspage"
	"github.com/ceb179/ceb179/internal/upload"
	"github.com/ceb179/ceb179/internal/wiring"
)

// DefaultListen is where the local stack serves platDataOpen.
const DefaultListen = "127.0.0.1:8080"

// DemoEbpCode is the platform code of the demo records and of the
// development certificate.
const DemoEbpCode = "46016602EV"

// Region is the region the local clients use.
const Region = emulator.Region

// Prefix names the local stack's tables and queues.
const Prefix = "ceb179-local-"

// Options configures a local stack. The zero value runs the demo.
type Options struct {
	// Listen is the address of platDataOpen and /healthz (DefaultListen when empty).
	Listen string
	// DataDir holds the development key pair and the published stack file
	// (DefaultDir when empty).
	DataDir string
	// SignerKey and SignerCert are a key file and its certificate to sign
	// with instead of the development pair.
	SignerKey, SignerCert string
	// EbpCode is the platform code the signing certificate is registered
	// for (DemoEbpCode when empty).
	EbpCode string
	// NoDemo skips seeding the demo payment records.
	NoDemo bool
	// CustomsUploadURL sends uploads there instead of to the embedded
	// customs simulator.
	CustomsUploadURL string
	// CustomsCAFile is an extra CA bundle (PEM) to trust for
	// CustomsUploadURL, as CUSTOMS_CA_FILE is for the upload function;
	// TLS verification cannot be turned off.
	CustomsCAFile string
	// BridgeConfig, when set, gives hsmbridge the signers of that
	// configuration (E-Port card, PKCS#11, key file, KMS) with its
	// timeouts and scheduling options, instead of key-file signers; each
	// signer's certificate is registered for its ebpCode when it opens.
	// SignerKey, SignerCert, Signers and SignRate do not apply. EbpCode
	// defaults to the first signer's.
	BridgeConfig *bridge.Config
	// Signers is how many signers sign with the key (default 1).
	Signers int
	// SignRate limits each signer to this many signatures per minute, like
	// an E-Port card (250); zero signs as fast as the machine can.
	SignRate float64
	// Prefix names the tables and queues (the package's Prefix when empty).
	Prefix string
	// Window is how long after a request its upload is due (two minutes
	// when zero). Tests and time-compressed benchmarks shorten it.
	Window time.Duration
	// GiveUp is how long after its deadline a request is still worked on
	// (ceb179.GiveUpAfter when zero), by upload and the settler alike, as
	// UPLOAD_GIVE_UP_MINUTES sets it for both functions.
	GiveUp time.Duration
	// LatePace is the least time between late posts (upload's default
	// pacing when zero). Time-compressed drills shorten it.
	LatePace time.Duration
	// SettleEvery is how often the settler runs (settle.DefaultInterval
	// when zero; negative: never, tests call Settle themselves).
	SettleEvery time.Duration
	// MissingGrace is how long a declared order may wait for its payment
	// record before the settler counts it missing
	// (settle.DefaultMissingGrace when zero).
	MissingGrace time.Duration
	// Allowlist, when set, answers platDataOpen only for callers inside it
	// (CUSTOMS_SOURCE_CIDRS); they are never capped.
	Allowlist []netip.Prefix
	// SignVisibility is the bridge's visibility timeout and retry delay on
	// the sign queue (60 s and 2 s when zero): how soon a job held by a
	// stopped bridge, or handed back, comes again.
	SignVisibility time.Duration
	// KeptState says the emulator keeps its state across restarts
	// (`ceb179 local --data`): on start the stack queues again the work of
	// every request not final, whose messages in flight the emulator
	// forgot (Stack.Requeued).
	KeptState bool
	// Faults lets fault drills break components on purpose.
	Faults Faults
	// Notify, when set, is a robot configuration (as the NotifySecretArn
	// secret holds it): the stack then raises template.yaml's alarms and
	// posts them to those robots the way the notify function does.
	Notify []byte
	// AlarmEvery is how often the local alarms are evaluated (10 s when
	// zero).
	AlarmEvery time.Duration
	// Journey, when set, receives one line per request event as it happens.
	Journey io.Writer
	// Log receives the components' JSON logs (discarded when nil).
	Log io.Writer
}

// Faults break components of the stack on purpose, for fault drills. Each
// is optional.
type Faults struct {
	// Customs wraps the customs simulator's handler (answer 5xx, count).
	Customs func(http.Handler) http.Handler
	// UploadStore wraps the table store of the upload function.
	UploadStore func(upload.Store) upload.Store
	// IngestQueue wraps the assemble queue as ingest sends to it.
	IngestQueue func(ingest.Sender) ingest.Sender
	// SignerDown, while it returns true, makes the signers fail to open
	// (no card in the reader).
	SignerDown func() bool
}

// Stack is a running local pipeline.
type Stack struct {
	// URL is the base URL of the local listener (http://127.0.0.1:8080).
	URL string
	// Endpoint is the AWS emulator's URL.
	Endpoint string
	// Sim is the embedded customs simulator (nil with CustomsUploadURL).
	Sim *customssim.Sim
	// SimURL is the simulator's realTimeDataUpload URL ("" with CustomsUploadURL).
	SimURL string
	// CustomsUploadURL is where uploads go.
	CustomsUploadURL string
	// Store reads and writes the local tables.
	Store *dynamo.Store
	// Published is what the stack published for other commands.
	Published Published
	// CertNo is the certNo of the signing certificate ("" with a bridge
	// configuration: see Signers).
	CertNo string
	// Signers are hsmbridge's signers as they were at start.
	Signers []SignerInfo
	// BridgeStatusURL is hsmbridge's status endpoint, when it serves one.
	BridgeStatusURL string
	// PINMarkers is the folder of the PIN markers hsmbridge's signers
	// share with every hsmbridge on this machine ("" when none of them
	// sends a PIN).
	PINMarkers string
	// EbpCode is the platform code the certificate is registered for.
	EbpCode string
	// DemoOrders are the orders of the seeded demo records.
	DemoOrders []string
	// Metrics of the components, by component name.
	Metrics map[string]*metrics.Recorder
	// Settler settles stranded requests (run every SettleEvery).
	Settler *settle.Settler
	// Missing is the settler's Missing pass over the declared orders.
	Missing *settle.Missing
	// NotifySecretARN is the emulator's secret holding the robots (with
	// Options.Notify).
	NotifySecretARN string
	// Functions are the settings each function was built with, by
	// function name: the production wiring's (package wiring), from the
	// configuration Config returns.
	Functions map[string]wiring.Settings
	// Alarms are the alarms evaluated locally, and AlarmsSkipped the
	// logical IDs of those the local stack has no data for (with
	// Options.Notify).
	Alarms        []alarmeval.Alarm
	AlarmsSkipped []string
	// Requeued counts the requests not final queued again at start
	// (Options.KeptState).
	Requeued int

	journey    *journey
	fn         config.Function // every function's configuration but its name, log and metrics
	alarms     map[string]*localalarm.Alarm
	log        *slog.Logger
	aws        *infra.Stack
	tables     dynamo.Tables
	assembleQ  *queue.Queue
	signQ      *queue.Queue
	bridgeOpts bridge.Options
	bridgeMu   sync.Mutex
	bridge     *bridge.Bridge
	bridgeStop context.CancelFunc
	bridgeDone chan struct{}
	runCtx     context.Context
	servers    []*http.Server
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	errs       chan error
	dataDir    string
	closed     sync.Once

	alarmMetrics *alarmeval.Metrics // nil without Options.Notify
	pinGuard     *signer.PINGuard   // the bridge configuration's, for the heartbeat
}

// Start brings the whole pipeline up and returns once GET /healthz would
// answer 200. Stop it with Close.
func Start(ctx context.Context, o Options) (*Stack, error) {
	o = o.withDefaults()
	logOut := o.Log
	if logOut == nil {
		logOut = io.Discard
	}
	log := slog.New(slog.NewJSONHandler(logOut, nil))
	sg, err := newSigning(o, log)
	if err != nil {
		return nil, err
	}
	conn := emulator.Connect()

	s := &Stack{
		Endpoint:  conn.Endpoint,
		EbpCode:   o.EbpCode,
		Metrics:   map[string]*metrics.Recorder{},
		Functions: map[string]wiring.Settings{},
		errs:      make(chan error, 8),
		dataDir:   o.DataDir,
		log:       log,
	}
	if o.Notify != nil {
		s.alarmMetrics = alarmeval.NewMetrics()
	}
	if o.BridgeConfig != nil && o.BridgeConfig.SendsPINs() {
		// The guard the signers use (over the machine's PIN markers): the
		// heartbeat counts its refused and struck PINs.
		g, _, err := o.BridgeConfig.PINGuard()
		if err != nil {
			return nil, fmt.Errorf("local: PIN markers: %w", err)
		}
		s.pinGuard = g
	}
	if sg.pair != nil {
		s.CertNo = sg.pair.CertNo()
	}
	s.runCtx, s.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	if err := s.startCustoms(o); err != nil {
		return nil, err
	}
	pctx, pcancel := context.WithTimeout(ctx, time.Minute)
	defer pcancel()
	if err := s.provision(pctx, conn, o, sg); err != nil {
		return nil, err
	}
	if err := s.loadAlarms(); err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	if o.Notify != nil {
		if err := s.startNotify(pctx, conn, o); err != nil {
			return nil, err
		}
	}
	s.startAssemble()
	up, err := s.newUpload(o)
	if err != nil {
		return nil, err
	}
	if o.KeptState {
		st := s.Functions["upload"]
		if s.Requeued, err = s.requeueOpen(ctx, st.Window, st.Policy.GiveUpAfter); err != nil {
			return nil, err
		}
	}
	if err := s.startSigning(ctx, conn, sg, up); err != nil {
		return nil, err
	}
	s.startSettler(o)
	if err := s.serveFront(o); err != nil {
		return nil, err
	}
	if err := s.publish(o); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// withDefaults fills in the options left empty.
func (o Options) withDefaults() Options {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.DataDir == "" {
		o.DataDir = DefaultDir
	}
	if o.EbpCode == "" {
		o.EbpCode = cmp.Or(bridgeEbpCode(o.BridgeConfig), DemoEbpCode)
	}
	if o.Signers <= 0 {
		o.Signers = 1
	}
	if o.Prefix == "" {
		o.Prefix = Prefix
	}
	return o
}

// startCustoms serves the embedded customs simulator, unless uploads go to
// a customs endpoint given in the options.
func (s *Stack) startCustoms(o Options) error {
	s.CustomsUploadURL = o.CustomsUploadURL
	if s.CustomsUploadURL != "" {
		return nil
	}
	s.Sim = customssim.New(customssim.WithLogger(s.log.With("component", "customs-sim")))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("local: customs simulator: %w", err)
	}
	var h http.Handler = s.Sim
	if o.Faults.Customs != nil {
		h = o.Faults.Customs(h)
	}
	s.serve(ln, h)
	s.SimURL = "http://" + ln.Addr().String() + customssim.UploadPath
	s.CustomsUploadURL = s.SimURL
	return nil
}

// provision creates the tables and queues of template.yaml on the
// emulator, registers the signing certificate and seeds the demo records.
func (s *Stack) provision(ctx context.Context, conn *emulator.Conn, o Options, sg *signing) error {
	stack, err := conn.Provision(ctx, o.Prefix, map[string]string{"CustomsUploadUrl": s.CustomsUploadURL})
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	s.aws = stack
	s.tables = dynamo.Tables{Requests: stack.Tables["RequestsTable"], Payments: stack.Tables["PaymentsTable"]}
	s.fn = Config(conn, stack, s.CustomsUploadURL, o)
	s.Store = wiring.Store(s.fn)
	s.assembleQ = queue.New(conn.Clients.SQS, stack.Queues["AssembleQueue"])
	s.signQ = queue.New(conn.Clients.SQS, stack.Queues["SignQueue"])

	if err := sg.start(ctx, o.EbpCode, s.registerCert); err != nil {
		return fmt.Errorf("local: register certificate: %w", err)
	}
	if !o.NoDemo {
		if s.DemoOrders, err = seedDemo(ctx, s.Store, o.EbpCode); err != nil {
			return err
		}
	}
	s.journey = newJourney(o.Journey, s.Store, cmp.Or(o.Window, ceb179.Window))
	s.Metrics["customs"] = metrics.New("customs", s.metricsOut())
	return nil
}

// Config returns the configuration the local stack gives its functions:
// the template's tables and queues as provisioned on the emulator, its
// clients, the customs endpoint, and the options' settings where the
// deployed functions read them from their environment. Only the endpoints
// differ from a deployment; Window and LatePace compress time.
func Config(conn *emulator.Conn, stack *infra.Stack, customsUploadURL string, o Options) config.Function {
	return config.Function{
		AWS: conn.Clients,
		Config: config.Config{
			RequestsTable:    stack.Tables["RequestsTable"],
			PaymentsTable:    stack.Tables["PaymentsTable"],
			AssembleQueueURL: stack.Queues["AssembleQueue"],
			SignQueueURL:     stack.Queues["SignQueue"],
			SignDLQURL:       stack.Queues["SignDeadLetterQueue"],
			CustomsUploadURL: customsUploadURL,
			SourceAllowlist:  o.Allowlist,
			MissingGrace:     o.MissingGrace,
			Window:           o.Window,
		},
		Upload: config.Upload{CAFile: o.CustomsCAFile, GiveUpAfter: o.GiveUp, LatePace: o.LatePace},
	}
}

// function returns the configuration of the function name, with its
// component logger and the stack's recorder of its metrics.
func (s *Stack) function(name string) config.Function {
	fn := s.fn
	fn.Name, fn.Log = name, s.log.With("component", name)
	if s.Metrics[name] == nil {
		s.Metrics[name] = metrics.New(name, s.metricsOut())
	}
	fn.Recorder = s.Metrics[name]
	return fn
}

// startAssemble runs assemble, fed like Lambda's event source mapping
// would feed it.
func (s *Stack) startAssemble() {
	asm, st := wiring.Assemble(s.function("assemble"))
	s.Functions["assemble"] = st
	s.run(s.runCtx, (&eventsource.Poller{
		Queue: s.assembleQ, ARN: s.aws.QueueARNs["AssembleQueue"], Region: Region, Handler: asm.Handle,
		ReportBatchItemFailures: true, Wait: 2 * time.Second, Concurrency: eventsource.DefaultConcurrency, Timeout: 60 * time.Second,
		Logger: s.log.With("component", "assemble-events"), Finish: true,
	}).Run)
}

// newUpload builds the upload handler the bridge calls in-process.
func (s *Stack) newUpload(o Options) (*upload.Handler, error) {
	var opts []wiring.Option
	if o.Faults.UploadStore != nil {
		opts = append(opts, wiring.WithUploadStore(o.Faults.UploadStore))
	}
	up, st, err := wiring.Upload(s.function("upload"), opts...)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	s.Functions["upload"] = st
	return up, nil
}

// startSigning starts hsmbridge with key-file signers, or those of a
// configuration file, calling upload in-process, and waits for its signers
// to open.
func (s *Stack) startSigning(ctx context.Context, conn *emulator.Conn, sg *signing, up *upload.Handler) error {
	s.bridgeOpts = sg.options(queue.New(conn.Clients.SQS, s.aws.Queues["SignQueue"]), invoker{h: up}, s.log.With("component", "hsmbridge"))
	if err := s.StartBridge(); err != nil {
		return err
	}
	var err error
	s.PINMarkers = sg.pinMarkers
	if s.Signers, s.BridgeStatusURL, err = sg.await(ctx, 2*cmp.Or(s.bridgeOpts.SignTimeout, 15*time.Second)+5*time.Second, s.bridgeDone); err != nil {
		return fmt.Errorf("local: hsmbridge: %w", errors.Join(err, s.firstErr()))
	}
	return nil
}

// serveFront serves platDataOpen, /healthz and the status page on the
// listen address.
func (s *Stack) serveFront(o Options) error {
	var opts []wiring.Option
	if o.Faults.IngestQueue != nil {
		opts = append(opts, wiring.WithIngestQueue(o.Faults.IngestQueue))
	}
	ing, st := wiring.Ingest(s.function("ingest"), opts...)
	s.Functions["ingest"] = st
	mux := http.NewServeMux()
	mux.Handle(ingest.Path, s.journey.wrap(ing))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	statuspage.New(ops.New(s.Store, s.assembleQ, ops.WithMissing(s.Missing.Open)), statuspage.WithSigner(s.BridgeStatus),
		statuspage.WithLogger(s.log.With("component", "statuspage"))).Mount(mux)
	// The payments API, without IAM in front of it: loopback callers only.
	payments, pst := wiring.Payments(s.function("payments"))
	s.Functions["payments"] = pst
	api := loopback.Only(payments)
	mux.Handle(paymentsapi.PaymentsPath, api)
	mux.Handle(paymentsapi.OrdersPath, api)
	mux.Handle("/", ing) // its own 404/405 answers, in customs' format
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("local: listen on %s: %w", o.Listen, err)
	}
	s.serve(ln, mux)
	s.URL = "http://" + ln.Addr().String()
	if o.Journey != nil {
		s.run(s.runCtx, s.journey.watch)
	}
	return nil
}

// startSettler runs the settler, as the schedule runs it every minute in
// AWS.
func (s *Stack) startSettler(o Options) {
	var st wiring.Settings
	s.Settler, s.Missing, st = wiring.Settle(s.function("settle"))
	s.Functions["settle"] = st
	if o.SettleEvery >= 0 {
		s.run(s.runCtx, func(ctx context.Context) error {
			return s.settleLoop(ctx, cmp.Or(o.SettleEvery, settle.DefaultInterval))
		})
	}
}

// publish writes the state file other commands find the stack by.
func (s *Stack) publish(o Options) error {
	s.Published = Published{
		Version:         StateVersion,
		Endpoint:        s.Endpoint,
		Region:          Region,
		Tables:          PublishedTables{Requests: s.tables.Requests, Payments: s.tables.Payments},
		Queues:          PublishedQueues{Assemble: s.assembleQ.URL(), Sign: s.signQ.URL()},
		PlatDataOpenURL: s.URL + ingest.Path,
		PaymentsURL:     s.URL + paymentsapi.PaymentsPath,
		PID:             os.Getpid(),
		StartedAt:       time.Now(),
		NotifySecretARN: s.NotifySecretARN,
	}
	if err := WriteState(o.DataDir, s.Published); err != nil {
		return fmt.Errorf("local: publish stack: %w", err)
	}
	return nil
}

// StartBridge starts hsmbridge (Start does; use it after StopBridge).
func (s *Stack) StartBridge() error {
	s.bridgeMu.Lock()
	defer s.bridgeMu.Unlock()
	if s.bridgeStop != nil {
		return errors.New("local: hsmbridge is already running")
	}
	b, err := bridge.New(s.bridgeOpts)
	if err != nil {
		return fmt.Errorf("local: hsmbridge: %w", err)
	}
	ctx, stop := context.WithCancel(s.runCtx)
	done := make(chan struct{})
	s.bridgeStop, s.bridgeDone, s.bridge = stop, done, b
	s.runHeartbeat(ctx, b)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		if err := b.Run(ctx); err != nil && ctx.Err() == nil {
			select {
			case s.errs <- err:
			default:
			}
		}
	}()
	return nil
}

// StopBridge stops hsmbridge abruptly, as a crash or a power cut of the
// card's PC would: jobs it held in memory go back to the sign queue after
// their visibility timeout.
func (s *Stack) StopBridge() {
	s.bridgeMu.Lock()
	defer s.bridgeMu.Unlock()
	if s.bridgeStop == nil {
		return
	}
	s.bridgeStop()
	<-s.bridgeDone
	s.bridgeStop, s.bridgeDone, s.bridge = nil, nil, nil
}

// BridgeStatus returns hsmbridge's status, or nil while it is stopped.
func (s *Stack) BridgeStatus(context.Context) (*ceb179.SignerHealth, error) {
	s.bridgeMu.Lock()
	b := s.bridge
	s.bridgeMu.Unlock()
	if b == nil {
		return nil, errors.New("local: hsmbridge is stopped")
	}
	st := b.Status()
	return &st, nil
}

// BridgeSignatures returns the signatures hsmbridge's signer name made
// after the one numbered after (bridge.Bridge.Signatures), or nil while
// hsmbridge is stopped.
func (s *Stack) BridgeSignatures(name string, after int64) []bridge.Signature {
	s.bridgeMu.Lock()
	b := s.bridge
	s.bridgeMu.Unlock()
	if b == nil {
		return nil
	}
	return b.Signatures(name, after)
}

// Err returns a channel that receives the first failure of a component.
func (s *Stack) Err() <-chan error { return s.errs }

// Summary returns the counts of the requests this stack received.
func (s *Stack) Summary() Summary { return s.journey.summary() }

// Close stops every component and removes the published stack file. It is
// safe to call more than once.
func (s *Stack) Close() error {
	s.closed.Do(func() {
		for _, srv := range s.servers {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = srv.Shutdown(ctx)
			cancel()
		}
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
		_ = RemoveState(s.dataDir)
	})
	return nil
}

// metricsOut is where the components write their metric lines: the local
// alarms' store when the stack raises alarms, nowhere otherwise.
func (s *Stack) metricsOut() io.Writer {
	if s.alarmMetrics == nil {
		return nil
	}
	return s.alarmMetrics
}

// run starts a component that runs until ctx ends.
func (s *Stack) run(ctx context.Context, f func(context.Context) error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			select {
			case s.errs <- err:
			default:
			}
		}
	}()
}

// serve serves h on ln until Close.
func (s *Stack) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(ln) }()
}

// signingPair loads the given key file and certificate, or the development
// pair of the data directory, made on first use.
func signingPair(o Options) (*devcert.Pair, error) {
	if o.SignerKey != "" || o.SignerCert != "" {
		if o.SignerKey == "" || o.SignerCert == "" {
			return nil, errors.New("local: give both a signer key and its certificate")
		}
		return devcert.Load(o.SignerKey, o.SignerCert)
	}
	p, _, err := devcert.LoadOrCreate(filepath.Clean(o.DataDir), "ceb179 local development signer")
	return p, err
}
