// Package customssim plays China Customs' 通关服务系统 for the 179 interface:
// it serves realTimeDataUpload, checking every upload the way production
// does (signature against the registered certificate, certNo, field rules,
// sessionID re-use), and it calls a platform's platDataOpen like customs'
// business test, reporting for each request whether the data arrived in time
// and valid.
package customssim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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
	// Problems lists everything wrong with the upload, empty when accepted.
	Problems []string
	// Code and Message are the simulator's answer.
	Code, Message string
}

// Accepted reports whether the simulator answered 10000.
func (u Upload) Accepted() bool { return u.Code == customs.CodeSuccess }

// Sim is the customs simulator. Use New; it is safe for concurrent use.
type Sim struct {
	log *slog.Logger
	now func() time.Time
	// OnUpload, when set before serving, is called after each upload.
	onUpload func(Upload)

	mu       sync.Mutex
	certs    map[string]map[string]*smx509.Certificate // ebpCode → certNo → cert
	uploads  []Upload
	stored   map[string]bool // sessionIDs stored (accepted)
	waiters  map[string][]chan Upload
	verifyOn bool
}

// Option changes a Sim made by New.
type Option func(*Sim)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Sim) { s.log = l } }

// WithClock sets the clock (default: time.Now).
func WithClock(now func() time.Time) Option { return func(s *Sim) { s.now = now } }

// WithOnUpload sets a function called after each upload is answered.
func WithOnUpload(f func(Upload)) Option { return func(s *Sim) { s.onUpload = f } }

// WithoutSignatureCheck makes the simulator behave like customs' joint-test
// environment, which does not verify signatures.
func WithoutSignatureCheck() Option { return func(s *Sim) { s.verifyOn = false } }

// New returns a simulator with no registered certificate.
func New(opts ...Option) *Sim {
	s := &Sim{
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:      time.Now,
		certs:    map[string]map[string]*smx509.Certificate{},
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

// ServeHTTP serves realTimeDataUpload.
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
	s.record(&u)

	ack := fmt.Sprintf(`{"code":%q,"message":%q,"total":0,"serviceTime":%d}`, u.Code, u.Message, s.now().UnixMilli())
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_, _ = io.WriteString(w, ack)

	s.log.Info("realTimeDataUpload", slog.String("sessionID", u.SessionID), slog.String("code", u.Code),
		slog.Bool("signatureValid", u.SignatureValid), slog.Int("problems", len(u.Problems)))
	if s.onUpload != nil {
		s.onUpload(u)
	}
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

// record decides the answer, stores the upload and wakes its waiters.
func (s *Sim) record(u *Upload) {
	s.mu.Lock()
	defer s.mu.Unlock()
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
		u.Code, u.Message = customs.CodeFailure, strings.Join(problems, "")
	case s.stored[u.SessionID]:
		u.Code, u.Message = customs.CodeFailure, msgDuplicate
		u.Problems = append(u.Problems, "sessionID already stored")
	default:
		u.Code, u.Message = customs.CodeSuccess, msgAccepted
		s.stored[u.SessionID] = true
	}
	s.uploads = append(s.uploads, *u)
	for _, ch := range s.waiters[u.SessionID] {
		ch <- *u
	}
	delete(s.waiters, u.SessionID)
}
