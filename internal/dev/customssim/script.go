package customssim

import (
	"fmt"
	"net/http"
	"time"

	"github.com/ceb179/ceb179/internal/customs"
)

// Reply is one answer of the simulator. The zero Reply is Judge: the
// checks' own verdict. A Reply with Code answers customs' JSON with that
// code and message; one with Status or Body answers exactly that; Hang and
// Drop give no answer at all.
type Reply struct {
	// Code and Message make a customs answer (HTTP 200 unless Status).
	Code, Message string
	// Status is the HTTP status (200 when zero).
	Status int
	// Body is a raw answer body, given instead of a customs answer.
	Body string
	// Delay is waited before answering.
	Delay time.Duration
	// Hang makes the simulator never answer: it waits until the client
	// gives up or the simulator closes.
	Hang bool
	// Drop closes the connection without any answer.
	Drop bool
}

// Judge is the answer the checks decide: accepted, rejected with the
// problems found, or 入库失败 for a sessionID already stored.
func Judge() Reply { return Reply{} }

// Accepted is customs' success answer.
func Accepted() Reply { return Reply{Code: customs.CodeSuccess, Message: msgAccepted} }

// Rejected is customs' answer to data that fails its validation, with a
// message such as "certNo : certNo不为空;".
func Rejected(message string) Reply { return Reply{Code: customs.CodeFailure, Message: message} }

// Duplicate is customs' answer to a sessionID it has already stored.
func Duplicate() Reply { return Rejected(msgDuplicate) }

// Status is a bare HTTP error answer such as 502 from a gateway.
func Status(code int) Reply {
	return Reply{Status: code, Body: "<html><body>" + http.StatusText(code) + "</body></html>"}
}

// Hang is an answer that never comes.
func Hang() Reply { return Reply{Hang: true} }

// Drop closes the connection without answering.
func Drop() Reply { return Reply{Drop: true} }

// After returns r given after waiting d.
func (r Reply) After(d time.Duration) Reply {
	r.Delay = d
	return r
}

// judged reports whether r leaves the answer to the checks.
func (r Reply) judged() bool {
	return r.Code == "" && r.Status == 0 && r.Body == "" && !r.Hang && !r.Drop
}

// status returns the HTTP status r answers with (0 for none).
func (r Reply) status() int {
	switch {
	case r.Hang || r.Drop:
		return 0
	case r.Status != 0:
		return r.Status
	default:
		return http.StatusOK
	}
}

// Script sets the next answers, one per upload, in order; after them the
// simulator gives the fallback answer.
func (s *Sim) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script[:0], replies...)
}

// Fallback sets the answer given when the script is used up.
func (s *Sim) Fallback(r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fallback = r
}

// answer plays reply on w.
func (s *Sim) answer(w http.ResponseWriter, r *http.Request, reply Reply) {
	switch {
	case reply.Drop:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
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
		t := time.NewTimer(reply.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		}
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(reply.status())
	body := reply.Body
	if reply.Code != "" && body == "" {
		body = fmt.Sprintf(`{"code":%q,"message":%q,"total":0,"serviceTime":%d}`, reply.Code, reply.Message, s.now().UnixMilli())
	}
	_, _ = fmt.Fprint(w, body)
}
