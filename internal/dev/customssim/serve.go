package customssim

import (
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"sync"
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

	gate *gate
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
	s.gate = newGate(s.HTTP.Listener)
	s.HTTP.Listener = s.gate
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

// Unreachable closes the server's port, as a customs endpoint that is down:
// a connection is refused before anything is sent, and open connections
// are closed. Nothing reaches the simulator, so nothing is counted, until
// Reachable opens the same port again.
func (s *Server) Unreachable() {
	s.gate.down()
	s.HTTP.CloseClientConnections()
}

// Reachable opens the port Unreachable closed.
func (s *Server) Reachable() error { return s.gate.up() }

// UploadURL returns the server's realTimeDataUpload address.
func (s *Server) UploadURL() string { return s.URL + UploadPath }

// CAPEM returns the TLS server's self-signed certificate in PEM, to
// configure as an extra CA.
func (s *Server) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.HTTP.Certificate().Raw})
}

// gate is a listener whose port can be closed and opened again at the
// same address: while it is closed, connecting is refused by the system,
// as for an endpoint that is down.
type gate struct {
	addr net.Addr

	mu     sync.Mutex
	open   *sync.Cond
	inner  net.Listener // nil while the port is closed
	closed bool
}

func newGate(ln net.Listener) *gate {
	g := &gate{addr: ln.Addr(), inner: ln}
	g.open = sync.NewCond(&g.mu)
	return g
}

// Accept waits for a connection on the open port; while the port is closed
// it waits for it to open again.
func (g *gate) Accept() (net.Conn, error) {
	for {
		g.mu.Lock()
		for g.inner == nil && !g.closed {
			g.open.Wait()
		}
		if g.closed {
			g.mu.Unlock()
			return nil, net.ErrClosed
		}
		in := g.inner
		g.mu.Unlock()
		c, err := in.Accept()
		if err == nil {
			return c, nil
		}
		g.mu.Lock()
		current := g.inner == in && !g.closed
		g.mu.Unlock()
		if current {
			return nil, err
		}
		// Closed by down or Close: wait for what comes next.
	}
}

func (g *gate) down() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inner != nil {
		_ = g.inner.Close()
		g.inner = nil
	}
}

func (g *gate) up() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inner != nil || g.closed {
		return nil
	}
	ln, err := net.Listen("tcp", g.addr.String())
	if err != nil {
		return err
	}
	g.inner = ln
	g.open.Broadcast()
	return nil
}

// Close closes the port for good.
func (g *gate) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	g.open.Broadcast()
	if g.inner != nil {
		err := g.inner.Close()
		g.inner = nil
		return err
	}
	return nil
}

// Addr is the port's address, open or not.
func (g *gate) Addr() net.Addr { return g.addr }
