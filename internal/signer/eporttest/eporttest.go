// Package eporttest runs a fake E-Port client control for tests: a
// WebSocket server on loopback that speaks the control's JSON protocol
// (the _id 0 notice on connect, replies matched by _id and sent in any
// order, Result/Data/Error), signs with a real key at a configurable card
// rate, at its own pace whatever the client does (optionally with the free
// first signature after an idle spell that real cards show, SetBurst), and
// can be told to fail like a real reader (50070, 50200, a
// crypto-device wording) or hang. A wrong PIN is answered as rudely as
// told: in any wording and status, or not at all (the control hangs),
// by closing the connection, or with something that is not the
// control's JSON. It counts the requests that carry a PIN, and the wrong
// PINs, as they arrive, before it decides how to fail.
package eporttest

import (
	"context"
	"crypto"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/signature"
	"github.com/coder/websocket"
	"github.com/emmansun/gmsm/smx509"
)

// Mode selects how the fake card answers sign requests.
type Mode int

const (
	// Normal signs.
	Normal Mode = iota
	// Reset50070 answers every sign request with the reader reset error.
	Reset50070
	// Open50200 answers every sign request with the reader open error.
	Open50200
	// Hang never answers sign requests.
	Hang
	// NoCard answers every request with the reader error, as when the
	// card is pulled out or its light goes out.
	NoCard
	// CryptoDevice answers every sign request with a device error worded
	// without a code ("打开密码设备失败": 密码 here means cryptography).
	CryptoDevice
)

// WrongPINMessages are the Error strings of the fake's default wrong-PIN
// reply.
var WrongPINMessages = []string{"[卡操作]校验用户口令失败:口令错误", "Err:Custom30015"}

// Manner is how the control answers.
type Manner int

const (
	// Reply answers with a reply of the control's protocol.
	Reply Manner = iota
	// NoAnswer never answers: the control hangs.
	NoAnswer
	// Drop closes the connection.
	Drop
	// Garbage sends Answer.Raw: not JSON, or JSON of the wrong shape.
	Garbage
)

// Answer is how the fake control answers a wrong PIN: with a reply (its
// _status and Error strings), or not usably at all.
type Answer struct {
	// Name describes the answer in test names.
	Name string
	// How is Reply (the default), NoAnswer, Drop or Garbage.
	How Manner
	// Status is the reply's _status ("00" when empty).
	Status string
	// Messages are the Error strings.
	Messages []string
	// Raw is what Garbage sends; "$ID" in it becomes the request's _id.
	Raw string
	// Refusal says whether the wording names the PIN, so that a client
	// can tell it is a refusal; other answers leave it unsure (a strike).
	Refusal bool
}

// WrongPINAnswers are wordings a control might use for a wrong PIN; the
// real one is not published. The last was never seen anywhere.
var WrongPINAnswers = []Answer{
	{Name: "message with 口令", Messages: WrongPINMessages, Refusal: true},
	{Name: "code only", Messages: []string{"Err:Custom30015"}},
	{Name: "remaining tries", Messages: []string{"校验失败,剩余重试次数:7"}, Refusal: true},
	{Name: "status word", Messages: []string{"SW=63C7"}, Refusal: true},
	{Name: "status 01", Status: "01", Messages: []string{"口令错误"}, Refusal: true},
	{Name: "never seen", Messages: []string{"操作未完成(0x8010002E)"}},
}

// RudeAnswers are the ways a control may fail to answer a wrong PIN
// usably: it hangs, drops the connection, answers something that is not
// its JSON, or words it as a reader problem or a single letter.
var RudeAnswers = []Answer{
	{Name: "hang", How: NoAnswer},
	{Name: "drop", How: Drop},
	{Name: "garbage", How: Garbage, Raw: `{"_id":$ID,"_method":"cus-sec_SpcSignDataAsPEM","_status":"00","_args":{"Result":"false","Data":[],"Error":"操作失败"}}`},
	{Name: "not JSON", How: Garbage, Raw: `"Result":"false"`},
	{Name: "reader words", Messages: []string{"[读卡器底层库]操作失败"}},
	{Name: "one letter", Messages: []string{"E"}},
}

// Event is one request the control received.
type Event struct {
	// Method is the request's _method.
	Method string
	// WithPIN says the request carried a PIN (args.passwd).
	WithPIN bool
	// OK says the control answered Result true.
	OK bool
	// Arrived and Answered order the request's arrival and its answer
	// among all arrivals and answers (Answered is 0 while unanswered).
	Arrived, Answered int
}

// UncheckedRetries returns the PIN-bearing requests (by arrival) that came
// after a PIN-bearing request that failed (was not answered OK) with no
// PIN-free request answered OK in between: a PIN retried on a card that
// had not been checked since its failure.
func UncheckedRetries(events []Event) []int {
	type point struct {
		seq    int
		ev     Event
		answer bool
	}
	var points []point
	for _, e := range events {
		if e.WithPIN {
			points = append(points, point{e.Arrived, e, false})
		}
		if e.Answered > 0 {
			points = append(points, point{e.Answered, e, true})
		}
	}
	slices.SortFunc(points, func(a, b point) int { return a.seq - b.seq })
	var out []int
	suspect := false
	for _, p := range points {
		switch {
		case !p.answer && suspect:
			out = append(out, p.seq)
		case !p.answer:
			// A PIN-bearing request that is never answered OK leaves the
			// card suspect from its arrival.
			suspect = true
		case p.ev.WithPIN:
			suspect = !p.ev.OK
		case p.ev.OK:
			suspect = false
		}
	}
	return out
}

// LockAfter is how many wrong PINs lock the fake card, as on a real one.
const LockAfter = 3

// Control is a fake E-Port client control.
type Control struct {
	srv    *httptest.Server
	key    crypto.Signer
	cert   *smx509.Certificate
	certPE string
	pin    string

	mu           sync.Mutex
	mode         Mode
	modeLeft     int // sign requests left in mode before Normal; 0: no end
	wrongPIN     Answer
	events       []Event
	seq          int
	pinRequests  int
	interval     time.Duration
	burst        int
	tat          time.Time // when the card is next ready, were it never idle
	signedAt     []time.Time
	signs        int
	signRequests int
	wrongPINs    int
	connections  int
	conns        map[*websocket.Conn]struct{}
	stop         chan struct{}
}

// New starts a fake control on 127.0.0.1 that signs with key for cert and
// accepts pin. It stops when the test ends.
func New(tb testing.TB, key crypto.Signer, cert *smx509.Certificate, pin string) *Control {
	tb.Helper()
	c := &Control{
		key:    key,
		cert:   cert,
		certPE: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		pin:    pin,
		conns:  map[*websocket.Conn]struct{}{},
		stop:   make(chan struct{}),
	}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	tb.Cleanup(c.Close)
	return c
}

// URL returns the control's ws:// address.
func (c *Control) URL() string { return "ws" + strings.TrimPrefix(c.srv.URL, "http") }

// CertNo returns the card's certNo.
func (c *Control) CertNo() string { return signature.CertNo(c.cert) }

// SetMode changes how sign requests are answered from now on.
func (c *Control) SetMode(m Mode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mode = m
}

// SetModeFor answers the next n sign requests as m, then as Normal.
func (c *Control) SetModeFor(m Mode, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mode, c.modeLeft = m, n
}

// SetWrongPINAnswer sets how a wrong PIN is answered from now on.
func (c *Control) SetWrongPINAnswer(a Answer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wrongPIN = a
}

// PINRequests returns how many requests carrying a PIN reached the
// control, whatever their method: the count that must stay below the
// card's lock limit.
func (c *Control) PINRequests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pinRequests
}

// Events returns the requests the control received, in order of arrival
// (answers recorded as they were made).
func (c *Control) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// SetPIN changes the PIN the card accepts from now on, as when someone
// changed it on the card.
func (c *Control) SetPIN(pin string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pin = pin
}

// SetRate makes the card take 1/perMinute of a minute per signature, one
// at a time (250 for a real card). 0 signs at once.
func (c *Control) SetRate(perMinute int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if perMinute <= 0 {
		c.interval = 0
		return
	}
	c.interval = time.Minute / time.Duration(perMinute)
}

// SetBurst makes the card keep up to n signatures' credit while it is idle,
// a token bucket of n refilled at the card's rate: after an idle spell its
// first n signatures cost no wait, and back-to-back signatures come one
// interval apart whatever the client does. 1 is the free first signature
// after idle that real cards show; 0 (the default) makes every signature
// take a full interval.
func (c *Control) SetBurst(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.burst = max(n, 0)
}

// SignedAt returns when the card made each signature, in order: the
// card's own log, to check a rate measured elsewhere against.
func (c *Control) SignedAt() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.signedAt...)
}

// Signs returns how many signatures the card made.
func (c *Control) Signs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signs
}

// SignRequests returns how many sign requests reached the control.
func (c *Control) SignRequests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signRequests
}

// WrongPINs returns how many sign requests carried a wrong PIN.
func (c *Control) WrongPINs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wrongPINs
}

// Connections returns how many WebSocket connections were accepted.
func (c *Control) Connections() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connections
}

// DropConnections closes every open connection, as when the control
// restarts.
func (c *Control) DropConnections() {
	c.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(c.conns))
	for conn := range c.conns {
		conns = append(conns, conn)
	}
	c.mu.Unlock()
	for _, conn := range conns {
		conn.CloseNow()
	}
}

// Close stops the control and releases hung requests.
func (c *Control) Close() {
	c.mu.Lock()
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.mu.Unlock()
	c.DropConnections()
	c.srv.Close()
}

type request struct {
	Method string          `json:"_method"`
	ID     json.RawMessage `json:"_id"`
	Args   map[string]any  `json:"args"`
}

type args struct {
	Result bool     `json:"Result"`
	Data   []string `json:"Data"`
	Error  []string `json:"Error"`
}

type reply struct {
	ID     json.RawMessage `json:"_id"`
	Method string          `json:"_method"`
	Status string          `json:"_status"`
	Args   args            `json:"_args"`
}

func (c *Control) serve(w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.mu.Lock()
	c.connections++
	c.conns[conn] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.conns, conn)
		c.mu.Unlock()
		conn.CloseNow()
	}()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var wmu sync.Mutex
	send := func(rep reply) {
		b, _ := json.Marshal(rep)
		wmu.Lock()
		defer wmu.Unlock()
		_ = conn.Write(ctx, websocket.MessageText, b)
	}
	send(reply{ID: json.RawMessage("0"), Method: "open", Status: "00",
		Args: args{Result: true, Data: []string{"控件连接成功"}, Error: []string{}}})
	for {
		_, msg, err := conn.Read(ctx)
		if err != nil {
			return
		}
		var req request
		if err := json.Unmarshal(msg, &req); err != nil {
			continue
		}
		// Each request is answered on its own, so a quick call overtakes
		// a slow signature and replies go out of order.
		go func() {
			o := c.answer(ctx, req)
			switch {
			case o.drop:
				conn.CloseNow()
			case o.raw != "":
				wmu.Lock()
				defer wmu.Unlock()
				_ = conn.Write(ctx, websocket.MessageText, []byte(strings.ReplaceAll(o.raw, "$ID", string(req.ID))))
			case o.answered:
				send(o.rep)
			}
		}()
	}
}

func ok(data ...string) args { return args{Result: true, Data: data, Error: []string{}} }

func fail(msgs ...string) args { return args{Result: false, Data: []string{}, Error: msgs} }

// outcome is what the control does about one request: send rep (when
// answered), send raw bytes, or drop the connection.
type outcome struct {
	rep      reply
	answered bool
	raw      string
	drop     bool
}

func (c *Control) answer(ctx context.Context, req request) outcome {
	rep := reply{ID: req.ID, Method: req.Method, Status: "00"}
	pin, _ := req.Args["passwd"].(string)
	c.mu.Lock()
	noCard := c.mode == NoCard
	if req.Method == "cus-sec_SpcSignDataAsPEM" {
		c.signRequests++
	}
	if pin != "" {
		c.pinRequests++
	}
	c.seq++
	c.events = append(c.events, Event{Method: req.Method, WithPIN: pin != "", Arrived: c.seq})
	ev := len(c.events) - 1
	c.mu.Unlock()
	record := func(o outcome) outcome {
		c.mu.Lock()
		c.seq++
		c.events[ev].OK = o.answered && o.rep.Args.Result && o.rep.Status == "00"
		if o.answered || o.raw != "" {
			c.events[ev].Answered = c.seq
		}
		c.mu.Unlock()
		return o
	}
	if noCard {
		rep.Args = fail("[读卡器底层库]复位读卡器失败:错误码=50070", "Err:Custom50070")
		return record(outcome{rep: rep, answered: true})
	}
	switch req.Method {
	case "cus-sec_SpcGetCertNo":
		rep.Args = ok(c.CertNo())
	case "cus-sec_SpcGetSignCertAsPEM":
		rep.Args = ok(c.certPE)
	case "cus-sec_SpcSignDataAsPEM":
		a, w := c.sign(ctx, req.Args)
		switch w.How {
		case NoAnswer:
			select {
			case <-ctx.Done():
			case <-c.stop:
			}
			return record(outcome{})
		case Drop:
			return record(outcome{drop: true})
		case Garbage:
			return record(outcome{raw: w.Raw})
		}
		rep.Args = a
		if w.Status != "" {
			rep.Status = w.Status
		}
	default:
		rep.Args = fail("unknown method " + req.Method)
	}
	return record(outcome{rep: rep, answered: true})
}

// sign answers a sign request: the reply's args, or in w another manner
// of answering (and the reply's status).
func (c *Control) sign(ctx context.Context, a map[string]any) (args, Answer) {
	in, _ := a["inData"].(string)
	pin, _ := a["passwd"].(string)
	c.mu.Lock()
	mode := c.mode
	if c.modeLeft > 0 {
		if c.modeLeft--; c.modeLeft == 0 {
			c.mode = Normal
		}
	}
	if c.wrongPINs >= LockAfter {
		c.mu.Unlock()
		return fail("[卡操作]卡已锁死", "Err:Custom30016"), Answer{}
	}
	if pin != c.pin {
		// Counted before the control decides how to fail.
		c.wrongPINs++
		w := c.wrongPIN
		c.mu.Unlock()
		if w.How == Reply && len(w.Messages) == 0 {
			w.Messages = WrongPINMessages
		}
		return fail(w.Messages...), w
	}
	switch mode {
	case Reset50070:
		c.mu.Unlock()
		return fail("[读卡器底层库]复位读卡器失败:错误码=50070", "Err:Custom50070"), Answer{}
	case Open50200:
		c.mu.Unlock()
		return fail("[读卡器底层库]打开读卡器失败:错误码=50200", "Err:Custom50200"), Answer{}
	case CryptoDevice:
		c.mu.Unlock()
		return fail("打开密码设备失败"), Answer{}
	case Hang:
		c.mu.Unlock()
		return args{}, Answer{How: NoAnswer}
	}
	// The card signs one source at a time at its own pace, whatever the
	// client does: the time it takes to compute the signature is part of
	// its interval, and a signature the client gave up on still used it.
	done := c.slotLocked(time.Now())
	c.mu.Unlock()
	v, err := signature.Sign(c.key, []byte(in))
	if err != nil {
		return fail("sign: " + err.Error()), Answer{}
	}
	select {
	case <-time.After(time.Until(done)):
	case <-ctx.Done():
		return args{}, Answer{How: NoAnswer}
	}
	c.mu.Lock()
	c.signs++
	c.signedAt = append(c.signedAt, time.Now())
	c.mu.Unlock()
	return ok(v, c.CertNo()), Answer{}
}

// slotLocked books the card for a signature asked for at now and returns
// when it is done. Without a burst each signature takes a full interval
// after the previous one (or after now, when idle). With a burst of n the
// card is a token bucket (the generic cell rate algorithm): a signature
// is done at once while credit is left, otherwise one interval after the
// previous one. c.mu is held.
func (c *Control) slotLocked(now time.Time) time.Time {
	if c.burst == 0 {
		done := later(c.tat, now).Add(c.interval)
		c.tat = done
		return done
	}
	done := later(c.tat.Add(-time.Duration(c.burst-1)*c.interval), now)
	c.tat = later(done, c.tat).Add(c.interval)
	return done
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
