package customssim

import (
	"encoding/pem"
	"io"
	"log"
	"net/http/httptest"
)

// TB is the part of testing.TB that Serve uses.
type TB interface {
	Helper()
	Cleanup(func())
}

// Server is a simulator served on 127.0.0.1 for a test.
type Server struct {
	*Sim
	// HTTP is the listening server.
	HTTP *httptest.Server
	// URL is the server's base URL (http:// or https://127.0.0.1:port).
	URL string
}

// Serve starts a simulator on plain HTTP on 127.0.0.1, closed when the test
// ends. It accepts every upload (Fallback Accepted) unless the options,
// Script or Fallback say otherwise; WithFallback(Judge()) makes it check
// uploads as New does.
func Serve(tb TB, opts ...Option) *Server {
	tb.Helper()
	return serve(tb, false, opts)
}

// ServeTLS is Serve with TLS, using a self-signed certificate for
// 127.0.0.1 that no client trusts unless given CAPEM.
func ServeTLS(tb TB, opts ...Option) *Server {
	tb.Helper()
	return serve(tb, true, opts)
}

func serve(tb TB, tls bool, opts []Option) *Server {
	s := &Server{Sim: New(append([]Option{WithFallback(Accepted())}, opts...)...)}
	s.HTTP = httptest.NewUnstartedServer(s.Sim)
	if tls {
		// Refused handshakes are what the TLS tests expect; keep them quiet.
		s.HTTP.Config.ErrorLog = log.New(io.Discard, "", 0)
		s.HTTP.StartTLS()
	} else {
		s.HTTP.Start()
	}
	s.URL = s.HTTP.URL
	tb.Cleanup(s.Close)
	return s
}

// Close releases hanging answers and shuts the server down.
func (s *Server) Close() {
	s.Sim.Close()
	s.HTTP.Close()
}

// UploadURL returns the server's realTimeDataUpload address.
func (s *Server) UploadURL() string { return s.URL + UploadPath }

// CAPEM returns the TLS server's self-signed certificate in PEM, to
// configure as an extra CA.
func (s *Server) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.HTTP.Certificate().Raw})
}
