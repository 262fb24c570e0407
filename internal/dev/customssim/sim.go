// Package customssim is ceb179's one customs fake: it plays China Customs'
// 通关服务系统 for the 179 interface. It serves realTimeDataUpload, checking
// every upload the way production does (signature against the registered
// certificate, certNo, field rules, sessionID re-use), and it calls a
// platform's platDataOpen like customs' business test, reporting for each
// request whether the data arrived in time and valid. `ceb179 customs-sim`
// and `ceb179 local` run it as a simulator.
//
// Tests start it on loopback with Serve or ServeTLS and script its answers
// (accept, reject, duplicate, HTTP errors, delays, hangs, dropped
// connections) with Script and Fallback. Whatever it answers, it records
// every upload and counts the posts per session itself (Posts, PostsFor),
// so a test sees every post that reached customs.
package customssim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/signature"
)

// UploadPath is the path of customs' realTimeDataUpload endpoint.
const UploadPath = "/ceb2grab/grab/realTimeDataUpload"

// maxBody bounds an upload request body.
const maxBody = 1 << 20

// Messages customs answers with.
const (
	msgAccepted  = "上传成功"
	msgDuplicate = "入库失败"
)

// Upload is one upload the simulator received, with what it found.
type Upload struct {
	// At is when the upload arrived.
	At time.Time
	// ContentType is the Content-Type header as sent.
	ContentType string
	// Body is the raw request body.
	Body []byte
	// Form is the request's form as the standard parser read it (nil when
	// unreadable).
	Form url.Values
	// PayExInfoStr is the decoded value of the form field payExInfoStr.
	PayExInfoStr string
	// SessionID is the upload's sessionID ("" when unreadable).
	SessionID string
	// EbpCode is the platform code in the head.
	EbpCode string
	// OrderNos lists the orders in payExchangeInfoLists.
	OrderNos []string
	// CertNo is the certNo as given.
	CertNo string
	// SignatureValid reports whether signValue verified against a
	// certificate registered for EbpCode with the given certNo.
	SignatureValid bool
	// Problems lists everything the checks found wrong with the upload.
	Problems []string
	// Status is the HTTP status answered (0 for a hang or a dropped
	// connection).
	Status int
	// Code and Message are the customs answer given, judged or scripted
	// ("" when the answer was no customs answer).
	Code, Message string
	// Scripted reports whether the answer came from Script or Fallback
	// rather than from the checks.
	Scripted bool
}

// Accepted reports whether the simulator answered 10000.
func (u Upload) Accepted() bool { return u.Code == customs.CodeSuccess }

// Sim is the customs simulator. Use New; it is safe for concurrent use.
type Sim struct {
	log  *slog.Logger
	now  func() time.Time
	stop chan struct{} // closed by Close: releases hanging answers

	mu       sync.Mutex
	certs    map[string]map[string]*smx509.Certificate // ebpCode → certNo → cert
	uploads  []Upload
	posts    map[string]int  // posts per sessionID
	stored   map[string]bool // sessionIDs stored (accepted)
	waiters  map[string][]chan Upload
	verifyOn bool
	script   []Reply
	fallback Reply
	stopOnce sync.Once
}

// Option changes a Sim made by New.
type Option func(*Sim)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Sim) { s.log = l } }

// WithClock sets the clock (default: time.Now).
func WithClock(now func() time.Time) Option { return func(s *Sim) { s.now = now } }

// WithFallback sets the answer given when no scripted answer is left
// (default: Judge, the checks' own verdict).
func WithFallback(r Reply) Option { return func(s *Sim) { s.fallback = r } }

// WithoutSignatureCheck makes the simulator behave like customs' joint-test
// environment, which does not verify signatures.
func WithoutSignatureCheck() Option { return func(s *Sim) { s.verifyOn = false } }

// New returns a simulator with no registered certificate.
func New(opts ...Option) *Sim {
	s := &Sim{
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:      time.Now,
		stop:     make(chan struct{}),
		certs:    map[string]map[string]*smx509.Certificate{},
		posts:    map[string]int{},
		stored:   map[string]bool{},
		waiters:  map[string][]chan Upload{},
		verifyOn: true,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Register registers cert as a signing certificate of ebpCode, as a
// platform does in 通关服务系统. Several certificates may be registered for
// one ebpCode (during a rotation).
func (s *Sim) Register(ebpCode string, cert *smx509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.certs[ebpCode] == nil {
		s.certs[ebpCode] = map[string]*smx509.Certificate{}
	}
	s.certs[ebpCode][signature.CertNo(cert)] = cert
}

// Uploads returns every upload received so far, in order of arrival.
func (s *Sim) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Upload(nil), s.uploads...)
}

// Posts returns how many uploads reached the endpoint, whatever was
// answered (hangs and dropped connections included).
func (s *Sim) Posts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.uploads)
}

// PostsFor returns how many uploads for sessionID reached the endpoint.
func (s *Sim) PostsFor(sessionID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts[sessionID]
}

// Close releases answers still hanging or delayed, and ends later ones at
// once. It is safe to call more than once.
func (s *Sim) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
}

// Wait returns the first upload for sessionID, waiting for it until ctx ends.
func (s *Sim) Wait(ctx context.Context, sessionID string) (Upload, error) {
	s.mu.Lock()
	for _, u := range s.uploads {
		if u.SessionID == sessionID {
			s.mu.Unlock()
			return u, nil
		}
	}
	ch := make(chan Upload, 1)
	s.waiters[sessionID] = append(s.waiters[sessionID], ch)
	s.mu.Unlock()
	select {
	case u := <-ch:
		return u, nil
	case <-ctx.Done():
		return Upload{}, fmt.Errorf("no upload for session %s: %w", sessionID, ctx.Err())
	}
}

// ServeHTTP serves realTimeDataUpload: it checks, records and counts the
// upload, then plays the next scripted answer or, when none is left, the
// fallback (by default Judge: the checks' verdict).
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != UploadPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var u Upload
	if err != nil {
		u = Upload{At: s.now(), Problems: []string{"body could not be read"}}
	} else {
		u = s.check(r.Header.Get("Content-Type"), body)
	}
	u.ContentType, u.Body = r.Header.Get("Content-Type"), body
	u.Form, u.PayExInfoStr = parseForm(r, body)
	if u.SessionID == "" {
		// Count a post for its session even when the checks could not
		// read it.
		var sid struct {
			SessionID string `json:"sessionID"`
		}
		if json.Unmarshal([]byte(u.PayExInfoStr), &sid) == nil {
			u.SessionID = sid.SessionID
		}
	}
	reply := s.record(&u)
	s.log.Info("realTimeDataUpload", slog.String("sessionID", u.SessionID), slog.String("code", u.Code),
		slog.Bool("signatureValid", u.SignatureValid), slog.Int("problems", len(u.Problems)), slog.Bool("scripted", u.Scripted))
	s.answer(w, r, reply)
}

// parseForm reads the body with the standard form parser, as a Java or Go
// server would.
func parseForm(r *http.Request, body []byte) (url.Values, string) {
	pr := r.Clone(r.Context())
	pr.Body = io.NopCloser(bytes.NewReader(body))
	if err := pr.ParseForm(); err != nil {
		return nil, ""
	}
	return pr.PostForm, pr.PostForm.Get("payExInfoStr")
}

// check reads and checks one upload body.
func (s *Sim) check(contentType string, body []byte) Upload {
	u := Upload{At: s.now()}
	rec, err := customs.ParseUploadForm(contentType, body)
	if err != nil {
		u.Problems = append(u.Problems, err.Error())
		return u
	}
	u.SessionID = rec.SessionID
	u.EbpCode = rec.Decoded.Head.EbpCode
	u.CertNo = rec.CertNo
	for _, o := range rec.Decoded.Lists {
		u.OrderNos = append(u.OrderNos, o.OrderNo)
	}
	if err := rec.Decoded.Validate(); err != nil {
		if ve, ok := err.(*customs.ValidationError); ok {
			for _, v := range ve.Violations {
				u.Problems = append(u.Problems, fmt.Sprintf("%s : %s;", v.Path, v.Message))
			}
		} else {
			u.Problems = append(u.Problems, err.Error())
		}
	}
	switch {
	case rec.CertNo == "":
		u.Problems = append(u.Problems, "certNo : certNo不为空;")
	case rec.SignValue == "":
		u.Problems = append(u.Problems, "signValue : signValue不为空;")
	default:
		s.mu.Lock()
		cert := s.certs[u.EbpCode][rec.CertNo]
		s.mu.Unlock()
		if cert == nil {
			u.Problems = append(u.Problems, fmt.Sprintf("certNo : certNo %s is not registered for ebpCode %s;", rec.CertNo, u.EbpCode))
		} else if err := signature.Verify(cert, rec.SignSource(), rec.SignValue); err != nil {
			u.Problems = append(u.Problems, "signValue : 验签失败;")
		} else {
			u.SignatureValid = true
		}
	}
	return u
}

// record decides the answer, stores and counts the upload and wakes its
// waiters. It returns the answer to play.
func (s *Sim) record(u *Upload) Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	reply := s.fallback
	if len(s.script) > 0 {
		reply = s.script[0]
		s.script = s.script[1:]
	}
	if reply.judged() {
		reply.Code, reply.Message = s.judge(u)
	} else {
		u.Scripted = true
	}
	u.Code, u.Message, u.Status = reply.Code, reply.Message, reply.status()
	if u.Code == customs.CodeSuccess && u.Status == http.StatusOK {
		s.stored[u.SessionID] = true
	}
	s.posts[u.SessionID]++
	s.uploads = append(s.uploads, *u)
	for _, ch := range s.waiters[u.SessionID] {
		ch <- *u
	}
	delete(s.waiters, u.SessionID)
	return reply
}

// judge returns the answer the checks give to u; s.mu is held.
func (s *Sim) judge(u *Upload) (code, message string) {
	problems := u.Problems
	if !s.verifyOn {
		// The joint-test endpoint checks the form, not the signature.
		problems = nil
		for _, p := range u.Problems {
			if !strings.HasPrefix(p, "signValue : 验签") && !strings.Contains(p, "is not registered") {
				problems = append(problems, p)
			}
		}
	}
	switch {
	case len(problems) > 0:
		return customs.CodeFailure, strings.Join(problems, "")
	case s.stored[u.SessionID]:
		u.Problems = append(u.Problems, "sessionID already stored")
		return customs.CodeFailure, msgDuplicate
	default:
		return customs.CodeSuccess, msgAccepted
	}
}
