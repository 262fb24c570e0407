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
// mean the card refused the PIN even when the message also names a reader
// error. Matching is case-insensitive. They only ever move an answer
// towards "refused": a failed PIN-bearing call is read as a refused PIN
// anyway unless it is a known reader or control error (see classify).
var DefaultPINErrorMarkers = []string{"口令", "PIN", "passwd", "password", "剩余", "锁", "63C"}

// Known reader and control errors: a failed call that names one of these
// (and no PIN marker) left the PIN unchecked, so the card may be tried
// again once it answers a PIN-free check. 50070: the reader could not be
// reset (card pulled out, light out); 50200: the reader cannot be opened;
// 60408: the control is not reachable.
var (
	deviceCodes    = regexp.MustCompile(`(?:^|\D)(50070|50200|60408)(?:\D|$)`)
	deviceWordings = []string{"读卡器", "打开密码设备失败", "未检测到密码设备", "未插入", "未插卡", "reader"}
)

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
	// every signer); a private in-memory guard when nil.
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
	ID     json.RawMessage `json:"_id"`
	Method string          `json:"_method"`
	Status string          `json:"_status"`
	Args   struct {
		Result bool            `json:"Result"`
		Data   json.RawMessage `json:"Data"`
		Error  json.RawMessage `json:"Error"`
	} `json:"_args"`

	malformed bool // the reply's _id was read but not the rest
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
		cfg.Guard = NewPINGuard("")
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
	e.cfg.Guard.Probed(certNo)
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
	done, err := e.cfg.Guard.Begin(ctx, e.certNo, e.cfg.Name, e.cfg.PIN)
	if err != nil {
		return "", err
	}
	v, err := e.sign(ctx, source)
	if werr := done(err); werr != nil {
		err = fmt.Errorf("%w (%v)", err, werr)
	}
	return v, err
}

// sign makes the PIN-bearing call; Sign has let it through the guard.
func (e *EPort) sign(ctx context.Context, source []byte) (string, error) {
	data, err := e.call(ctx, MethodSign, map[string]string{
		"inData": string(source),
		"passwd": e.cfg.PIN.Reveal(),
	}, true)
	if err != nil {
		return "", err
	}
	if len(data) == 0 {
		return "", fmt.Errorf("%w: sign answer holds no signature", ErrDevice)
	}
	if len(data) > 1 && data[1] != "" && !strings.EqualFold(strings.TrimSpace(data[1]), e.certNo) {
		return "", fmt.Errorf("%w: card signed with certNo %s, expected %s (card changed?)", ErrDevice, data[1], e.certNo)
	}
	v, err := normaliseSignValue(data[0], e.cert)
	if err != nil {
		return "", err
	}
	if err := signature.Verify(e.cert, source, v); err != nil {
		return "", fmt.Errorf("%w: card signature: %w", ErrDevice, err)
	}
	return v, nil
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
// it is still the card EPort was opened with. A card that answers counts
// as checked without the PIN (it may be sent the PIN once more); Ping then
// returns the standing refusal, if this PIN was refused by the card
// before.
func (e *EPort) Ping(ctx context.Context) error {
	data, err := e.Call(ctx, MethodCertNo, struct{}{})
	if err != nil {
		return err
	}
	if len(data) == 0 || !strings.EqualFold(strings.TrimSpace(data[0]), e.certNo) {
		return fmt.Errorf("%w: the control reports certNo %q, expected %s (card removed or changed?)", ErrDevice, strings.Join(data, ","), e.certNo)
	}
	e.cfg.Guard.Probed(e.certNo)
	return e.cfg.Guard.Blocked(e.certNo, e.cfg.Name, e.cfg.PIN)
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
	return e.call(ctx, method, args, false)
}

// call is Call; withPIN says the request carries the PIN.
func (e *EPort) call(ctx context.Context, method string, args any, withPIN bool) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.CallTimeout)
	defer cancel()
	conn, gone, err := e.connect(ctx)
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("e-port %s: encode: %w", method, err)
	}
	if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
		e.drop(conn, "write failed")
		return nil, fmt.Errorf("%w: e-port %s: send: %w", ErrUnavailable, method, err)
	}
	select {
	case r := <-ch:
		return r.result(method, withPIN, e.cfg.PINErrorMarkers)
	case <-gone:
		return nil, fmt.Errorf("%w: e-port %s: connection lost", ErrUnavailable, method)
	case <-ctx.Done():
		e.drop(conn, "call timed out")
		return nil, fmt.Errorf("%w: e-port %s: no answer: %w", ErrUnavailable, method, ctx.Err())
	}
}

// result interprets a reply. Error is read whatever _status says; a
// reply with Result true but another _status, or an Error, is a failure.
func (r eportReply) result(method string, withPIN bool, pinMarkers []string) ([]string, error) {
	if r.malformed {
		return nil, &EPortError{Method: method, Messages: []string{"malformed reply"}, kind: ErrDevice}
	}
	data := stringList(r.Args.Data)
	msgs := stringList(r.Args.Error)
	okStatus := r.Status == "" || r.Status == "00"
	if r.Args.Result && okStatus && len(nonEmpty(msgs)) == 0 {
		return data, nil
	}
	if !okStatus {
		msgs = append(msgs, "status "+r.Status)
	}
	if len(msgs) == 0 {
		msgs = []string{"Result false without message"}
	}
	kind := ErrDevice
	if withPIN {
		kind = classify(msgs, pinMarkers)
	}
	return nil, &EPortError{Method: method, Messages: msgs, kind: kind}
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

// classify maps the error messages of a failed call that carried the PIN
// to an error kind. The control's wording of a wrong PIN is not published,
// so the reading is the safe one: the PIN was refused unless the messages
// name a known reader or control error and no PIN marker.
func classify(msgs []string, pinMarkers []string) error {
	all := strings.ToLower(strings.Join(msgs, "\n"))
	for _, m := range pinMarkers {
		if m != "" && strings.Contains(all, strings.ToLower(m)) {
			return ErrPINRefused
		}
	}
	if sub := deviceCodes.FindStringSubmatch(all); sub != nil {
		if sub[1] == "60408" {
			return ErrUnavailable
		}
		return ErrDevice
	}
	for _, w := range deviceWordings {
		if strings.Contains(all, strings.ToLower(w)) {
			return errDeviceWords
		}
	}
	return ErrPINRefused
}

// errDeviceWords is a device error named in words only, with no known
// code: the likeliest reading, but a wrong PIN could be worded the same
// way. It wraps ErrDevice; PINGuard counts such answers to PIN-bearing
// calls and takes a run of them as a refused PIN (see MaxDeviceWords).
var errDeviceWords = fmt.Errorf("%w (in words only, no known code)", ErrDevice)

// stringList decodes a JSON array of strings, or a single string, leniently.
func stringList(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var list []any
	if err := json.Unmarshal(raw, &list); err != nil {
		var s string
		if json.Unmarshal(raw, &s) == nil && s != "" {
			return []string{s}
		}
		return nil
	}
	out := make([]string, 0, len(list))
	for _, v := range list {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case nil:
			out = append(out, "")
		default:
			b, _ := json.Marshal(v)
			out = append(out, string(b))
		}
	}
	return out
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
		var r eportReply
		if err := json.Unmarshal(msg, &r); err != nil {
			// Read the _id alone, so that the caller hears of a malformed
			// answer instead of waiting for its timeout.
			var head struct {
				ID json.RawMessage `json:"_id"`
			}
			if json.Unmarshal(msg, &head) != nil {
				e.log.Warn("e-port message is not JSON", "bytes", len(msg))
				continue
			}
			r = eportReply{ID: head.ID, malformed: true}
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
