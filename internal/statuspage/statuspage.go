// Package statuspage serves ceb179's status page: the customs requests of
// a day as a timeline, the on-time rate, the end-to-end latency histogram,
// per-ebpCode counts, the days before, hsmbridge's signer health, and the
// requests that were not on time with links to their trail.
//
// The page is rendered on the server with html/template (templates
// embedded in the binary) and draws its charts as inline SVG: no script,
// no external asset, nothing fetched from the network. It only reads.
// `ceb179 local` mounts it at /status, and `ceb179 status --serve ADDR`
// serves it against AWS.
package statuspage

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/loopback"
	"github.com/ceb179/ceb179/internal/ops"
)

//go:embed templates/*.html
var files embed.FS

// Path is where the page is served; trails are under Path + "/trail/".
const Path = "/status"

// maxFailureRows bounds the failures listed on the page.
const maxFailureRows = 300

// Signer reports hsmbridge's status; it returns nil when unknown.
type Signer func(ctx context.Context) (*ceb179.SignerHealth, error)

// Handler serves the status page.
type Handler struct {
	svc    *ops.Service
	signer Signer
	days   int
	log    *slog.Logger
	tpl    *template.Template
	mux    *http.ServeMux
}

// Option changes a Handler made by New.
type Option func(*Handler)

// WithSigner shows the signer health that f reports.
func WithSigner(f Signer) Option { return func(h *Handler) { h.signer = f } }

// WithDays sets how many days the page counts (default 7).
func WithDays(n int) Option { return func(h *Handler) { h.days = max(n, 1) } }

// WithLogger sets the logger of failed page loads (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// New returns the status page over svc. Mount it at Path and Path+"/".
func New(svc *ops.Service, opts ...Option) *Handler {
	h := &Handler{svc: svc, days: 7, log: slog.Default()}
	for _, o := range opts {
		o(h)
	}
	h.tpl = template.Must(template.New("").Funcs(funcs).ParseFS(files, "templates/*.html"))
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET "+Path, h.page)
	h.mux.HandleFunc("GET "+Path+"/{$}", h.page)
	h.mux.HandleFunc("GET "+Path+"/trail/{id}", h.trail)
	return h
}

// ServeHTTP serves GET /status (?day=YYYY-MM-DD) and GET /status/trail/ID.
// It answers only requests that arrived on a loopback address for a
// loopback host (package loopback): the page shows order numbers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	loopback.Only(h.mux).ServeHTTP(w, r)
}

// Mount registers the page on mux at Path.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.Handle(Path, h)
	mux.Handle(Path+"/", h)
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	day := r.URL.Query().Get("day")
	if day != "" {
		if _, err := time.Parse(time.DateOnly, day); err != nil {
			http.Error(w, "day must be YYYY-MM-DD", http.StatusBadRequest)
			return
		}
	}
	st, err := h.svc.Status(r.Context(), day, h.days)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if h.signer != nil {
		if sh, err := h.signer(r.Context()); err == nil {
			st.Signer = sh
		}
	}
	h.render(w, r, "page.html", newPage(st, h.svc.Now()))
}

func (h *Handler) trail(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := h.svc.Trail(r.Context(), id)
	if errors.Is(err, ceb179.ErrNotFound) {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, "trail.html", t)
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	var b strings.Builder
	if err := h.tpl.ExecuteTemplate(&b, name, data); err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(b.String()))
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "status page", slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	http.Error(w, "the status could not be read; see the log", http.StatusInternalServerError)
}

var funcs = template.FuncMap{
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.In(ceb179.China).Format("15:04:05.000")
	},
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.In(ceb179.China).Format("2006-01-02 15:04:05.000")
	},
	"secs": func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) },
	"pct":  func(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) },
	"rate": func(c ops.Counts) string {
		if c.Decided() == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f%%", 100*c.OnTimeRate())
	},
	"count":    func(c ops.Counts, o ops.Outcome) int { return c.By[o] },
	"lower":    func(o ops.Outcome) string { return strings.ToLower(string(o)) },
	"trailURL": trailLink,
	"dayOf":    ceb179.Day,
}

// trailLink is the address of a session's trail page.
func trailLink(id string) string { return Path + "/trail/" + url.PathEscape(id) }
