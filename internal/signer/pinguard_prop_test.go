package signer

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// The property test of the PIN guard: random sequences of what a control
// does with a PIN-bearing call (sign, refuse in any words and status,
// fail with a known code, hang before or after the card read the PIN,
// drop the connection, answer garbage or free words, die mid-call) and of
// what happens around it (a restart, a second process, a second
// configuration folder, a changed PIN file, pin-reset), against a fake
// card that locks after 3 wrong PINs and counts every PIN it is given.
// The guards are the real PINGuard over a real state directory (or the
// memory store), the replies go through the E-Port signer's own decoder
// and classifier.

// behaviour is what the control does with one PIN-bearing call. The order
// matters to shrinking: rapid reports the earliest behaviour that fails.
type behaviour int

const (
	answers    behaviour = iota // the card checks the PIN; the control says what it said
	deviceCode                  // the reader fails with a known code before the card sees the PIN
	notSent                     // the connection is refused: nothing is written
	hangBefore                  // the control takes the request and hangs before the card sees it
	hangAfter                   // the card checks the PIN, the control never answers
	drop                        // the card checks the PIN, the connection drops
	garbage                     // the card checks the PIN, the control answers garbage
	words                       // the card checks the PIN, the control answers in free words
	kill                        // the card checks the PIN, the process dies before the answer
)

var behaviourNames = []string{"answers", "deviceCode", "notSent", "hangBefore", "hangAfter", "drop", "garbage", "words", "kill"}

func (b behaviour) String() string { return behaviourNames[b] }

// fakeCard is the card: it locks after LockAfter wrong PINs in a row and
// counts every PIN it is given, by value, since the last pin-reset.
type fakeCard struct {
	pin    string
	wrong  int
	locked bool
	given  map[string]int
}

const cardLockAfter = 3

// give hands pin to the card and returns what the card said.
func (c *fakeCard) give(pin string) (ok bool) {
	c.given[pin]++
	switch {
	case c.locked:
		return false
	case pin == c.pin:
		c.wrong = 0
		return true
	}
	c.wrong++
	c.locked = c.wrong >= cardLockAfter
	return false
}

// refusals are ways a control may word a wrong PIN (or a locked card).
var refusals = []struct{ status, msg string }{
	{"00", "[卡操作]校验用户口令失败:口令错误"},
	{"00", "Err:Custom30015"},
	{"00", "校验失败,剩余重试次数:7"},
	{"00", "SW=63C7"},
	{"01", "口令错误"},
	{"00", "操作未完成(0x8010002E)"},
	{"00", "[卡操作]卡已锁死"},
	{"02", ""},
}

// garbages are replies that are not the control's JSON.
var garbages = []string{
	`"Result":"false"`,
	`{"_id":1,"_args":{"Result":"false","Error":"口令错误"}}`,
	`{"_id":1,"_args":{"Result":false,"Error":{"code":1}}}`,
	`{"_id":1,"_status":0,"_args":{"Result":true,"Data":["c2ln"]}}`,
	`{"_id":1,"_args":{"Result":true,"Data":"c2ln"}}`,
	`<html>502 Bad Gateway</html>`,
	``,
}

// control is how the call's wait ends: with a message, a dropped
// connection, or no answer (the call timeout).
type control int

const (
	reply control = iota
	dropped
	silent
)

// await runs the E-Port signer's own wait for a reply, decoder and
// classifier, as for a PIN-bearing call: msg arrives (the read loop drops
// a message that is not JSON, so the call times out), the connection
// drops, or nothing comes until the call timeout.
func await(how control, msg string) (PINResult, error) {
	ch, gone := make(chan eportReply, 1), make(chan struct{})
	wait, cancel := context.WithCancel(context.Background())
	switch how {
	case reply:
		if r, err := decodeReply([]byte(msg)); err == nil {
			ch <- r
		} else {
			cancel()
		}
	case dropped:
		close(gone)
	case silent:
		cancel()
	}
	defer cancel()
	_, res, err := awaitReply(wait, ch, gone, MethodSign, true, DefaultPINErrorMarkers)
	return res, err
}

func replyJSON(result bool, status string, msgs ...string) string {
	b, _ := json.Marshal(map[string]any{"_id": 1, "_status": status,
		"_args": map[string]any{"Result": result, "Data": []string{}, "Error": msgs}})
	return string(b)
}

// process is one running hsmbridge (or check, or ceb179 local): a guard
// over the shared store, the signer name and PIN of its configuration.
type process struct {
	guard     *PINGuard
	signer    string
	pin       string
	needCheck bool // no PIN may go before a PIN-free check succeeds
}

// cardID is the card's certNo.
const cardID = "03000000000cde6f"

// errKilled is what a killed process's call panics with.
var errKilled = errors.New("process killed mid-call")

type guardMachine struct {
	store   func() pinStore
	card    *fakeCard
	pins    map[string]string // configuration folder -> its PIN file
	procs   []*process
	correct string
	wrongs  []string
	// correctStruck says the correct PIN may be blocked: a call that
	// carried it ended without a usable answer, or the card is locked.
	correctStruck bool
	checkOK       bool
	stats         *propStats
}

// propStats counts what the sequences did, to show they reach every case.
type propStats struct {
	steps    int
	sent     [kill + 1]int // calls made, by behaviour
	withheld int           // PINs withheld because they were blocked
}

func newGuardMachine(t *rapid.T, store func() pinStore, stats *propStats) *guardMachine {
	m := &guardMachine{store: store, stats: stats, correct: "88888888", wrongs: []string{"11111111", "22222222", "12345678"}}
	m.card = &fakeCard{pin: m.correct, given: map[string]int{}}
	m.pins = map[string]string{
		"A": rapid.SampledFrom(append([]string{m.correct}, m.wrongs...)).Draw(t, "pin A"),
		"B": rapid.SampledFrom(append([]string{m.correct}, m.wrongs...)).Draw(t, "pin B"),
	}
	m.start("A")
	return m
}

// start runs a process with the configuration of folder cfg.
func (m *guardMachine) start(cfg string) {
	g := newGuard(m.store(), "")
	m.procs = append(m.procs, &process{guard: g, signer: "card-" + cfg, pin: m.pins[cfg], needCheck: true})
}

func (m *guardMachine) pick(t *rapid.T) (int, *process) {
	i := rapid.IntRange(0, len(m.procs)-1).Draw(t, "process")
	return i, m.procs[i]
}

// Sign has a process send its PIN in a call the control answers as drawn.
func (m *guardMachine) Sign(t *rapid.T) {
	if len(m.procs) == 0 {
		m.start("A")
	}
	i, p := m.pick(t)
	b := behaviour(rapid.IntRange(0, int(kill)).Draw(t, "behaviour"))
	m.checkOK = rapid.IntRange(0, 4).Draw(t, "check") > 0
	refusal := rapid.SampledFrom(refusals).Draw(t, "refusal")
	junk := rapid.SampledFrom(garbages).Draw(t, "garbage")
	free := rapid.StringMatching(`[a-zA-Z读卡器底层库操作失败未知错误\[\]: ]{0,16}`).Draw(t, "words")
	reader := rapid.SampledFrom([]string{"Err:Custom50070", "[读卡器底层库]打开读卡器失败:错误码=50200", "Err:Base60408"}).Draw(t, "code")
	card := Card{ID: cardID, Signer: p.signer, Check: func(context.Context) error {
		if !m.checkOK {
			return fmt.Errorf("%w: 50070 on the PIN-free check", ErrDevice)
		}
		p.needCheck = false
		return nil
	}}
	called := false
	call := func(_ context.Context, pin PIN) (PINResult, error) {
		called = true
		if p.needCheck {
			t.Fatalf("process %d sent its PIN with no PIN-free check since its last failure", i)
		}
		switch b {
		case notSent:
			return PINNotSent, fmt.Errorf("%w: connection refused", ErrUnavailable)
		case deviceCode:
			return await(reply, replyJSON(false, "00", reader))
		case hangBefore:
			return await(silent, "")
		}
		ok := m.card.give(pin.Reveal())
		switch b {
		case answers:
			if ok {
				return await(reply, replyJSON(true, "00"))
			}
			return await(reply, replyJSON(false, refusal.status, refusal.msg))
		case hangAfter:
			return await(silent, "")
		case drop:
			return await(dropped, "")
		case garbage:
			return await(reply, junk)
		case words:
			if ok {
				return await(reply, replyJSON(true, "00"))
			}
			return await(reply, replyJSON(false, "00", free))
		}
		panic(errKilled)
	}
	err, killed := m.do(p, card, call)
	m.stats.steps++
	switch {
	case called:
		m.stats.sent[b]++
	case errors.Is(err, ErrPINRefused):
		m.stats.withheld++
	}
	if killed {
		if p.pin == m.correct {
			m.correctStruck = true
		}
		m.procs = slices.Delete(m.procs, i, i+1)
		return
	}
	ambiguous := b == hangBefore || b == hangAfter || b == drop || b == garbage
	if p.pin == m.correct && ambiguous && err != nil {
		m.correctStruck = true
	}
	if m.card.locked {
		m.correctStruck = true
	}
	if called && err != nil && b != notSent {
		p.needCheck = true
	}
	if p.pin == m.correct && errors.Is(err, ErrPINRefused) && !m.correctStruck {
		t.Fatalf("the correct PIN is blocked though no call that carried it went without a usable answer: %v", err)
	}
}

// do runs the door; a panic of the call is the process dying.
func (m *guardMachine) do(p *process, card Card, call PINCall) (err error, killed bool) {
	defer func() {
		if r := recover(); r != nil {
			if r != errKilled {
				panic(r)
			}
			killed = true
		}
	}()
	return p.guard.Do(context.Background(), card, NewPIN(p.pin), call), false
}

// Restart stops a process and starts its configuration again.
func (m *guardMachine) Restart(t *rapid.T) {
	if len(m.procs) == 0 {
		t.Skip("no process")
	}
	i, p := m.pick(t)
	m.procs = slices.Delete(m.procs, i, i+1)
	m.start(strings.TrimPrefix(p.signer, "card-"))
}

// Second starts another process, of configuration folder A or B, beside
// the running ones.
func (m *guardMachine) Second(t *rapid.T) {
	if len(m.procs) >= 3 {
		t.Skip("enough processes")
	}
	m.start(rapid.SampledFrom([]string{"A", "B"}).Draw(t, "folder"))
}

// ChangePIN writes another PIN into a configuration folder's PIN file; it
// is read when a process of that configuration starts.
func (m *guardMachine) ChangePIN(t *rapid.T) {
	cfg := rapid.SampledFrom([]string{"A", "B"}).Draw(t, "folder")
	m.pins[cfg] = rapid.SampledFrom(append([]string{m.correct}, m.wrongs...)).Draw(t, "pin")
}

// Reset runs pin-reset (a process of its own) by a signer name or the
// card's certNo. It is run after the card's issuer unlocked it.
func (m *guardMachine) Reset(t *rapid.T) {
	name := rapid.SampledFrom([]string{"card-A", "card-B", cardID}).Draw(t, "name")
	cleared, err := newGuard(m.store(), "").Reset(name)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cleared, cardID) {
		return // a name that never used the card
	}
	m.card.given = map[string]int{}
	m.card.locked, m.card.wrong = false, 0
	m.correctStruck = false
	// A running process keeps the blocks it saw in memory until it
	// restarts: only the PINs the card is given are counted afresh.
	for _, p := range m.procs {
		p.guard.mu.Lock()
		for _, c := range p.guard.cards {
			if len(c.marks) > 0 && p.pin == m.correct {
				m.correctStruck = true
			}
		}
		p.guard.mu.Unlock()
	}
}

// Check is the invariant: a wrong PIN reaches the card at most once since
// the last pin-reset.
func (m *guardMachine) Check(t *rapid.T) {
	for pin, n := range m.card.given {
		if pin != m.correct && n > 1 {
			t.Fatalf("the card was given wrong PIN %s %d times", pin, n)
		}
	}
}

// TestPINGuardProperty runs the state machine over the memory store (20
// rounds of rapid's checks: 2000 random sequences of about 30 steps with
// the default 100 checks) and over a real state directory (2 rounds: its
// synced writes make each sequence slower). -rapid.checks scales both.
func TestPINGuardProperty(t *testing.T) {
	// A failing sequence is printed, not saved in the source tree.
	if err := flag.Set("rapid.nofailfile", "true"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind   string
		rounds int
	}{{"memory", 20}, {"disk", 2}} {
		t.Run("ok "+tc.kind, func(t *testing.T) {
			sequences, stats := 0, &propStats{}
			for range tc.rounds {
				rapid.Check(t, func(rt *rapid.T) {
					sequences++
					var store func() pinStore
					switch tc.kind {
					case "disk":
						dir, err := os.MkdirTemp(t.TempDir(), "state")
						if err != nil {
							rt.Fatal(err)
						}
						store = func() pinStore { return diskStore{dir: dir} }
					default:
						ms := newMemStore()
						store = func() pinStore { return ms }
					}
					m := newGuardMachine(rt, store, stats)
					rt.Repeat(rapid.StateMachineActions(m))
				})
			}
			t.Logf("%d sequences, %d PIN-bearing steps; PINs withheld as blocked: %d", sequences, stats.steps, stats.withheld)
			for b, n := range stats.sent {
				t.Logf("  calls made, control %s: %d", behaviour(b), n)
			}
		})
	}
}
