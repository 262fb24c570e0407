package signer

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A card locks after a few wrong PINs, and the control's wording of a
// wrong PIN is not published. PINGuard is the one door every PIN goes
// through on its way to a device (an E-Port card's signature, a PKCS#11
// login). It keeps three rules:
//
//   - a refused PIN stays refused: a marker keyed by the card is written to
//     disk before the caller hears of the refusal, and while it stands the
//     same PIN is never sent to that card again, by this process or any
//     other that shares the state directory;
//   - a card that is not proven (it never signed, or its last PIN-bearing
//     call failed) gets the PIN only after a PIN-free check of the card
//     succeeded (Probed), and then once: it must sign before it gets a
//     second try;
//   - PIN-bearing calls to one card run one at a time, even from several
//     signer entries pointing at it, so a refusal is recorded before the
//     next call can start.

// pinHashIterations is the PBKDF2 work factor of a refused PIN's
// fingerprint: an 8-digit PIN must not be cheap to find from a marker.
var pinHashIterations = 200_000

// PINGuard decides when a PIN may be sent to a card and remembers refused
// PINs. One PINGuard serves every signer of a process; build it with
// NewPINGuard. Its methods are safe for concurrent use.
type PINGuard struct {
	dir string

	mu    sync.Mutex
	cards map[string]*cardState
	memo  map[string]bool   // salt|hash|pin -> the PIN matches
	noted map[string]string // signer name -> card, as last written
}

// cardState is what the guard knows of one card in this process.
type cardState struct {
	turn    chan struct{} // one PIN-bearing call at a time
	proven  bool          // the last PIN-bearing call succeeded
	tickets int           // PIN-bearing tries left while not proven
	words   int           // PIN-bearing calls in a row answered in device words only
	refused []pinPrint    // refusals seen by this process (also on disk)
}

// pinPrint is the salted fingerprint of a refused PIN.
type pinPrint struct {
	Salt   string    `json:"salt"`
	Hash   string    `json:"hash"`
	Signer string    `json:"signer"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// PINRefusal is a refused-PIN marker: the card and the refusals recorded
// for it. It holds no PIN, only salted PBKDF2 fingerprints.
type PINRefusal struct {
	// Card identifies the card: its certNo for an E-Port card.
	Card string `json:"card"`
	// Signers are the names of the signer entries that used this card.
	Signers []string `json:"signers"`
	// Refused are the refused PINs' fingerprints, oldest first.
	Refused []pinPrint `json:"refused"`
	// Path is the marker file (not stored in it).
	Path string `json:"-"`
}

// Last returns when the PIN was last refused and the device's words.
func (r PINRefusal) Last() (time.Time, string) {
	if len(r.Refused) == 0 {
		return time.Time{}, ""
	}
	p := r.Refused[len(r.Refused)-1]
	return p.At, p.Reason
}

// PINBlockedError is returned instead of sending a PIN that the card
// already refused. It wraps ErrPINRefused.
type PINBlockedError struct {
	// Card identifies the card.
	Card string
	// Signer is the signer entry that was refused first.
	Signer string
	// At is when the PIN was refused.
	At time.Time
	// Path is the marker file, empty when the guard keeps no directory.
	Path string
}

// Error says why no PIN was sent and how to clear the marker.
func (e *PINBlockedError) Error() string {
	where := "in memory"
	if e.Path != "" {
		where = e.Path
	}
	return fmt.Sprintf("%v: card %s refused this PIN at %s (signer %s; marker %s); no PIN sent. Fix the PIN file (a changed PIN is tried once) or run hsmbridge pin-reset %s",
		ErrPINRefused, e.Card, e.At.Format(time.RFC3339), e.Signer, where, e.Signer)
}

// Unwrap returns ErrPINRefused.
func (e *PINBlockedError) Unwrap() error { return ErrPINRefused }

// ErrNotProven means the PIN was withheld because the card has not passed
// a PIN-free check since its last failed PIN-bearing call. It wraps
// ErrUnavailable: the signer rests and is checked again.
var ErrNotProven = fmt.Errorf("%w: card not checked without the PIN since its last failure; PIN withheld", ErrUnavailable)

// NewPINGuard returns a guard that keeps its markers in dir (created when
// needed). An empty dir keeps them in memory only, for tests and for
// signers that have no PIN.
func NewPINGuard(dir string) *PINGuard {
	return &PINGuard{dir: dir, cards: map[string]*cardState{}, memo: map[string]bool{}, noted: map[string]string{}}
}

// Dir returns the marker directory, empty when markers live in memory.
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

// Probed records that a PIN-free check of the card succeeded: a card that
// is not proven may now be sent the PIN once.
func (g *PINGuard) Probed(card string) {
	c := g.card(card)
	g.mu.Lock()
	defer g.mu.Unlock()
	if !c.proven {
		c.tickets = 1
	}
}

// Blocked returns a *PINBlockedError when the card refused pin before
// (in this process or, through the marker, any other), and nil otherwise.
// It sends nothing to the card. signer, when not empty, is noted as a user
// of the card, so that `pin-reset NAME` finds the card's marker.
func (g *PINGuard) Blocked(card, signer string, pin PIN) error {
	c := g.card(card)
	g.mu.Lock()
	mem := slices.Clone(c.refused)
	g.mu.Unlock()
	var path string
	prints := mem
	if g.dir != "" {
		if signer != "" {
			g.noteSigner(signer, card)
		}
		r, err := g.read(card)
		switch {
		case err != nil:
			// A marker that cannot be read may be a refusal: the PIN is
			// withheld until it can be read.
			return fmt.Errorf("%w: cannot read the refused-PIN marker of card %s, PIN withheld: %w", ErrUnavailable, card, err)
		case r != nil:
			path = r.Path
			prints = append(prints, r.Refused...)
		}
	}
	for _, p := range prints {
		if g.matches(p, pin) {
			return &PINBlockedError{Card: card, Signer: p.Signer, At: p.At, Path: path}
		}
	}
	return nil
}

// Begin is called right before pin goes to the card. It waits for the
// card's turn, and returns an error (sending nothing) when the PIN was
// refused before (*PINBlockedError) or the card is not proven and has no
// try left (ErrNotProven). Otherwise the caller sends the PIN and must
// call done with the call's outcome: a refusal (an error wrapping
// ErrPINRefused) is written to disk before done returns, and done returns
// the error of that write, if any (the refusal still stands in memory).
func (g *PINGuard) Begin(ctx context.Context, card, signer string, pin PIN) (done func(error) error, err error) {
	c := g.card(card)
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: wait for the card: %w", ErrUnavailable, ctx.Err())
	}
	release := func() { <-c.turn }
	if err := g.Blocked(card, signer, pin); err != nil {
		release()
		return nil, err
	}
	g.mu.Lock()
	trial := !c.proven
	if trial {
		if c.tickets == 0 {
			g.mu.Unlock()
			release()
			return nil, ErrNotProven
		}
		c.tickets--
	}
	g.mu.Unlock()
	unlock := func() {}
	if trial && g.dir != "" {
		// A try on a card that is not proven is exclusive across the
		// processes sharing the state directory, so two of them starting
		// together cannot both spend a try.
		var err error
		if unlock, err = g.lockTrial(card); err != nil {
			release()
			return nil, err
		}
	}
	var once sync.Once
	return func(callErr error) error {
		var werr error
		once.Do(func() {
			defer release()
			defer unlock()
			g.mu.Lock()
			c.proven = callErr == nil
			c.tickets = 0
			g.mu.Unlock()
			switch {
			case callErr == nil:
				werr = g.clearWordStrikes(card)
			case errors.Is(callErr, ErrPINRefused):
				werr = g.refuse(card, signer, pin, callErr)
			case errors.Is(callErr, errDeviceWords):
				werr = g.wordStrike(card, signer, pin, callErr)
			}
		})
		return werr
	}, nil
}

// MaxDeviceWords is how many PIN-bearing calls in a row, with no
// signature in between, a card may answer with a device error named in
// words only (no known code) before the answers are taken as a refused
// PIN. Such a wording is most likely a device fault, and one or two are
// forgiven; but a wrong PIN could be worded the same way, and an endless
// run of them would lock the card. Cards allow more wrong PINs than this.
const MaxDeviceWords = 3

// strikePath is the file that counts a card's run of device errors in
// words only, so that a restart does not start the run afresh.
func (g *PINGuard) strikePath(card string) string {
	return filepath.Join(g.dir, strings.TrimSuffix(markerName(card), ".json")+".words")
}

// wordStrike counts one more answer in device words only to a PIN-bearing
// call, and records a refusal when the run reaches MaxDeviceWords.
func (g *PINGuard) wordStrike(card, signer string, pin PIN, why error) error {
	c := g.card(card)
	g.mu.Lock()
	c.words++
	n := c.words
	g.mu.Unlock()
	if g.dir != "" {
		// The count on disk wins when it is higher (another process, or a
		// run before a restart). An unreadable count is taken as full.
		disk := 0
		if b, err := os.ReadFile(g.strikePath(card)); err == nil {
			if disk, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
				disk = MaxDeviceWords
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			disk = MaxDeviceWords
		}
		n = max(n, disk+1)
		g.mu.Lock()
		c.words = n
		g.mu.Unlock()
		if n < MaxDeviceWords {
			err := os.MkdirAll(g.dir, 0o700)
			if err == nil {
				err = os.WriteFile(g.strikePath(card), []byte(strconv.Itoa(n)), 0o600)
			}
			if err != nil {
				return g.refuse(card, signer, pin, fmt.Errorf("%w: cannot count device errors of card %s (%v); taken as refused: %w", ErrPINRefused, card, err, why))
			}
		}
	}
	if n < MaxDeviceWords {
		return nil
	}
	return g.refuse(card, signer, pin, fmt.Errorf("%w: %d PIN-bearing calls in a row answered in device words with no known code, taken as refused (last: %w)", ErrPINRefused, n, why))
}

// clearWordStrikes ends a card's run of device errors in words only: it
// signed.
func (g *PINGuard) clearWordStrikes(card string) error {
	c := g.card(card)
	g.mu.Lock()
	had := c.words
	c.words = 0
	g.mu.Unlock()
	if g.dir == "" {
		return nil
	}
	if err := os.Remove(g.strikePath(card)); err != nil && !errors.Is(err, fs.ErrNotExist) && had > 0 {
		return err
	}
	return nil
}

// trialStale is how old a trial lock may be before it is taken as left
// behind by a process that died during its call.
const trialStale = 2 * time.Minute

// lockTrial takes the card's trial lock file in the state directory, or
// returns an error wrapping ErrUnavailable when another process holds it.
func (g *PINGuard) lockTrial(card string) (func(), error) {
	if err := os.MkdirAll(g.dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: state directory: %w", ErrUnavailable, err)
	}
	path := filepath.Join(g.dir, strings.TrimSuffix(markerName(card), ".json")+".trial")
	for range 2 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintf(f, "pid %d since %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w: trial lock of card %s: %w", ErrUnavailable, card, err)
		}
		if st, serr := os.Stat(path); serr == nil && time.Since(st.ModTime()) > trialStale {
			os.Remove(path)
			continue
		}
		break
	}
	return nil, fmt.Errorf("%w: another process is trying the PIN on card %s (%s); PIN withheld", ErrUnavailable, card, path)
}

// refuse records a refusal in memory and on disk.
func (g *PINGuard) refuse(card, signer string, pin PIN, why error) error {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	reason := why.Error()
	if !pin.Empty() {
		reason = strings.ReplaceAll(reason, pin.Reveal(), "[PIN redacted]")
	}
	if r := []rune(reason); len(r) > 300 {
		reason = string(r[:300])
	}
	p := pinPrint{Salt: hex.EncodeToString(salt), Hash: hex.EncodeToString(pinHash(salt, pin)), Signer: signer, At: time.Now().UTC(), Reason: reason}
	c := g.card(card)
	g.mu.Lock()
	c.refused = append(c.refused, p)
	g.mu.Unlock()
	if g.dir == "" {
		return nil
	}
	r, err := g.read(card)
	if err != nil || r == nil {
		r = &PINRefusal{Card: card}
	}
	if !slices.Contains(r.Signers, signer) {
		r.Signers = append(r.Signers, signer)
	}
	r.Refused = append(r.Refused, p)
	if err := g.write(r); err != nil {
		return fmt.Errorf("write refused-PIN marker of card %s: %w", card, err)
	}
	return nil
}

func pinHash(salt []byte, pin PIN) []byte {
	k, err := pbkdf2.Key(sha256.New, pin.Reveal(), salt, pinHashIterations, 32)
	if err != nil {
		return nil
	}
	return k
}

// matches reports whether pin is the refused PIN p, memoised because the
// fingerprint is deliberately slow.
func (g *PINGuard) matches(p pinPrint, pin PIN) bool {
	key := p.Salt + "|" + p.Hash + "|" + pin.Reveal()
	g.mu.Lock()
	v, ok := g.memo[key]
	g.mu.Unlock()
	if ok {
		return v
	}
	salt, err1 := hex.DecodeString(p.Salt)
	want, err2 := hex.DecodeString(p.Hash)
	// A fingerprint that cannot be read or made matches every PIN: fail
	// safe.
	got := pinHash(salt, pin)
	v = err1 != nil || err2 != nil || len(want) == 0 || len(got) == 0 || hmac.Equal(got, want)
	g.mu.Lock()
	g.memo[key] = v
	g.mu.Unlock()
	return v
}

// signerFile is where the card a signer entry last used is noted, so that
// `pin-reset NAME` finds the card of an entry that was never refused
// itself (a second entry for the card).
func (g *PINGuard) signerFile(signer string) string {
	return filepath.Join(g.dir, "signers", hex.EncodeToString([]byte(signer)))
}

// noteSigner records that signer uses card, in its own small file: the
// markers themselves are only ever written on a refusal.
func (g *PINGuard) noteSigner(signer, card string) {
	g.mu.Lock()
	done := g.noted[signer] == card
	g.mu.Unlock()
	if done {
		return
	}
	path := g.signerFile(signer)
	if b, err := os.ReadFile(path); err != nil || string(b) != card {
		if os.MkdirAll(filepath.Dir(path), 0o700) != nil || os.WriteFile(path, []byte(card), 0o600) != nil {
			return
		}
	}
	g.mu.Lock()
	g.noted[signer] = card
	g.mu.Unlock()
}

// markerName is the file name of a card's marker: the certNo when it is
// plain hex, a digest of the identity otherwise.
func markerName(card string) string {
	plain := card != "" && len(card) <= 64 && strings.Trim(strings.ToLower(card), "0123456789abcdef") == ""
	if plain {
		return strings.ToLower(card) + ".json"
	}
	sum := sha256.Sum256([]byte(card))
	return "id-" + hex.EncodeToString(sum[:12]) + ".json"
}

func (g *PINGuard) read(card string) (*PINRefusal, error) {
	return readMarker(filepath.Join(g.dir, markerName(card)))
}

// readMarker reads the marker at path; nil when there is none.
func readMarker(path string) (*PINRefusal, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r PINRefusal
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("marker %s: %w", path, err)
	}
	r.Path = path
	return &r, nil
}

// write stores r atomically (a temporary file renamed over the marker).
func (g *PINGuard) write(r *PINRefusal) error {
	if err := os.MkdirAll(g.dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(g.dir, markerName(r.Card))
	f, err := os.CreateTemp(g.dir, ".marker-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	r.Path = path
	return nil
}

// Refusals returns the markers on disk, ordered by card.
func (g *PINGuard) Refusals() ([]PINRefusal, error) {
	if g.dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(g.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []PINRefusal
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		r, err := readMarker(filepath.Join(g.dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Card < out[b].Card })
	return out, nil
}

// Reset removes the markers of the cards that the signer entry named
// nameOrCard used, or of the card with that identity, in memory and on
// disk. It returns the cards cleared. Run it only after the PIN file was
// fixed: the next call sends the PIN again.
func (g *PINGuard) Reset(nameOrCard string) ([]string, error) {
	rs, err := g.Refusals()
	if err != nil {
		return nil, err
	}
	noted := ""
	if b, err := os.ReadFile(g.signerFile(nameOrCard)); err == nil {
		noted = string(b)
	}
	var cleared []string
	for _, r := range rs {
		if !slices.Contains(r.Signers, nameOrCard) && !strings.EqualFold(r.Card, nameOrCard) && r.Card != noted {
			continue
		}
		if err := os.Remove(r.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return cleared, err
		}
		if err := os.Remove(g.strikePath(r.Card)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return cleared, err
		}
		cleared = append(cleared, r.Card)
	}
	g.mu.Lock()
	for id, c := range g.cards {
		hit := strings.EqualFold(id, nameOrCard) || id == noted || slices.Contains(cleared, id)
		for _, p := range c.refused {
			hit = hit || p.Signer == nameOrCard
		}
		if hit {
			c.refused = nil
			c.words = 0
			if !slices.Contains(cleared, id) {
				cleared = append(cleared, id)
			}
		}
	}
	g.mu.Unlock()
	return cleared, nil
}
