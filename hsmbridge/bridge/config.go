package bridge

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/signer"
	"gopkg.in/yaml.v3"
)

// Config is the hsmbridge configuration file (YAML). Environment
// variables override some fields; see ApplyEnv.
type Config struct {
	// QueueURL is the URL of the sign queue.
	QueueURL string `yaml:"queueURL"`
	// UploadFunction is the name or ARN of the upload function.
	UploadFunction string `yaml:"uploadFunction"`
	// Region is the AWS region; empty uses the standard AWS chain.
	Region string `yaml:"region"`
	// StatusAddr is the loopback address of the status endpoint
	// (default 127.0.0.1:9179); "off" disables it.
	StatusAddr string `yaml:"statusAddr"`
	// LogLevel is debug, info, warn or error (default info).
	LogLevel string `yaml:"logLevel"`
	// LogFile, when set, receives the JSON logs instead of stderr (for
	// the Windows service, which has no console).
	LogFile string `yaml:"logFile"`
	// MaxBacklog bounds the jobs held in memory (default 2000).
	MaxBacklog int `yaml:"maxBacklog"`
	// Visibility is the visibility timeout kept on held messages
	// (default 60s).
	Visibility time.Duration `yaml:"visibility"`
	// RetryDelay is how soon a message given back after a failure or a
	// RETRY answer comes back (default: visibility).
	RetryDelay time.Duration `yaml:"retryDelay"`
	// MaxReceiveCount is the sign queue's maxReceiveCount (default 5, as
	// in template.yaml); the last delivery is uploaded with lastDelivery.
	MaxReceiveCount int `yaml:"maxReceiveCount"`
	// SignTimeout bounds one signature (default 15s).
	SignTimeout time.Duration `yaml:"signTimeout"`
	// UploadTimeout bounds one upload function invoke (default 30s).
	UploadTimeout time.Duration `yaml:"uploadTimeout"`
	// UploadConcurrency bounds parallel invokes per op (default 16).
	UploadConcurrency int `yaml:"uploadConcurrency"`
	// ProbeInterval is how long a failing signer rests before it is
	// probed again (default 30s).
	ProbeInterval time.Duration `yaml:"probeInterval"`
	// MaxAttempts is how many signer failures send a job back to the
	// queue (default 3).
	MaxAttempts int `yaml:"maxAttempts"`
	// StateDir holds what must outlive the process: the markers of
	// blocked PINs (in its pin-refused folder), the machine's memory of
	// its cards. Empty means the machine's (MachineStateDir), shared by
	// every hsmbridge and `ceb179 local --bridge-config` on it, whatever
	// folder their configuration is in; HSMBRIDGE_STATE_DIR overrides it.
	// A relative path is taken from the configuration file's folder.
	StateDir string `yaml:"stateDir"`
	// Heartbeat is how often the bridge sends its heartbeat metric to
	// CloudWatch: a duration from 10s to 1m (default 60s), or "off".
	Heartbeat string `yaml:"heartbeat"`
	// Signers are the signers; several per ebpCode make a pool.
	Signers []SignerConfig `yaml:"signers"`

	// legacyMarkers is where an older hsmbridge kept the markers of this
	// configuration (state/pin-refused next to the file); any found there
	// are imported into the state directory.
	legacyMarkers string
}

// SignerConfig configures one signer. Type selects the backend and which
// of the other fields apply.
type SignerConfig struct {
	// Name identifies the signer in logs and status.
	Name string `yaml:"name"`
	// EbpCode is the platform code whose jobs it signs.
	EbpCode string `yaml:"ebpCode"`
	// Type is "eport", "pkcs11", "sdf", "keyfile" or "kms".
	Type string `yaml:"type"`
	// PINFile is a file holding the PIN (eport, pkcs11) or the private-key
	// access password (sdf).
	PINFile string `yaml:"pinFile"`
	// PINEnv names an environment variable holding the PIN, used when
	// PINFile is empty (eport, pkcs11, sdf).
	PINEnv string `yaml:"pinEnv"`

	// URL is the E-Port control's WebSocket (eport; default
	// ws://127.0.0.1:61232).
	URL string `yaml:"url"`
	// CallTimeout bounds one call to the control (eport), the login and
	// the closing of sessions (pkcs11), one call into the SDF library
	// (sdf), or one call to KMS (kms); default 10s.
	CallTimeout time.Duration `yaml:"callTimeout"`
	// PINErrorMarkers replaces the fragments of a control error that mean
	// the PIN was refused even next to a reader error code (eport). Any
	// other failed signature is read as a refused PIN unless it names a
	// known reader or control error.
	PINErrorMarkers []string `yaml:"pinErrorMarkers"`

	// Module is the PKCS#11 library path (pkcs11).
	Module string `yaml:"module"`
	// TokenLabel selects the token (pkcs11).
	TokenLabel string `yaml:"tokenLabel"`
	// Slot selects the token by slot id when TokenLabel is empty (pkcs11).
	Slot *uint `yaml:"slot"`
	// KeyLabel selects the private key by label (pkcs11).
	KeyLabel string `yaml:"keyLabel"`
	// KeyID selects the private key by hex id (pkcs11).
	KeyID string `yaml:"keyID"`
	// Concurrency is how many signatures run in parallel (pkcs11;
	// default 1).
	Concurrency int `yaml:"concurrency"`
	// SM2Mechanism is the vendor's SM2 signing mechanism, e.g. 0x80000101
	// (pkcs11).
	SM2Mechanism string `yaml:"sm2Mechanism"`
	// SM2Input is "message" or "digest": what the SM2 mechanism takes
	// (pkcs11; default message).
	SM2Input string `yaml:"sm2Input"`

	// Library is the path of the cipher machine vendor's GM/T 0018 SDF
	// library (sdf).
	Library string `yaml:"library"`
	// KeyIndex is the index of the signing key in the cipher machine
	// (sdf).
	KeyIndex *uint32 `yaml:"keyIndex"`
	// Sessions is how many sessions sign in parallel (sdf; default 4).
	Sessions int `yaml:"sessions"`
	// ECCSignatureLayout is the size of the fields of the library's
	// ECCSignature and ECCrefPublicKey, as its header sets
	// ECCref_MAX_BITS: "64" (512, GM/T 0018-2012; the default) or "32"
	// (256) (sdf).
	ECCSignatureLayout string `yaml:"eccSignatureLayout"`

	// KeyFile is the PEM private key (keyfile).
	KeyFile string `yaml:"keyFile"`
	// CertFile is the PEM certificate (keyfile, kms, sdf; optional for
	// pkcs11).
	CertFile string `yaml:"certFile"`

	// KMSKeyID is the key id, ARN or alias of an AWS KMS SM2 key (kms).
	KMSKeyID string `yaml:"kmsKeyID"`
	// Region is the KMS key's region (kms; default: the top-level region).
	Region string `yaml:"region"`
}

// DefaultStatusAddr is where the status endpoint listens by default.
const DefaultStatusAddr = "127.0.0.1:9179"

// LoadConfig reads the YAML file at path, applies the environment
// overrides and validates the result. Unknown keys are errors, so a typo
// does not silently fall back to a default.
func LoadConfig(path string, getenv func(string) string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := ParseConfig(b, getenv)
	if err != nil {
		return c, err
	}
	if c.StateDir != "" && !filepath.IsAbs(c.StateDir) {
		c.StateDir = filepath.Join(filepath.Dir(path), c.StateDir)
	}
	c.legacyMarkers = filepath.Join(filepath.Dir(path), "state", PINRefusedDir)
	return c, nil
}

// PINRefusedDir is the folder of PIN markers (refusals and strikes) in
// the state directory.
const PINRefusedDir = "pin-refused"

// EnvStateDir names the environment variable that overrides stateDir.
const EnvStateDir = "HSMBRIDGE_STATE_DIR"

// MachineStateDir returns the state directory of this machine, which every
// hsmbridge and `ceb179 local --bridge-config` uses when neither stateDir
// nor HSMBRIDGE_STATE_DIR names one: on Windows %ProgramData%\hsmbridge\state;
// elsewhere /var/lib/hsmbridge for root or when it exists (installed for
// the service), the XDG state home (~/.local/state/hsmbridge) otherwise.
// A test binary gets an error instead: tests keep their state in
// temporary directories.
func MachineStateDir() (string, error) {
	if testing.Testing() {
		return "", fmt.Errorf("no machine state directory in a test: set %s or stateDir to a temporary directory", EnvStateDir)
	}
	exists := func(p string) bool { st, err := os.Stat(p); return err == nil && st.IsDir() }
	return machineStateDir(runtime.GOOS, os.Getenv, os.Geteuid(), exists)
}

// machineStateDir is MachineStateDir for the given system, environment,
// effective user id and file system.
func machineStateDir(goos string, getenv func(string) string, euid int, exists func(string) bool) (string, error) {
	if goos == "windows" {
		base := strings.TrimRight(getenv("ProgramData"), `\`)
		if base == "" {
			base = `C:\ProgramData`
		}
		return base + `\hsmbridge\state`, nil
	}
	const system = "/var/lib/hsmbridge"
	if euid == 0 || exists(system) {
		return system, nil
	}
	if x := getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "hsmbridge"), nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "hsmbridge"), nil
	}
	return "", fmt.Errorf("no state directory: set stateDir or %s", EnvStateDir)
}

// StateDirectory returns the state directory in use: StateDir, or the
// machine's.
func (c *Config) StateDirectory() (string, error) {
	if c.StateDir != "" {
		return c.StateDir, nil
	}
	return MachineStateDir()
}

// PINMarkersDir returns the folder of PIN markers in the state directory,
// or "" when no signer of the configuration sends a PIN.
func (c *Config) PINMarkersDir() (string, error) {
	if !slices.ContainsFunc(c.Signers, SignerConfig.sendsPIN) {
		return "", nil
	}
	dir, err := c.StateDirectory()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, PINRefusedDir), nil
}

// PINGuard returns the guard of the machine's PIN markers, in the state
// directory. Every signer of one process must share one guard;
// SignerSpecs builds it. Markers an older hsmbridge kept next to this
// configuration file are imported into it first (imported says how
// many).
func (c *Config) PINGuard() (g *signer.PINGuard, imported int, err error) {
	dir, err := c.StateDirectory()
	if err != nil {
		return nil, 0, err
	}
	if g, err = signer.NewPINGuard(filepath.Join(dir, PINRefusedDir)); err != nil {
		return nil, 0, err
	}
	imported, err = g.ImportMarkers(c.legacyMarkers)
	return g, imported, err
}

// ParseConfig is LoadConfig for the file's bytes.
func ParseConfig(b []byte, getenv func(string) string) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("parse config: %w", err)
	}
	if err := c.ApplyEnv(getenv); err != nil {
		return Config{}, err
	}
	if c.StatusAddr == "" {
		c.StatusAddr = DefaultStatusAddr
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ApplyEnv overrides fields from the environment: HSMBRIDGE_QUEUE_URL,
// HSMBRIDGE_UPLOAD_FUNCTION, HSMBRIDGE_REGION, HSMBRIDGE_STATUS_ADDR,
// HSMBRIDGE_LOG_LEVEL, HSMBRIDGE_LOG_FILE, HSMBRIDGE_STATE_DIR and
// HSMBRIDGE_MAX_BACKLOG. A nil
// getenv means os.Getenv.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	for name, dst := range map[string]*string{
		"HSMBRIDGE_QUEUE_URL":       &c.QueueURL,
		"HSMBRIDGE_UPLOAD_FUNCTION": &c.UploadFunction,
		"HSMBRIDGE_REGION":          &c.Region,
		"HSMBRIDGE_STATUS_ADDR":     &c.StatusAddr,
		"HSMBRIDGE_LOG_LEVEL":       &c.LogLevel,
		"HSMBRIDGE_LOG_FILE":        &c.LogFile,
		"HSMBRIDGE_STATE_DIR":       &c.StateDir,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if v := getenv("HSMBRIDGE_MAX_BACKLOG"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("HSMBRIDGE_MAX_BACKLOG: %w", err)
		}
		c.MaxBacklog = n
	}
	return nil
}

// Validate checks the configuration without touching any device.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.QueueURL == "" {
		bad("queueURL is required")
	}
	if c.UploadFunction == "" {
		bad("uploadFunction is required")
	}
	if c.StatusAddr != "off" {
		if err := CheckLoopback(c.StatusAddr); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.HeartbeatInterval(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxBacklog < 0 || c.UploadConcurrency < 0 || c.MaxAttempts < 0 || c.MaxReceiveCount < 0 {
		bad("maxBacklog, uploadConcurrency, maxAttempts and maxReceiveCount must not be negative")
	}
	if c.Visibility != 0 && (c.Visibility < 10*time.Second || c.Visibility > 12*time.Hour) {
		bad("visibility must be between 10s and 12h")
	}
	if len(c.Signers) == 0 {
		bad("at least one signer is required")
	}
	names := map[string]bool{}
	for i, s := range c.Signers {
		where := fmt.Sprintf("signers[%d] %q", i, s.Name)
		if s.Name == "" {
			bad("%s: name is required", where)
		} else if names[s.Name] {
			bad("%s: name used twice", where)
		}
		names[s.Name] = true
		errs = append(errs, s.problems(where)...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// problems lists what is wrong with one signer's settings; where names the
// signer in each message.
func (s SignerConfig) problems(where string) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if s.EbpCode == "" {
		bad("%s: ebpCode is required", where)
	}
	if s.PINFile != "" && s.PINEnv != "" {
		bad("%s: set pinFile or pinEnv, not both", where)
	}
	switch s.Type {
	case "eport":
		if s.URL != "" {
			if err := signer.CheckEPortURL(s.URL); err != nil {
				bad("%s: %v", where, err)
			}
		}
		if s.PINFile == "" && s.PINEnv == "" {
			bad("%s: the card needs pinFile or pinEnv", where)
		}
	case "pkcs11":
		if s.Module == "" {
			bad("%s: module is required", where)
		}
		if s.TokenLabel == "" && s.Slot == nil {
			bad("%s: tokenLabel or slot is required", where)
		}
		if s.KeyLabel == "" && s.KeyID == "" {
			bad("%s: keyLabel or keyID is required", where)
		}
		if _, err := parseMechanism(s.SM2Mechanism); err != nil {
			bad("%s: sm2Mechanism: %v", where, err)
		}
		if s.SM2Input != "" && s.SM2Input != "message" && s.SM2Input != "digest" {
			bad("%s: sm2Input must be message or digest", where)
		}
	case "sdf":
		if s.Library == "" || s.KeyIndex == nil || s.CertFile == "" {
			bad("%s: library, keyIndex and certFile are required", where)
		}
		if s.PINFile == "" && s.PINEnv == "" {
			bad("%s: the key's access password needs pinFile or pinEnv", where)
		}
		if s.Sessions < 0 || s.Sessions > 64 {
			bad("%s: sessions must be between 1 and 64 (0: default 4)", where)
		}
		if s.CallTimeout < 0 {
			bad("%s: callTimeout must not be negative", where)
		}
		if _, err := eccFieldSize(s.ECCSignatureLayout); err != nil {
			bad("%s: %v", where, err)
		}
	case "keyfile":
		if s.KeyFile == "" || s.CertFile == "" {
			bad("%s: keyFile and certFile are required", where)
		}
	case "kms":
		if s.KMSKeyID == "" || s.CertFile == "" {
			bad("%s: kmsKeyID and certFile are required", where)
		}
	default:
		bad("%s: type must be eport, pkcs11, sdf, keyfile or kms", where)
	}
	return errs
}

// eccFieldSize reads eccSignatureLayout: the field size in bytes.
func eccFieldSize(layout string) (int, error) {
	switch strings.TrimSpace(layout) {
	case "", "64":
		return 64, nil
	case "32":
		return 32, nil
	}
	return 0, fmt.Errorf("eccSignatureLayout %q: want 64 (r and s in 64-byte fields, GM/T 0018-2012) or 32", layout)
}

func parseMechanism(s string) (uint, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s), 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number (use 0x...)", s)
	}
	return uint(v), nil
}

// ParseLevel parses a log level name; empty is info.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("logLevel %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// Options returns the bridge options the configuration sets; the caller
// adds the queue, the uploader, the signers and the logger.
func (c *Config) Options() Options {
	o := Options{
		MaxBacklog: c.MaxBacklog, Visibility: c.Visibility, RetryDelay: c.RetryDelay,
		SignTimeout: c.SignTimeout, UploadTimeout: c.UploadTimeout,
		UploadConcurrency: c.UploadConcurrency, ProbeInterval: c.ProbeInterval,
		MaxAttempts: c.MaxAttempts, MaxReceiveCount: c.MaxReceiveCount,
	}
	if c.StatusAddr != "off" {
		o.StatusAddr = c.StatusAddr
	}
	return o
}

// SignerSpecs turns the signer configurations into pool members. PINs are
// read here, once: a missing PIN file, or one that is not plainly the PIN,
// is an error now rather than at the first job, and no PIN is sent. The
// signers that send a PIN share one PIN guard over the machine's state
// directory (see PINGuard).
func (c *Config) SignerSpecs(log *slog.Logger) ([]SignerSpec, error) {
	specs := make([]SignerSpec, 0, len(c.Signers))
	var guard *signer.PINGuard
	for _, sc := range c.Signers {
		if sc.Region == "" {
			sc.Region = c.Region
		}
		if sc.sendsPIN() && guard == nil {
			g, imported, err := c.PINGuard()
			if err != nil {
				return nil, fmt.Errorf("signer %s: PIN markers: %w", sc.Name, err)
			}
			if imported > 0 {
				log.Info("imported PIN markers kept next to the configuration", "marks", imported, "into", g.Dir())
			}
			guard = g
		}
		spec, err := sc.SpecWithGuard(log, guard)
		if err != nil {
			return nil, err
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// sendsPIN reports whether the signer sends a PIN to its device.
func (sc SignerConfig) sendsPIN() bool {
	return sc.Type == "eport" || sc.Type == "pkcs11" || sc.Type == "sdf"
}

// SendsPINs reports whether a signer of the configuration sends a PIN
// (and so has its PIN markers in the state directory).
func (c *Config) SendsPINs() bool {
	for _, sc := range c.Signers {
		if sc.sendsPIN() {
			return true
		}
	}
	return false
}

// SpecWithGuard returns the pool member for this signer. guard is the
// process's PIN guard (see Config.PINGuard); a signer that sends a PIN
// without one is a configuration error.
func (sc SignerConfig) SpecWithGuard(log *slog.Logger, guard *signer.PINGuard) (SignerSpec, error) {
	spec := SignerSpec{Name: sc.Name, EbpCode: sc.EbpCode}
	if sc.sendsPIN() && guard == nil {
		return spec, fmt.Errorf("signer %s: no PIN guard: a %s signer needs the machine's PIN markers", sc.Name, sc.Type)
	}
	pin, err := signer.LoadPIN(sc.PINFile, sc.PINEnv)
	if err != nil {
		return spec, fmt.Errorf("signer %s: %w", sc.Name, err)
	}
	switch sc.Type {
	case "eport":
		cfg := signer.EPortConfig{
			URL: sc.URL, PIN: pin, CallTimeout: sc.CallTimeout, PINErrorMarkers: sc.PINErrorMarkers,
			Logger: log.With("signer", sc.Name), Guard: guard, Name: sc.Name,
		}
		spec.Open = func(ctx context.Context) (signer.Signer, error) { return signer.OpenEPort(ctx, cfg) }
	case "pkcs11":
		mech, err := parseMechanism(sc.SM2Mechanism)
		if err != nil {
			return spec, fmt.Errorf("signer %s: %w", sc.Name, err)
		}
		cfg := signer.PKCS11Config{
			Module: sc.Module, TokenLabel: sc.TokenLabel, Slot: sc.Slot, KeyLabel: sc.KeyLabel, KeyID: sc.KeyID,
			CertFile: sc.CertFile, PIN: pin, Concurrency: sc.Concurrency, SM2Mechanism: mech, SM2Input: sc.SM2Input,
			CallTimeout: sc.CallTimeout, Guard: guard, Name: sc.Name,
		}
		spec.Open = func(ctx context.Context) (signer.Signer, error) { return signer.OpenPKCS11(ctx, cfg) }
	case "sdf":
		field, err := eccFieldSize(sc.ECCSignatureLayout)
		if err != nil || sc.KeyIndex == nil {
			return spec, fmt.Errorf("signer %s: sdf: %v", sc.Name, cmp.Or(err, errors.New("keyIndex is required")))
		}
		cfg := signer.SDFConfig{
			Library: sc.Library, KeyIndex: *sc.KeyIndex, CertFile: sc.CertFile, PIN: pin,
			Sessions: sc.Sessions, CallTimeout: sc.CallTimeout, ECCFieldSize: field, Guard: guard, Name: sc.Name,
		}
		spec.Open = func(ctx context.Context) (signer.Signer, error) { return signer.OpenSDF(ctx, cfg) }
	case "keyfile":
		keyFile, certFile := sc.KeyFile, sc.CertFile
		spec.Open = func(context.Context) (signer.Signer, error) { return signer.OpenKeyFile(keyFile, certFile) }
	case "kms":
		cfg := signer.KMSConfig{KeyID: sc.KMSKeyID, CertFile: sc.CertFile, Concurrency: sc.Concurrency, CallTimeout: sc.CallTimeout}
		region := sc.Region
		spec.Open = func(ctx context.Context) (signer.Signer, error) {
			clients, err := awsenv.Load(ctx, awsenv.WithRegion(region))
			if err != nil {
				return nil, fmt.Errorf("%w: aws config: %w", signer.ErrUnavailable, err)
			}
			return signer.NewKMS(awsenv.NewKMS(clients.Config), cfg)
		}
	default:
		return spec, fmt.Errorf("signer %s: unknown type %q", sc.Name, sc.Type)
	}
	return spec, nil
}
