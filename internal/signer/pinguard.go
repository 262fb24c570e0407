package signer

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// A card locks after a few wrong PINs, and a device's wording of a wrong
// PIN is not published. PINGuard is the one door every PIN goes through
// on its way to a device: Do. Inside it are a pure policy (pinpolicy.go:
// the states of one card's PIN and what moves them) and a store
// (pinstore.go: markers on disk, shared by every process on the machine).
// Its rules:
//
//   - a PIN the card refused, or that a call carried without a usable
//     answer (a strike), is blocked: a marker is written before anyone
//     hears of it, and the PIN is never sent to that card again, by any
//     process sharing the store, until pin-reset or another PIN;
//   - a PIN the card has not accepted in this process since its last
//     failure goes only after a PIN-free check of the card succeeded, and
//     as a trial: exclusive across processes, and recorded before it
//     leaves, so that a process that stops during the call leaves a
//     strike behind;
//   - PIN-bearing calls to one card run one at a time in a process.

// pinHashIterations is the PBKDF2 work factor of a PIN's fingerprint: an
// 8-digit PIN must not be cheap to find from a marker.
var pinHashIterations = 200_000

// PINGuard decides when a PIN may be sent to a card and remembers blocked
// PINs. One PINGuard serves every signer of a process; build it with
// NewPINGuard. Its methods are safe for concurrent use.
type PINGuard struct {
	store pinStore
	dir   string
	key   [32]byte // keys this process's in-memory names of PINs

	mu     sync.Mutex
	cards  map[string]*cardState
	memo   map[string]bool    // salt|hash|pin key -> the PIN matches
	prints map[string]PINMark // pin key -> this process's fingerprint of it
	noted  map[string]string  // signer -> card, as last noted
}

// cardState is what the guard knows of one card in this process.
type cardState struct {
	turn   chan struct{} // one PIN-bearing call at a time
	proven string        // key of the PIN the card accepted at the last call
	marks  []PINMark     // blocked here (also in the store)
}

// Card names the device whose PIN counter a call spends.
type Card struct {
	// ID identifies the device that counts wrong PINs: an E-Port card's
	// certNo, a PKCS#11 token's module and token (not a key on it).
	ID string
	// Signer is the signer entry that uses the card: markers name it and
	// pin-reset finds the card by it.
	Signer string
	// Check, when not nil, asks the device something without the PIN.
	// Before a trial (a PIN the card has not accepted in this process
	// since its last failure) the guard calls it, and sends the PIN only
	// when it succeeds.
	Check func(ctx context.Context) error
}

// PINCall makes one call that carries pin to a device and says how it
// ended: see PINResult. It must use pin (the PIN the guard let through)
// and nothing else. A nil error means the call succeeded and the device
// accepted the PIN.
type PINCall func(ctx context.Context, pin PIN) (PINResult, error)

// ErrPINStruck means a call carried the PIN and got no usable answer: the
// card may have counted a wrong PIN, so the PIN is blocked as if it had
// been refused. It wraps ErrPINRefused.
var ErrPINStruck = fmt.Errorf("%w: struck (no usable answer after the PIN was sent; the card may have counted a wrong PIN)", ErrPINRefused)

// PINBlockedError is returned instead of sending a PIN that is blocked on
// the card. It wraps ErrPINRefused, and ErrPINStruck for a strike.
type PINBlockedError struct {
	// Card identifies the card.
	Card string
	// Signer is the signer entry that sent the PIN when it was blocked.
	Signer string
	// Kind says whether the card refused it or a call struck.
	Kind MarkKind
	// At is when the PIN was blocked.
	At time.Time
	// Path is the marker file.
	Path string
	// Resetter is the signer name to give pin-reset.
	Resetter string
}

// Error says why no PIN was sent and how to clear the marker.
func (e *PINBlockedError) Error() string {
	what := "refused this PIN"
	if e.Kind == MarkStruck {
		what = "got this PIN in a call without a usable answer (a strike)"
	}
	return fmt.Sprintf("%v: card %s %s at %s (signer %s; marker %s); no PIN sent. Fix the PIN file (another PIN is tried once) or run hsmbridge pin-reset %s",
		ErrPINRefused, e.Card, what, e.At.Format(time.RFC3339), e.Signer, e.Path, e.Resetter)
}

// Unwrap returns ErrPINStruck for a strike, ErrPINRefused otherwise.
func (e *PINBlockedError) Unwrap() error {
	if e.Kind == MarkStruck {
		return ErrPINStruck
	}
	return ErrPINRefused
}

// NewPINGuard returns a guard that keeps its markers in dir, created when
// needed. Every process that may send a PIN to the same card must use the
// same dir: it is the machine's memory of that card.
func NewPINGuard(dir string) (*PINGuard, error) {
	if dir == "" {
		return nil, errors.New("signer: the PIN guard needs a state directory")
	}
	return newGuard(diskStore{dir: dir}, dir), nil
}

func newGuard(s pinStore, dir string) *PINGuard {
	g := &PINGuard{store: s, dir: dir, cards: map[string]*cardState{}, memo: map[string]bool{},
		prints: map[string]PINMark{}, noted: map[string]string{}}
	_, _ = rand.Read(g.key[:])
	return g
}

// Dir returns the marker directory.
func (g *PINGuard) Dir() string { return g.dir }

func (g *PINGuard) card(id string) *cardState {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cards[id]
	if c == nil {
		c = &cardState{turn: make(chan struct{}, 1)}
		g.cards[id] = c
	}
	return c
}

// pinKey names pin in this process's memory without holding it.
func (g *PINGuard) pinKey(pin PIN) string {
	m := hmac.New(sha256.New, g.key[:])
	m.Write([]byte(pin.Reveal()))
	return string(m.Sum(nil))
}

// Do is the one door through which a PIN reaches a device; backends
// (E-Port signature, PKCS#11 login, a cipher machine's access password)
// call nothing else to spend one. It makes call with pin on card, or
// returns an error without calling it:
//
//   - a *PINBlockedError when the card refused pin before or a call that
//     carried it struck (in this process or any other sharing the store);
//   - the error of card.Check when pin is on trial (the card has not
//     accepted it in this process since its last failure) and the card
//     did not answer that PIN-free check; or an error wrapping
//     ErrUnavailable when another process holds the card's trial lock
//     until ctx ends, or the store cannot be read or written.
//
// After the call, call's PINResult decides: PINAccepted (or a nil error)
// proves the PIN; PINRefused blocks it as refused; PINUnknown blocks it as
// a strike (the error then wraps ErrPINStruck); PINNotSent changes
// nothing; PINDeviceCode puts the PIN back on trial. A mark is written to
// the store before Do returns, and Do returns call's error (a refusal
// wrapping ErrPINRefused), with the store's error added when the mark
// could not be written (the PIN stays blocked in this process, and the
// trial record stays on disk, so other processes find a strike).
//
// A trial is recorded in the store before the PIN leaves; if the process
// stops during the call the record stays, and the next process to try
// the card blocks that PIN as a strike. A call that panics is treated the
// same way.
func (g *PINGuard) Do(ctx context.Context, card Card, pin PIN, call PINCall) error {
	if g == nil {
		return errors.New("signer: no PIN guard (a signer that sends a PIN needs one)")
	}
	if card.ID == "" {
		return errors.New("signer: PIN guard: no card identity")
	}
	cs := g.card(card.ID)
	select {
	case cs.turn <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%w: wait for card %s: %w", ErrUnavailable, card.ID, ctx.Err())
	}
	defer func() { <-cs.turn }()
	if err := g.Blocked(card, pin); err != nil {
		return err
	}
	key := g.pinKey(pin)
	g.mu.Lock()
	state := pinFresh
	if cs.proven == key {
		state = pinProven
	}
	g.mu.Unlock()
	_, trial := policy.admit(state)
	recorded := false
	if trial {
		lk, err := g.startTrial(ctx, card, pin)
		if err != nil {
			return err
		}
		// Released with the record cleared only once the outcome is in
		// the store; a panic in call leaves it, as a stopped process does.
		defer func() { lk.release(recorded) }()
	}
	if err := ctx.Err(); err != nil {
		recorded = true
		return fmt.Errorf("%w: %w (PIN not sent)", ErrUnavailable, err)
	}
	res, callErr := call(ctx, pin)
	if callErr == nil {
		res = PINAccepted
	} else if errors.Is(callErr, ErrPINRefused) && res != PINUnknown {
		res = PINRefused // a backend's refusal is never read as less
	}
	next, mark := policy.after(state, res)
	g.mu.Lock()
	switch next {
	case pinProven:
		cs.proven = key
	case pinFresh, pinBlocked:
		if cs.proven == key {
			cs.proven = ""
		}
	}
	g.mu.Unlock()
	var err error
	switch mark {
	case markNone:
		recorded = true
		return callErr
	case MarkRefused:
		err = callErr
		if !errors.Is(err, ErrPINRefused) {
			err = fmt.Errorf("%w: %v", ErrPINRefused, callErr)
		}
	case MarkStruck:
		err = fmt.Errorf("%w: %v", ErrPINStruck, callErr)
	}
	m := g.print(pin)
	m.Kind, m.Signer, m.At, m.Reason = mark, card.Signer, time.Now().UTC(), redact(callErr, pin)
	if werr := g.block(card.ID, m); werr != nil {
		return fmt.Errorf("%w (the marker could not be written: %v)", err, werr)
	}
	recorded = true
	return err
}

// startTrial takes the card's trial lock, turns a record left by a holder
// that stopped during its call into a strike, checks the PIN again
// (another process may have blocked it meanwhile), runs the PIN-free
// check and records the PIN before it leaves.
func (g *PINGuard) startTrial(ctx context.Context, card Card, pin PIN) (trialLock, error) {
	lk, err := g.store.lockTrial(ctx, card.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: card %s: %w; PIN withheld", ErrUnavailable, card.ID, err)
	}
	fail := func(err error) (trialLock, error) {
		lk.release(false)
		return nil, err
	}
	if left, ok := lk.leftover(); ok {
		left.Kind = MarkStruck
		left.At = time.Now().UTC()
		left.Reason = "a process stopped during a PIN-bearing call to this card, with no answer recorded (" + left.Reason + ")"
		if err := g.block(card.ID, left); err != nil {
			return fail(fmt.Errorf("%w: card %s: record the strike a stopped process left: %w; PIN withheld", ErrUnavailable, card.ID, err))
		}
	}
	if err := g.Blocked(card, pin); err != nil {
		lk.release(true)
		return nil, err
	}
	if card.Check != nil {
		if err := card.Check(ctx); err != nil {
			lk.release(true)
			return nil, fmt.Errorf("check without the PIN before a PIN try (PIN withheld): %w", err)
		}
	}
	m := g.print(pin)
	m.Kind, m.Signer, m.At = MarkStruck, card.Signer, time.Now().UTC()
	m.Reason = fmt.Sprintf("pid %d", os.Getpid())
	if err := lk.intend(m); err != nil {
		return fail(fmt.Errorf("%w: card %s: record the PIN try in the state directory: %w; PIN withheld", ErrUnavailable, card.ID, err))
	}
	return lk, nil
}

// block records m in the store, then in this process (whether or not the
// store took it): nobody hears of the block before it is on disk.
func (g *PINGuard) block(card string, m PINMark) error {
	err := g.store.add(card, m)
	cs := g.card(card)
	g.mu.Lock()
	cs.marks = append(cs.marks, m)
	g.mu.Unlock()
	if err != nil {
		return fmt.Errorf("write the marker of card %s: %w", card, err)
	}
	return nil
}

// redact returns err's text without the PIN, cut to 300 characters.
func redact(err error, pin PIN) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if !pin.Empty() {
		s = strings.ReplaceAll(s, pin.Reveal(), "[PIN redacted]")
	}
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300])
	}
	return s
}

// Blocked returns a *PINBlockedError when pin is blocked on the card (in
// this process or, through the store, any other), and nil otherwise. It
// sends nothing. A marker that cannot be read withholds every PIN (an
// error wrapping ErrUnavailable). card.Signer is noted as a user of the
// card, so that `pin-reset NAME` finds its marker.
func (g *PINGuard) Blocked(card Card, pin PIN) error {
	if g == nil {
		return errors.New("signer: no PIN guard (a signer that sends a PIN needs one)")
	}
	cs := g.card(card.ID)
	if card.Signer != "" {
		g.note(card.Signer, card.ID)
	}
	g.mu.Lock()
	marks := slices.Clone(cs.marks)
	g.mu.Unlock()
	path := g.store.where(card.ID)
	r, err := g.store.load(card.ID)
	if err != nil {
		return fmt.Errorf("%w: cannot read the PIN marker of card %s, PIN withheld: %w", ErrUnavailable, card.ID, err)
	}
	if r != nil {
		marks = append(marks, r.Refused...)
	}
	for _, m := range marks {
		if g.matches(m, pin) {
			return &PINBlockedError{Card: card.ID, Signer: m.Signer, Kind: m.Kind, At: m.At, Path: path,
				Resetter: cmpString(card.Signer, m.Signer)}
		}
	}
	return nil
}

func cmpString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (g *PINGuard) note(signer, card string) {
	g.mu.Lock()
	done := g.noted[signer] == card
	g.noted[signer] = card
	g.mu.Unlock()
	if !done {
		g.store.note(signer, card)
	}
}

// print returns this process's fingerprint of pin (salted PBKDF2), made
// once per PIN.
func (g *PINGuard) print(pin PIN) PINMark {
	key := g.pinKey(pin)
	g.mu.Lock()
	m, ok := g.prints[key]
	g.mu.Unlock()
	if ok {
		return m
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	m = PINMark{Salt: hex.EncodeToString(salt), Hash: hex.EncodeToString(pinHash(salt, pin))}
	g.mu.Lock()
	g.prints[key] = m
	g.memo[m.Salt+"|"+m.Hash+"|"+key] = true
	g.mu.Unlock()
	return m
}

func pinHash(salt []byte, pin PIN) []byte {
	k, err := pbkdf2.Key(sha256.New, pin.Reveal(), salt, pinHashIterations, 32)
	if err != nil {
		return nil
	}
	return k
}

// matches reports whether pin is the PIN of mark m, memoised because the
// fingerprint is deliberately slow. A fingerprint that cannot be read or
// made matches every PIN: fail safe.
func (g *PINGuard) matches(m PINMark, pin PIN) bool {
	key := m.Salt + "|" + m.Hash + "|" + g.pinKey(pin)
	g.mu.Lock()
	v, ok := g.memo[key]
	g.mu.Unlock()
	if ok {
		return v
	}
	salt, err1 := hex.DecodeString(m.Salt)
	want, err2 := hex.DecodeString(m.Hash)
	got := pinHash(salt, pin)
	v = err1 != nil || err2 != nil || len(want) == 0 || len(got) == 0 || hmac.Equal(got, want)
	g.mu.Lock()
	g.memo[key] = v
	g.mu.Unlock()
	return v
}

// Refusals returns the markers of the store, ordered by card: every card
// with a refused or struck PIN (PINMark.Kind tells which).
func (g *PINGuard) Refusals() ([]PINRefusal, error) {
	return g.store.all()
}

// Reset removes the markers of the cards that the signer entry named
// nameOrCard used, or of the card with that identity, in this process and
// in the store, with any trial record a stopped process left. It returns
// the cards cleared. Run it only after the PIN file was fixed: the next
// call sends the PIN again.
func (g *PINGuard) Reset(nameOrCard string) ([]string, error) {
	rs, err := g.store.all()
	if err != nil {
		return nil, err
	}
	noted := g.store.noted(nameOrCard)
	hit := func(card string, signers []string) bool {
		return slices.Contains(signers, nameOrCard) || strings.EqualFold(card, nameOrCard) || card == noted
	}
	var cleared []string
	for _, r := range rs {
		if !hit(r.Card, r.Signers) {
			continue
		}
		if _, err := g.store.remove(r.Card); err != nil {
			return cleared, err
		}
		cleared = append(cleared, r.Card)
	}
	// A card with no marker yet may still hold the record of a process
	// that stopped during its call.
	for _, card := range []string{noted, nameOrCard} {
		if card != "" && !slices.Contains(cleared, card) {
			removed, err := g.store.remove(card)
			if err != nil {
				return cleared, err
			}
			if removed {
				cleared = append(cleared, card)
			}
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, c := range g.cards {
		signers := []string{}
		for _, m := range c.marks {
			signers = append(signers, m.Signer)
		}
		if hit(id, signers) || slices.Contains(cleared, id) {
			c.marks = nil
			if !slices.Contains(cleared, id) {
				cleared = append(cleared, id)
			}
		}
	}
	return cleared, nil
}

// ImportMarkers merges the markers kept in dir (where an older hsmbridge
// kept them, next to its configuration file) into the guard's store, and
// renames dir so that they are imported once (a later pin-reset stays
// done). It returns how many marks it imported.
func (g *PINGuard) ImportMarkers(dir string) (int, error) {
	if dir == "" || filepath.Clean(dir) == filepath.Clean(g.dir) {
		return 0, nil
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	old, err := diskStore{dir: dir}.all()
	if err != nil {
		return 0, fmt.Errorf("read the PIN markers in %s: %w", dir, err)
	}
	n := 0
	for _, r := range old {
		have, err := g.store.load(r.Card)
		if err != nil {
			return n, err
		}
		for _, m := range r.Refused {
			if have != nil && slices.ContainsFunc(have.Refused, func(h PINMark) bool { return h.Salt == m.Salt && h.Hash == m.Hash }) {
				continue
			}
			if err := g.store.add(r.Card, m); err != nil {
				return n, err
			}
			n++
		}
	}
	if err := os.Rename(dir, dir+".imported"); err != nil {
		return n, fmt.Errorf("the PIN markers in %s were imported into %s, but the folder could not be renamed (they will be imported again): %w", dir, g.dir, err)
	}
	return n, nil
}
