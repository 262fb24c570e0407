// Package customsapi is ceb179's HTTP client for customs' realTimeDataUpload
// endpoint: it posts a signed payExInfoStr as a URL-encoded form and reads
// customs' answer. It is the one adapter to customs' upload interface,
// shared by the upload function, the customs simulator's tests and the
// command-line tools.
//
// TLS verification is always on. An extra CA bundle can be trusted in
// addition to the system roots (for a test endpoint or a proxy with its own
// CA); there is no setting that turns verification off. Plain http is only
// accepted for loopback addresses, for local simulators.
package customsapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/ceb179/ceb179/internal/customs"
)

// Documented customs endpoints, repeated here for the configuration help.
const (
	// TestURL is the joint-test (联调) endpoint; it does not verify signatures.
	TestURL = customs.TestUploadURL
	// ProductionURL is the production endpoint.
	ProductionURL = customs.ProductionUploadURL
)

// DefaultTimeout bounds one upload request, from dialling to the last byte
// of the answer, when no other timeout is configured. It is well inside
// customs' two-minute window.
const DefaultTimeout = 10 * time.Second

// maxAnswer bounds how much of customs' answer is read; real answers are a
// few hundred bytes.
const maxAnswer = 64 << 10

// ErrConfig is wrapped by errors about the client's own configuration.
var ErrConfig = errors.New("customsapi: configuration")

// Answer is what customs answered to one upload.
type Answer struct {
	// HTTPStatus is the HTTP status code, 0 when no response arrived.
	HTTPStatus int
	// Ack is customs' parsed answer; its Code is empty when the body was not
	// a customs answer.
	Ack customs.UploadAck
	// Latency is the time from sending the request to reading the answer.
	Latency time.Duration
	// BodyDigest is the lower-case hex SHA-256 of the request body that was
	// sent, for the record.
	BodyDigest string
}

// Error is a failed upload: no answer arrived, the answer was an HTTP
// error, or its body was not a customs answer. Unless NotDelivered says
// otherwise, customs may have stored the data.
type Error struct {
	// Kind says what went wrong.
	Kind ErrorKind
	// HTTPStatus is the response status, 0 when no response arrived.
	HTTPStatus int
	// NotDelivered says the request certainly never reached customs: no
	// connection was made (the name did not resolve, the connection was
	// refused, the TLS handshake failed), or the connection failed before
	// the request was written. False means it may have reached customs:
	// the unknown case is read the way that cannot turn customs' own
	// refusal into an acceptance.
	NotDelivered bool
	// Err is the underlying error.
	Err error
}

// ErrorKind classifies a failed upload.
type ErrorKind string

// Kinds of failed uploads.
const (
	// KindTimeout: the request or the answer took longer than the timeout.
	KindTimeout ErrorKind = "timeout"
	// KindNetwork: the connection failed (DNS, refused, reset, TLS).
	KindNetwork ErrorKind = "network"
	// KindTLS: the server's certificate was not trusted.
	KindTLS ErrorKind = "tls"
	// KindHTTP: the server answered with an HTTP status other than 2xx.
	KindHTTP ErrorKind = "http"
	// KindAnswer: the server answered 2xx with a body that is not a customs
	// answer.
	KindAnswer ErrorKind = "answer"
)

// Error implements error. It never contains the payload.
func (e *Error) Error() string {
	if e.HTTPStatus != 0 {
		return fmt.Sprintf("customs upload: %s (HTTP %d): %v", e.Kind, e.HTTPStatus, e.Err)
	}
	return fmt.Sprintf("customs upload: %s: %v", e.Kind, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether sending the same data again may succeed: a
// timeout, a network failure, an unreadable answer, any HTTP error status
// (customs' gateway answers 403 or 404 during maintenance; customs' own
// verdicts come as its JSON answer, which is not an Error). Only a TLS
// trust failure is not: the same request would meet the same refusal.
func (e *Error) Retryable() bool {
	switch e.Kind {
	case KindTimeout, KindNetwork, KindAnswer, KindHTTP:
		return true
	}
	return false
}

// Client posts uploads to one customs endpoint. It is safe for concurrent
// use; build it once per process.
type Client struct {
	url     string
	hc      *http.Client
	timeout time.Duration
}

// Option configures a Client.
type Option func(*options) error

type options struct {
	timeout   time.Duration
	extraCAs  [][]byte
	transport http.RoundTripper
}

// WithTimeout bounds each upload request (default DefaultTimeout). The
// context given to Upload can shorten it further.
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: timeout must be positive", ErrConfig)
		}
		o.timeout = d
		return nil
	}
}

// WithCAPEM trusts the certificates in pemBytes in addition to the system
// roots.
func WithCAPEM(pemBytes []byte) Option {
	return func(o *options) error {
		o.extraCAs = append(o.extraCAs, pemBytes)
		return nil
	}
}

// WithCAFile trusts the certificates of the PEM bundle at path in addition
// to the system roots. An empty path adds nothing.
func WithCAFile(path string) Option {
	return func(o *options) error {
		if path == "" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%w: read CA bundle: %v", ErrConfig, err)
		}
		o.extraCAs = append(o.extraCAs, b)
		return nil
	}
}

// New returns a client for the realTimeDataUpload endpoint at rawURL. The
// URL must be https, or http on a loopback address.
func New(rawURL string, opts ...Option) (*Client, error) {
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%w: upload URL %q is not an absolute URL", ErrConfig, rawURL)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) {
			return nil, fmt.Errorf("%w: upload URL must be https (http only on loopback)", ErrConfig)
		}
	default:
		return nil, fmt.Errorf("%w: upload URL scheme %q is not https", ErrConfig, u.Scheme)
	}
	tlsConf, err := tlsConfig(o.extraCAs)
	if err != nil {
		return nil, err
	}
	rt := o.transport
	if rt == nil {
		rt = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: min(o.timeout, 5*time.Second), KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       tlsConf,
			TLSHandshakeTimeout:   min(o.timeout, 5*time.Second),
			ResponseHeaderTimeout: o.timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       60 * time.Second,
			ForceAttemptHTTP2:     true,
		}
	}
	return &Client{
		url:     u.String(),
		timeout: o.timeout,
		hc: &http.Client{
			Transport: rt,
			Timeout:   o.timeout,
			// Customs answers directly; a redirect would re-send payment data
			// somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// URL returns the endpoint the client posts to.
func (c *Client) URL() string { return c.url }

// Timeout returns the bound on one upload request.
func (c *Client) Timeout() time.Duration { return c.timeout }

// tlsConfig returns the TLS settings: system roots plus extra, TLS 1.2 or
// later, verification on.
func tlsConfig(extra [][]byte) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(extra) == 0 {
		return conf, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, b := range extra {
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%w: CA bundle holds no PEM certificate", ErrConfig)
		}
	}
	conf.RootCAs = pool
	return conf, nil
}

// loopback reports whether host is localhost or a loopback IP address.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Upload posts payExInfoStr (the JSON document, not yet URL-encoded) as the
// form field payExInfoStr and reads customs' answer. A nil error means
// customs answered with its own readable answer, whatever its code: HTTP
// 2xx, or an HTTP 4xx whose body is customs' JSON answer with a code other
// than 10000 (a verdict). Otherwise the error is an *Error and the Answer
// holds what is known (status, latency, body digest). The payload never
// appears in an error.
func (c *Client) Upload(ctx context.Context, payExInfoStr []byte) (Answer, error) {
	body := customs.EncodeUploadForm(payExInfoStr)
	a := Answer{BodyDigest: sha256Hex(body)}
	// Whether any of the request was written to a connection: until then
	// customs certainly has none of it.
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return a, &Error{Kind: KindNetwork, NotDelivered: true, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", customs.UploadContentType)
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		a.Latency = time.Since(start)
		e := classify(err)
		e.NotDelivered = !wrote.Load()
		return a, e
	}
	defer resp.Body.Close()
	a.HTTPStatus = resp.StatusCode
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	a.Latency = time.Since(start)
	if err != nil {
		e := classify(err)
		e.HTTPStatus = resp.StatusCode
		return a, e
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Customs' error pages are not answers; keep a parsed ack if there
		// is one. A 4xx carrying customs' own JSON answer with a code other
		// than 10000 is its verdict on the upload, not a failure to deliver.
		a.Ack, _ = customs.ParseUploadAck(raw)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && a.Ack.Code != "" && !a.Ack.Accepted() {
			return a, nil
		}
		return a, &Error{Kind: KindHTTP, HTTPStatus: resp.StatusCode, Err: errors.New(http.StatusText(resp.StatusCode))}
	}
	ack, err := customs.ParseUploadAck(raw)
	if err != nil {
		return a, &Error{Kind: KindAnswer, HTTPStatus: resp.StatusCode, Err: errors.New("answer is not a customs JSON answer")}
	}
	a.Ack = ack
	return a, nil
}

// classify turns a transport error into an *Error (Upload decides
// NotDelivered). The URL in a *url.Error is kept, the request body never is.
func classify(err error) *Error {
	var (
		unknownAuth x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalid     x509.CertificateInvalidError
		verify      *tls.CertificateVerificationError
		netErr      net.Error
	)
	switch {
	case errors.As(err, &unknownAuth), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return &Error{Kind: KindTLS, Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return &Error{Kind: KindTimeout, Err: err}
	default:
		return &Error{Kind: KindNetwork, Err: err}
	}
}
