package signer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// MarkKind says why a PIN is blocked on a card.
type MarkKind string

const (
	// MarkRefused: the card refused the PIN.
	MarkRefused MarkKind = "refused"
	// MarkStruck: a call that carried the PIN got no usable answer (a
	// timeout, a dropped connection, a reply that is not the device's
	// protocol, words without a known code, a process that stopped during
	// the call). The card may have counted a wrong PIN.
	MarkStruck MarkKind = "struck"
)

// PINMark is one blocked PIN of a card: a salted PBKDF2 fingerprint,
// never the PIN.
type PINMark struct {
	// Kind is refused or struck (a marker written before strikes existed
	// has none, and is read as refused).
	Kind MarkKind `json:"kind,omitempty"`
	// Salt and Hash are the PIN's fingerprint (hex).
	Salt string `json:"salt"`
	Hash string `json:"hash"`
	// Signer is the signer entry that sent the PIN.
	Signer string `json:"signer"`
	// At is when the PIN was blocked.
	At time.Time `json:"at"`
	// Reason is the device's words or what went wrong (PIN redacted).
	Reason string `json:"reason,omitempty"`
}

// Struck reports whether the mark is a strike rather than a refusal.
func (m PINMark) Struck() bool { return m.Kind == MarkStruck }

// PINRefusal is the marker of one card: the PINs blocked on it. It holds
// no PIN, only fingerprints.
type PINRefusal struct {
	// Card identifies the card: an E-Port card's certNo, a PKCS#11
	// token's module and token.
	Card string `json:"card"`
	// Signers are the names of the signer entries that used this card.
	Signers []string `json:"signers"`
	// Refused are the blocked PINs (refusals and strikes), oldest first.
	Refused []PINMark `json:"refused"`
	// Path is where the marker is kept (not stored in it).
	Path string `json:"-"`
}

// Last returns the newest mark (the zero PINMark when there is none).
func (r PINRefusal) Last() PINMark {
	if len(r.Refused) == 0 {
		return PINMark{}
	}
	return r.Refused[len(r.Refused)-1]
}

// pinStore is the guard's memory of cards, shared by the processes that
// use the same store. Markers only grow until remove.
type pinStore interface {
	// load returns the card's marker, nil when there is none.
	load(card string) (*PINRefusal, error)
	// add appends m to the card's marker, durably, before it returns.
	add(card string, m PINMark) error
	// all returns every marker, ordered by card.
	all() ([]PINRefusal, error)
	// remove deletes the card's marker and a trial record left behind,
	// and reports whether there was either.
	remove(card string) (bool, error)
	// lockTrial takes the card's trial lock, waiting while another holder
	// has it until ctx ends.
	lockTrial(ctx context.Context, card string) (trialLock, error)
	// note records that signer uses card; noted returns the card noted.
	note(signer, card string)
	noted(signer string) string
	// where names the place of the card's marker, for messages.
	where(card string) string
}

// trialLock is a card's trial lock, exclusive among the processes sharing
// a store. It holds a record of the PIN in flight, written before the PIN
// leaves and cleared when the call's outcome is recorded; a record found
// on taking the lock was left by a holder that stopped during its call.
type trialLock interface {
	// leftover returns the record a holder left behind, if any. A record
	// that cannot be read comes back with an empty fingerprint, which
	// matches every PIN.
	leftover() (PINMark, bool)
	// intend records m, durably, before the PIN leaves.
	intend(m PINMark) error
	// release lets the lock go; clear removes the record first. Without
	// clear the record stays, as when the holder stops during the call.
	release(clear bool)
}

// errTrialBusy is returned by lockTrial when another holder keeps the lock
// past ctx.
var errTrialBusy = errors.New("another process is sending a PIN to this card")

// markerName is the file name stem of a card: the certNo when it is plain
// hex, a digest of the identity otherwise.
func markerName(card string) string {
	if card != "" && len(card) <= 64 && strings.Trim(strings.ToLower(card), "0123456789abcdef") == "" {
		return strings.ToLower(card)
	}
	sum := sha256.Sum256([]byte(card))
	return "id-" + hex.EncodeToString(sum[:12])
}

// diskStore keeps markers as JSON files in a directory (one per card,
// written atomically), trial locks as locked files beside them, and the
// card each signer entry uses in a signers folder.
type diskStore struct {
	dir string
}

func (d diskStore) markerPath(card string) string {
	return filepath.Join(d.dir, markerName(card)+".json")
}

func (d diskStore) where(card string) string { return d.markerPath(card) }

func (d diskStore) load(card string) (*PINRefusal, error) {
	return readMarker(d.markerPath(card))
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
	for i := range r.Refused {
		if r.Refused[i].Kind == "" {
			r.Refused[i].Kind = MarkRefused // written before strikes existed
		}
	}
	r.Path = path
	return &r, nil
}

func (d diskStore) add(card string, m PINMark) error {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	r, err := d.load(card)
	if err != nil || r == nil {
		// An unreadable marker is replaced by one that holds at least
		// this mark; a marker that cannot be read blocked every PIN
		// meanwhile.
		r = &PINRefusal{Card: card}
	}
	if !slices.Contains(r.Signers, m.Signer) {
		r.Signers = append(r.Signers, m.Signer)
	}
	r.Refused = append(r.Refused, m)
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(d.dir, d.markerPath(card), b)
}

// writeAtomic writes b to path through a synced temporary file renamed
// over it.
func writeAtomic(dir, path string, b []byte) error {
	f, err := os.CreateTemp(dir, ".marker-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func (d diskStore) all() ([]PINRefusal, error) {
	entries, err := os.ReadDir(d.dir)
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
		r, err := readMarker(filepath.Join(d.dir, e.Name()))
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

func (d diskStore) remove(card string) (bool, error) {
	err := os.Remove(d.markerPath(card))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	removed := err == nil
	if _, err := os.Stat(d.trialPath(card)); errors.Is(err, fs.ErrNotExist) {
		return removed, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // one try: never wait for a live holder
	lk, err := d.lockTrial(ctx, card)
	if err != nil {
		return removed, fmt.Errorf("card %s: %w; try again when it is done", card, err)
	}
	_, left := lk.leftover()
	lk.release(true)
	return removed || left, nil
}

func (d diskStore) trialPath(card string) string {
	return filepath.Join(d.dir, markerName(card)+".trial")
}

// lockPoll is how often a trial lock held by another process is tried
// again.
const lockPoll = 20 * time.Millisecond

func (d diskStore) lockTrial(ctx context.Context, card string) (trialLock, error) {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	path := d.trialPath(card)
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("trial lock %s: %w", path, err)
		}
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("trial lock %s: %w", path, err)
		}
		if ok {
			return &fileTrial{f: f}, nil
		}
		f.Close()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%s)", errTrialBusy, path)
		case <-time.After(lockPoll):
		}
	}
}

func (d diskStore) signerPath(signer string) string {
	return filepath.Join(d.dir, "signers", hex.EncodeToString([]byte(signer)))
}

func (d diskStore) note(signer, card string) {
	path := d.signerPath(signer)
	if b, err := os.ReadFile(path); err == nil && string(b) == card {
		return
	}
	if os.MkdirAll(filepath.Dir(path), 0o700) == nil {
		_ = os.WriteFile(path, []byte(card), 0o600)
	}
}

func (d diskStore) noted(signer string) string {
	b, _ := os.ReadFile(d.signerPath(signer))
	return string(b)
}

// fileTrial is a trial lock on a file: an OS lock that ends with the
// process, and the record of the PIN in flight as the file's content.
type fileTrial struct {
	f *os.File
}

func (t *fileTrial) leftover() (PINMark, bool) {
	b, err := io.ReadAll(io.NewSectionReader(t.f, 0, 1<<20))
	if err == nil && len(bytes.TrimSpace(b)) == 0 {
		return PINMark{}, false
	}
	var m PINMark
	if err != nil || json.Unmarshal(b, &m) != nil {
		return PINMark{Kind: MarkStruck, Reason: "an unreadable trial record was left behind"}, true
	}
	return m, true
}

func (t *fileTrial) intend(m PINMark) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := t.f.Truncate(0); err != nil {
		return err
	}
	if _, err := t.f.WriteAt(b, 0); err != nil {
		return err
	}
	return t.f.Sync()
}

func (t *fileTrial) release(clear bool) {
	if clear {
		if t.f.Truncate(0) == nil {
			_ = t.f.Sync()
		}
	}
	unlockFile(t.f)
	t.f.Close()
}

// memStore is a pinStore in memory, for tests: several guards over one
// memStore behave as processes sharing a state directory.
type memStore struct {
	mu      sync.Mutex
	markers map[string]*PINRefusal
	trials  map[string]chan struct{}
	records map[string]*PINMark
	signers map[string]string
}

func newMemStore() *memStore {
	return &memStore{markers: map[string]*PINRefusal{}, trials: map[string]chan struct{}{},
		records: map[string]*PINMark{}, signers: map[string]string{}}
}

func (s *memStore) where(string) string { return "memory" }

func (s *memStore) load(card string) (*PINRefusal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.markers[card]
	if r == nil {
		return nil, nil
	}
	c := *r
	c.Signers, c.Refused = slices.Clone(r.Signers), slices.Clone(r.Refused)
	return &c, nil
}

func (s *memStore) add(card string, m PINMark) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.markers[card]
	if r == nil {
		r = &PINRefusal{Card: card, Path: "memory"}
		s.markers[card] = r
	}
	if !slices.Contains(r.Signers, m.Signer) {
		r.Signers = append(r.Signers, m.Signer)
	}
	r.Refused = append(r.Refused, m)
	return nil
}

func (s *memStore) all() ([]PINRefusal, error) {
	s.mu.Lock()
	cards := make([]string, 0, len(s.markers))
	for c := range s.markers {
		cards = append(cards, c)
	}
	s.mu.Unlock()
	sort.Strings(cards)
	var out []PINRefusal
	for _, c := range cards {
		if r, _ := s.load(c); r != nil {
			out = append(out, *r)
		}
	}
	return out, nil
}

func (s *memStore) remove(card string) (bool, error) {
	s.mu.Lock()
	removed := s.markers[card] != nil
	delete(s.markers, card)
	ch := s.trial(card)
	s.mu.Unlock()
	select {
	case ch <- struct{}{}:
		s.mu.Lock()
		removed = removed || s.records[card] != nil
		delete(s.records, card)
		s.mu.Unlock()
		<-ch
		return removed, nil
	default:
		return removed, fmt.Errorf("card %s: %w; try again when it is done", card, errTrialBusy)
	}
}

// trial returns the card's lock channel; s.mu is held.
func (s *memStore) trial(card string) chan struct{} {
	ch := s.trials[card]
	if ch == nil {
		ch = make(chan struct{}, 1)
		s.trials[card] = ch
	}
	return ch
}

func (s *memStore) lockTrial(ctx context.Context, card string) (trialLock, error) {
	s.mu.Lock()
	ch := s.trial(card)
	s.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return &memTrial{s: s, card: card, ch: ch}, nil
	default:
	}
	select {
	case ch <- struct{}{}:
		return &memTrial{s: s, card: card, ch: ch}, nil
	case <-ctx.Done():
		return nil, errTrialBusy
	}
}

func (s *memStore) note(signer, card string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signers[signer] = card
}

func (s *memStore) noted(signer string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signers[signer]
}

type memTrial struct {
	s    *memStore
	card string
	ch   chan struct{}
}

func (t *memTrial) leftover() (PINMark, bool) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if m := t.s.records[t.card]; m != nil {
		return *m, true
	}
	return PINMark{}, false
}

func (t *memTrial) intend(m PINMark) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.s.records[t.card] = &m
	return nil
}

func (t *memTrial) release(clear bool) {
	if clear {
		t.s.mu.Lock()
		delete(t.s.records, t.card)
		t.s.mu.Unlock()
	}
	<-t.ch
}
