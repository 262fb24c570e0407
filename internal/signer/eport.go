package signer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ceb179/ceb179/internal/signature"
	"github.com/coder/websocket"
	"github.com/emmansun/gmsm/smx509"
)

// DefaultEPortURL is where the E-Port client control listens on the PC the
// card is plugged into.
const DefaultEPortURL = "ws://127.0.0.1:61232"

// Methods of the E-Port client control used by EPort.
const (
	MethodSign      = "cus-sec_SpcSignDataAsPEM"
	MethodCertNo    = "cus-sec_SpcGetCertNo"
	MethodSignCert  = "cus-sec_SpcGetSignCertAsPEM"
	MethodVerify    = "cus-sec_SpcVerifySignData"
	MethodValidTime = "cus-sec_SpcGetValidTimeFromCert"
)

// DefaultPINErrorMarkers are fragments of a control error message that
// mean the card refused the PIN, even when the message also names a reader
// error. Matching is case-insensitive. They only ever decide between a
// refusal and a strike, which block the PIN alike (see classify).
var DefaultPINErrorMarkers = []string{"口令", "PIN", "passwd", "password", "剩余", "锁", "63C"}

// deviceCodes are the known reader and control errors: a failed call that
// names one by its code (and no PIN marker) left the PIN unchecked, so the
// card may be tried again once it answers a PIN-free check. 50070: the
// reader could not be reset (card pulled out, light out); 50200: the
// reader cannot be opened; 60408: the control is not reachable. Words
// alone ("读卡器", "打开密码设备失败") are not enough: a wrong PIN could be
// worded the same way.
var deviceCodes = regexp.MustCompile(`(?:^|\D)(50070|50200|60408)(?:\D|$)`)

// EPortConfig configures an EPort signer.
type EPortConfig struct {
	// URL of the control's WebSocket; DefaultEPortURL when empty.
	URL string
	// PIN of the card.
	PIN PIN
	// CallTimeout bounds one call to the control; 10s when zero.
	CallTimeout time.Duration
	// PINErrorMarkers overrides DefaultPINErrorMarkers when not empty.
	PINErrorMarkers []string
	// Guard is the door the PIN goes through (one per process, shared by
	// every signer). Required.
	Guard *PINGuard
	// Name is the signer entry's name, recorded on a refused-PIN marker.
	Name string
	// Logger receives connection events; slog.Default() when nil.
	Logger *slog.Logger
}

// EPort is a Signer over the E-Port client control: the card (IC card or
// UKey) signs, the control speaks JSON over a local WebSocket. Replies are
// matched to calls by _id, so they may arrive in any order; the _id 0
// notice the control sends on connect is not a reply. A lost connection is
// re-dialled on the next call. A card signs one source at a time.
type EPort struct {
	cfg EPortConfig
	log *slog.Logger

	mu      sync.Mutex
	conn    *websocket.Conn
	gone    chan struct{} // closed when conn's reader stops
	nextID  int
	pending map[int]chan eportReply

	signSlot chan struct{}
	cert     *smx509.Certificate
	certNo   string
}

var (
	_ Signer = (*EPort)(nil)
	_ Pinger = (*EPort)(nil)
)

// eportRequest is a call to the control.
type eportRequest struct {
	Method string `json:"_method"`
	ID     int    `json:"_id"`
	Args   any    `json:"args"`
}

// eportReply is the control's answer to a call, or its _id 0 notice.
type eportReply struct {
	ID     json.RawMessage
	Method string
	Status string
	Result bool
	Data   []string
	Error  []string

	// malformed says why the reply is not the control's JSON (its _id
	// was read, but _status, Result, Data or Error have the wrong shape);
	// empty when it is.
	malformed string
}

// decodeReply reads one message of the control. It fails only when the
// message is not a JSON object; a reply of the wrong shape comes back
// with malformed set, so that its caller hears of it at once.
func decodeReply(msg []byte) (eportReply, error) {
	var raw struct {
		ID     json.RawMessage `json:"_id"`
		Method json.RawMessage `json:"_method"`
		Status json.RawMessage `json:"_status"`
		Args   json.RawMessage `json:"_args"`
	}
	if err := json.Unmarshal(msg, &raw); err != nil {
		return eportReply{}, err
	}
	r := eportReply{ID: raw.ID}
	_ = json.Unmarshal(raw.Method, &r.Method)
	var args struct {
		Result json.RawMessage `json:"Result"`
		Data   json.RawMessage `json:"Data"`
		Error  json.RawMessage `json:"Error"`
	}
	switch {
	case !strictJSON(raw.Status, &r.Status):
		r.malformed = "_status is not a string"
	case len(raw.Args) == 0 || json.Unmarshal(raw.Args, &args) != nil:
		r.malformed = "_args is not an object"
	case !strictJSON(args.Result, &r.Result):
		r.malformed = "Result is not true or false"
	case !strictJSON(args.Data, &r.Data):
		r.malformed = "Data is not a list of strings"
	case !strictJSON(args.Error, &r.Error):
		r.malformed = "Error is not a list of strings"
	}
	return r, nil
}

// strictJSON decodes raw into v when it is present and not null, and
// reports whether it had the right shape. Absent and null leave v alone.
func strictJSON(raw json.RawMessage, v any) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return true
	}
	return json.Unmarshal(raw, v) == nil
}

// EPortError is a failure the control reported (Result false). It wraps
// ErrPINRefused, ErrDevice or ErrUnavailable according to its messages.
type EPortError struct {
	// Method is the control method that failed.
	Method string
	// Messages are the control's Error strings.
	Messages []string
	kind     error
}

// Error returns the control's messages.
func (e *EPortError) Error() string {
	return fmt.Sprintf("%v: e-port %s: %s", e.kind, e.Method, strings.Join(e.Messages, "; "))
}

// Unwrap returns the error kind.
func (e *EPortError) Unwrap() error { return e.kind }

// OpenEPort connects to the control and reads the card's certNo and
// certificate. It does not send the PIN.
func OpenEPort(ctx context.Context, cfg EPortConfig) (*EPort, error) {
	if cfg.URL == "" {
		cfg.URL = DefaultEPortURL
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	if len(cfg.PINErrorMarkers) == 0 {
		cfg.PINErrorMarkers = DefaultPINErrorMarkers
	}
	if cfg.Guard == nil {
		return nil, errors.New("e-port: no PIN guard (a card signer needs the machine's PIN guard)")
	}
	if err := CheckEPortURL(cfg.URL); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	e := &EPort{
		cfg:      cfg,
		log:      log.With("eport", cfg.URL),
		pending:  map[int]chan eportReply{},
		signSlot: make(chan struct{}, 1),
	}
	if err := e.loadCertificate(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *EPort) loadCertificate(ctx context.Context) error {
	data, err := e.Call(ctx, MethodSignCert, struct{}{})
	if err != nil {
		return fmt.Errorf("read certificate: %w", err)
	}
	if len(data) == 0 || data[0] == "" {
		return fmt.Errorf("read certificate: %w: empty answer", ErrDevice)
	}
	cert, err := signature.ParseCertificatePEM([]byte(data[0]))
	if err != nil {
		return fmt.Errorf("read certificate: %w: %w", ErrDevice, err)
	}
	certNo := signature.CertNo(cert)
	data, err = e.Call(ctx, MethodCertNo, struct{}{})
	if err != nil {
		return fmt.Errorf("read certNo: %w", err)
	}
	if len(data) > 0 && data[0] != "" && !strings.EqualFold(strings.TrimSpace(data[0]), certNo) {
		return fmt.Errorf("%w: control reports certNo %s but its certificate has %s", ErrDevice, data[0], certNo)
	}
	e.cert, e.certNo = cert, certNo
	return nil
}

// CheckEPortURL returns an error unless raw is a wss:// URL, or a ws://
// URL to a loopback host: over plain ws:// the PIN would cross the
// network in clear.
func CheckEPortURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("e-port url %q: %w", raw, err)
	}
	switch u.Scheme {
	case "wss":
		return nil
	case "ws":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("e-port url %q: ws:// only to a loopback host (the PIN would cross the network in clear); use wss://", raw)
	}
	return fmt.Errorf("e-port url %q: must be ws:// (loopback) or wss://", raw)
}

// Sign has the card sign source; see Signer. The signature is checked
// against the card's certificate before it is returned.
func (e *EPort) Sign(ctx context.Context, source []byte) (string, error) {
	select {
	case e.signSlot <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	defer func() { <-e.signSlot }()
	var v string
	err := e.cfg.Guard.Do(ctx, e.card(), e.cfg.PIN, func(ctx context.Context, pin PIN) (PINResult, error) {
		var res PINResult
		var err error
		v, res, err = e.sign(ctx, source, pin)
		return res, err
	})
	if err != nil {
		return "", err
	}
	return v, nil
}

// card is the card as the PIN guard knows it.
func (e *EPort) card() Card {
	return Card{ID: e.certNo, Signer: e.cfg.Name, Check: e.checkCard}
}

// sign makes the PIN-bearing call; the guard let pin through.
func (e *EPort) sign(ctx context.Context, source []byte, pin PIN) (string, PINResult, error) {
	data, res, err := e.call(ctx, MethodSign, map[string]string{
		"inData": string(source),
		"passwd": pin.Reveal(),
	}, true)
	if err != nil {
		return "", res, err
	}
	if len(data) == 0 {
		return "", PINAccepted, fmt.Errorf("%w: sign answer holds no signature", ErrDevice)
	}
	if len(data) > 1 && data[1] != "" && !strings.EqualFold(strings.TrimSpace(data[1]), e.certNo) {
		return "", PINAccepted, fmt.Errorf("%w: card signed with certNo %s, expected %s (card changed?)", ErrDevice, data[1], e.certNo)
	}
	v, err := normaliseSignValue(data[0], e.cert)
	if err != nil {
		return "", PINAccepted, err
	}
	if err := signature.Verify(e.cert, source, v); err != nil {
		return "", PINAccepted, fmt.Errorf("%w: card signature: %w", ErrDevice, err)
	}
	return v, PINAccepted, nil
}

// normaliseSignValue turns the control's signature into a signValue: line
// breaks removed, and an SM2 signature in DER form converted to raw r||s.
func normaliseSignValue(s string, cert *smx509.Certificate) (string, error) {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("%w: signature is not base64", ErrDevice)
	}
	if alg, _ := signature.AlgorithmOf(cert.PublicKey); alg == signature.SM2SM3 && len(raw) != signature.SM2SignatureSize {
		if raw, err = signature.SM2ASN1ToRaw(raw); err != nil {
			return "", fmt.Errorf("%w: SM2 signature of %d bytes is neither r||s nor DER", ErrDevice, len(raw))
		}
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// Ping asks the control for the card's certNo (no PIN is sent) and checks
// it is still the card EPort was opened with; it then returns the standing
// refusal or strike, if this PIN is blocked on the card.
func (e *EPort) Ping(ctx context.Context) error {
	if err := e.checkCard(ctx); err != nil {
		return err
	}
	return e.cfg.Guard.Blocked(e.card(), e.cfg.PIN)
}

// checkCard asks the control for the card's certNo, without the PIN, and
// checks it is the card EPort was opened with.
func (e *EPort) checkCard(ctx context.Context) error {
	data, err := e.Call(ctx, MethodCertNo, struct{}{})
	if err != nil {
		return err
	}
	if len(data) == 0 || !strings.EqualFold(strings.TrimSpace(data[0]), e.certNo) {
		return fmt.Errorf("%w: the control reports certNo %q, expected %s (card removed or changed?)", ErrDevice, strings.Join(data, ","), e.certNo)
	}
	return nil
}

// Certificate returns the card's certificate; see Signer.
func (e *EPort) Certificate() *smx509.Certificate { return e.cert }

// CertNo returns the card's certNo; see Signer.
func (e *EPort) CertNo() string { return e.certNo }

// Concurrency returns 1: a card signs one source at a time.
func (e *EPort) Concurrency() int { return 1 }

// Close closes the connection to the control.
func (e *EPort) Close() error {
	e.mu.Lock()
	c := e.conn
	e.conn = nil
	e.mu.Unlock()
	if c != nil {
		return c.Close(websocket.StatusNormalClosure, "")
	}
	return nil
}

// Call sends one PIN-free request to the control and waits for its reply,
// at most the call timeout. It returns the reply's Data. A timeout drops
// the connection, since a control that hangs rarely recovers on the same
// one. A failure is never read as a refused PIN: no PIN was sent.
func (e *EPort) Call(ctx context.Context, method string, args any) ([]string, error) {
	if a, ok := args.(map[string]string); ok && a["passwd"] != "" {
		return nil, errors.New("e-port: the PIN goes through Sign only")
	}
	data, _, err := e.call(ctx, method, args, false)
	return data, err
}

// call is Call; withPIN says the request carries the PIN, and the
// PINResult says how such a call ended (see PINResult): PINNotSent only
// when the request was certainly not written.
func (e *EPort) call(ctx context.Context, method string, args any, withPIN bool) ([]string, PINResult, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
	defer cancel()
	conn, gone, err := e.connect(ctx)
	if err != nil {
		return nil, PINNotSent, err
	}
	e.mu.Lock()
	e.nextID++
	if e.nextID <= 0 { // 0 is the control's notice
		e.nextID = 1
	}
	id := e.nextID
	ch := make(chan eportReply, 1)
	e.pending[id] = ch
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.pending, id)
		e.mu.Unlock()
	}()

	msg, err := json.Marshal(eportRequest{Method: method, ID: id, Args: args})
	if err != nil {
		return nil, PINNotSent, fmt.Errorf("e-port %s: encode: %w", method, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, PINNotSent, fmt.Errorf("%w: e-port %s: %w", ErrUnavailable, method, err)
	}
	wait := ctx
	if withPIN {
		// From here on the PIN may be on its way: only the call timeout
		// ends the wait, not the caller (a service stop), so that an
		// answer on its way is heard instead of becoming a strike.
		deadline, _ := ctx.Deadline()
		var cancelWait context.CancelFunc
		wait, cancelWait = context.WithDeadline(context.WithoutCancel(ctx), deadline)
		defer cancelWait()
	}
	if err := conn.Write(wait, websocket.MessageText, msg); err != nil {
		e.drop(conn, "write failed")
		return nil, PINUnknown, fmt.Errorf("%w: e-port %s: send: %w", ErrUnavailable, method, err)
	}
	data, res, err := awaitReply(wait, ch, gone, method, withPIN, e.cfg.PINErrorMarkers)
	if errors.Is(err, context.DeadlineExceeded) {
		e.drop(conn, "call timed out")
	}
	return data, res, err
}

// awaitReply waits for the reply that ch delivers, until the connection
// is gone or wait ends, and reads it. Once a request is written, no answer
// is as unsure as a bad one: for a PIN-bearing call both are PINUnknown.
func awaitReply(wait context.Context, ch <-chan eportReply, gone <-chan struct{}, method string, withPIN bool, markers []string) ([]string, PINResult, error) {
	select {
	case r := <-ch:
		return r.result(method, withPIN, markers)
	case <-gone:
		return nil, PINUnknown, fmt.Errorf("%w: e-port %s: connection lost", ErrUnavailable, method)
	case <-wait.Done():
		return nil, PINUnknown, fmt.Errorf("%w: e-port %s: no answer: %w", ErrUnavailable, method, wait.Err())
	}
}

// result interprets a reply. Error is read whatever _status says; a
// reply with Result true but another _status, or an Error, is a failure.
// For a call that carried the PIN the PINResult says what the reply tells
// of it (see classify); a reply of the wrong shape tells nothing.
func (r eportReply) result(method string, withPIN bool, pinMarkers []string) ([]string, PINResult, error) {
	if r.malformed != "" {
		return nil, PINUnknown, &EPortError{Method: method, Messages: []string{"malformed reply: " + r.malformed}, kind: ErrDevice}
	}
	msgs := nonEmpty(r.Error)
	okStatus := r.Status == "" || r.Status == "00"
	if r.Result && okStatus && len(msgs) == 0 {
		return r.Data, PINAccepted, nil
	}
	if !okStatus {
		msgs = append(msgs, "status "+r.Status)
	}
	if len(msgs) == 0 {
		msgs = []string{"Result false without message"}
	}
	res, kind := PINUnknown, ErrDevice
	if withPIN {
		res, kind = classify(msgs, pinMarkers)
	}
	return nil, res, &EPortError{Method: method, Messages: msgs, kind: kind}
}

func nonEmpty(list []string) []string {
	var out []string
	for _, s := range list {
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	return out
}

// classify reads the error messages of a failed call that carried the
// PIN. The control's wording of a wrong PIN is not published, so the
// reading is the safe one: words that name the PIN are a refusal; a known
// reader or control error named by its code (and no PIN words) left the
// PIN unchecked; anything else (other words, reader words without a code,
// a code never seen) may be a wrong PIN counted by the card: a strike.
func classify(msgs []string, pinMarkers []string) (PINResult, error) {
	all := strings.ToLower(strings.Join(msgs, "\n"))
	for _, m := range pinMarkers {
		if m != "" && strings.Contains(all, strings.ToLower(m)) {
			return PINRefused, ErrPINRefused
		}
	}
	if sub := deviceCodes.FindStringSubmatch(all); sub != nil {
		if sub[1] == "60408" {
			return PINDeviceCode, ErrUnavailable
		}
		return PINDeviceCode, ErrDevice
	}
	return PINUnknown, ErrDevice
}

// replyID reads _id, a number or a numeric string.
func replyID(raw json.RawMessage) (int, bool) {
	s := strings.Trim(string(raw), `" `)
	id, err := strconv.Atoi(s)
	return id, err == nil
}

// connect returns the live connection, dialling when there is none.
func (e *EPort) connect(ctx context.Context) (*websocket.Conn, chan struct{}, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		return e.conn, e.gone, nil
	}
	conn, _, err := websocket.Dial(ctx, e.cfg.URL, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: connect to e-port control %s: %w", ErrUnavailable, e.cfg.URL, err)
	}
	conn.SetReadLimit(4 << 20)
	gone := make(chan struct{})
	e.conn, e.gone = conn, gone
	e.log.Info("connected to e-port control")
	go e.readLoop(conn, gone)
	return conn, gone, nil
}

// drop closes conn if it is still the live connection.
func (e *EPort) drop(conn *websocket.Conn, why string) {
	e.mu.Lock()
	if e.conn == conn {
		e.conn = nil
	}
	e.mu.Unlock()
	e.log.Warn("dropping e-port connection", "reason", why)
	conn.CloseNow()
}

// readLoop delivers replies to their callers until the connection ends.
func (e *EPort) readLoop(conn *websocket.Conn, gone chan struct{}) {
	defer close(gone)
	for {
		_, msg, err := conn.Read(context.Background())
		if err != nil {
			e.mu.Lock()
			live := e.conn == conn
			if live {
				e.conn = nil
			}
			e.mu.Unlock()
			if live && !errors.Is(err, context.Canceled) {
				e.log.Warn("e-port connection lost", "err", err)
			}
			conn.CloseNow()
			return
		}
		r, err := decodeReply(msg)
		if err != nil {
			// Nobody can be told: a caller waiting for a reply hears of
			// it at its timeout.
			e.log.Warn("e-port message is not JSON", "bytes", len(msg))
			continue
		}
		id, ok := replyID(r.ID)
		if !ok || id == 0 {
			e.log.Debug("e-port notice", "method", r.Method)
			continue
		}
		e.mu.Lock()
		ch := e.pending[id]
		e.mu.Unlock()
		if ch == nil {
			e.log.Debug("e-port reply to no pending call", "id", id, "method", r.Method)
			continue
		}
		select {
		case ch <- r:
		default:
		}
	}
}
