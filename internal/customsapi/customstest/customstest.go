// Package customstest is a test helper: a local HTTP server on 127.0.0.1
// that plays customs' realTimeDataUpload endpoint. It records every upload
// it receives, parsed with the standard form parser, and answers from a
// script (accept, reject, duplicate, HTTP errors, hangs, dropped
// connections). It is for tests only; the full customs simulator lives
// elsewhere.
package customstest

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Reply is one scripted answer of the server.
type Reply struct {
	// Status is the HTTP status (200 when zero).
	Status int
	// Body is the answer body.
	Body string
	// Delay is waited before answering.
	Delay time.Duration
	// Hang makes the server never answer: it waits until the client gives
	// up (or the server closes).
	Hang bool
	// Drop closes the connection without any answer.
	Drop bool
}

// Accepted is customs' success answer.
func Accepted() Reply {
	return Reply{Body: `{"code":"10000","message":"上传成功","total":0,"serviceTime":` + now() + `}`}
}

// Rejected is customs' answer to data that fails its validation, with
// message such as "certNo : certNo不为空;".
func Rejected(message string) Reply {
	return Reply{Body: `{"code":"20000","message":` + strconv.Quote(message) + `,"total":0,"serviceTime":` + now() + `}`}
}

// Duplicate is customs' answer to a sessionID it has already stored.
func Duplicate() Reply {
	return Rejected("入库失败")
}

// Status is a bare HTTP error answer such as 502 from a gateway.
func Status(code int) Reply {
	return Reply{Status: code, Body: "<html><body>" + http.StatusText(code) + "</body></html>"}
}

// Hang is an answer that never comes.
func Hang() Reply { return Reply{Hang: true} }

// Drop closes the connection without answering.
func Drop() Reply { return Reply{Drop: true} }

func now() string { return strconv.FormatInt(time.Now().UnixMilli(), 10) }

// Upload is one request the server received.
type Upload struct {
	// Method is the HTTP method.
	Method string
	// ContentType is the Content-Type header as sent.
	ContentType string
	// Body is the raw request body.
	Body []byte
	// Form is the request's form as the standard parser read it.
	Form map[string][]string
	// PayExInfoStr is the decoded value of the form field payExInfoStr.
	PayExInfoStr string
}

// Server is a customs upload endpoint on 127.0.0.1.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	script   []Reply
	fallback Reply
	uploads  []Upload
	stop     chan struct{}
	stopOnce sync.Once
}

// New starts a plain HTTP server on 127.0.0.1 that accepts every upload
// until Script says otherwise. It is closed when the test ends.
func New(tb testing.TB) *Server {
	tb.Helper()
	s := newServer()
	s.Server = httptest.NewServer(s)
	tb.Cleanup(s.Close)
	return s
}

// NewTLS starts the server with TLS, using a self-signed certificate for
// 127.0.0.1 that no client trusts unless given CAPEM.
func NewTLS(tb testing.TB) *Server {
	tb.Helper()
	s := newServer()
	s.Server = httptest.NewUnstartedServer(s)
	// Refused handshakes are what the TLS tests expect; keep them quiet.
	s.Server.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Server.StartTLS()
	tb.Cleanup(s.Close)
	return s
}

func newServer() *Server {
	return &Server{fallback: Accepted(), stop: make(chan struct{})}
}

// Close releases hanging requests and shuts the server down.
func (s *Server) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.Server.Close()
}

// UploadURL returns the server's realTimeDataUpload address.
func (s *Server) UploadURL() string {
	return s.URL + "/ceb2grab/grab/realTimeDataUpload"
}

// CAPEM returns the server's self-signed certificate in PEM, to configure
// as an extra CA.
func (s *Server) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// Script sets the next answers, one per request, in order; after them the
// server answers with fallback.
func (s *Server) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script[:0], replies...)
}

// Fallback sets the answer given when the script is used up.
func (s *Server) Fallback(r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fallback = r
}

// Uploads returns the requests received so far.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Upload(nil), s.uploads...)
}

// Posts returns how many requests the server received.
func (s *Server) Posts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.uploads)
}

// ServeHTTP records the request and plays the next scripted answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	up := Upload{Method: r.Method, ContentType: r.Header.Get("Content-Type"), Body: body}
	// Parse the form with the standard parser, as a Java or Go server would.
	pr := r.Clone(r.Context())
	pr.Body = io.NopCloser(bytes.NewReader(body))
	if err := pr.ParseForm(); err == nil {
		up.Form = pr.PostForm
		up.PayExInfoStr = pr.PostForm.Get("payExInfoStr")
	}
	s.mu.Lock()
	s.uploads = append(s.uploads, up)
	reply := s.fallback
	if len(s.script) > 0 {
		reply = s.script[0]
		s.script = s.script[1:]
	}
	s.mu.Unlock()

	switch {
	case reply.Drop:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case reply.Hang:
		select {
		case <-r.Context().Done():
		case <-s.stop:
		}
		return
	}
	if reply.Delay > 0 {
		select {
		case <-time.After(reply.Delay):
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		}
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	status := reply.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	fmt.Fprint(w, reply.Body)
}
