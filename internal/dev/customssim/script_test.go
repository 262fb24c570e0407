package customssim

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/devcert"
)

// postTo posts payExInfoStr to srv with client and returns the HTTP status
// and body (0 and "" when no answer came).
func postTo(t *testing.T, client *http.Client, srv *Server, payExInfoStr []byte) (int, string) {
	t.Helper()
	resp, err := client.Post(srv.UploadURL(), customs.UploadContentType, strings.NewReader(string(customs.EncodeUploadForm(payExInfoStr))))
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func TestScriptedAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		reply    Reply
		status   int
		wantCode string
		wantBody string
	}{
		{name: "ok accepted", reply: Accepted(), status: 200, wantCode: customs.CodeSuccess},
		{name: "ok rejected keeps message", reply: Rejected("certNo : certNo不为空;"), status: 200, wantCode: customs.CodeFailure, wantBody: "certNo不为空"},
		{name: "ok duplicate", reply: Duplicate(), status: 200, wantCode: customs.CodeFailure, wantBody: msgDuplicate},
		{name: "ok delayed accepted", reply: Accepted().After(50 * time.Millisecond), status: 200, wantCode: customs.CodeSuccess},
		{name: "fail 503", reply: Status(503), status: 503, wantBody: "Service Unavailable"},
		{name: "fail html 200", reply: Reply{Body: "<html>maintenance</html>"}, status: 200, wantBody: "maintenance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := Serve(t)
			srv.Script(tt.reply)
			payload := []byte(`{"sessionID":"s-1"}`)
			status, body := postTo(t, http.DefaultClient, srv, payload)
			if status != tt.status || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("answer %d %q, want %d containing %q", status, body, tt.status, tt.wantBody)
			}
			if tt.wantCode != "" {
				ack, err := customs.ParseUploadAck([]byte(body))
				if err != nil || ack.Code != tt.wantCode {
					t.Fatalf("ack %+v (%v), want code %s", ack, err, tt.wantCode)
				}
			}
			ups := srv.Uploads()
			if srv.PostsFor("s-1") != 1 || len(ups) != 1 || !ups[0].Scripted || ups[0].Status != tt.status || ups[0].PayExInfoStr != string(payload) {
				t.Fatalf("posts %d, uploads %+v; want one scripted upload recorded as answered", srv.Posts(), ups)
			}
			// The script is used up: the fallback accepts.
			if status, _ := postTo(t, http.DefaultClient, srv, payload); status != 200 || srv.Posts() != 2 {
				t.Fatalf("after the script: %d, %d posts", status, srv.Posts())
			}
		})
	}
}

func TestPostsCountEveryArrival(t *testing.T) {
	t.Parallel()
	card, err := devcert.Generate(devcert.SM2, "card")
	if err != nil {
		t.Fatal(err)
	}
	srv := Serve(t)
	srv.Script(Hang(), Drop(), Status(502), Accepted())
	client := &http.Client{Timeout: 200 * time.Millisecond}
	u := unsigned(t, "s-count")
	for range 4 {
		postTo(t, client, srv, signed(t, card, u))
	}
	postTo(t, client, srv, signed(t, card, unsigned(t, "s-other")))
	if got := srv.PostsFor("s-count"); got != 4 {
		t.Fatalf("PostsFor(s-count) = %d, want 4 (hang, drop, 502 and accepted all reached customs)", got)
	}
	if got, total := srv.PostsFor("s-other"), srv.Posts(); got != 1 || total != 5 {
		t.Fatalf("PostsFor(s-other) = %d, Posts = %d; want 1 and 5", got, total)
	}
	if got := srv.PostsFor("s-never"); got != 0 {
		t.Fatalf("PostsFor(s-never) = %d, want 0", got)
	}
}

func TestJudgeFallbackChecksUploads(t *testing.T) {
	t.Parallel()
	card, err := devcert.Generate(devcert.SM2, "card")
	if err != nil {
		t.Fatal(err)
	}
	srv := Serve(t, WithFallback(Judge()))
	payload := signed(t, card, unsigned(t, "s-judge"))
	steps := []struct {
		name     string
		register bool
		code     string
		message  string
	}{
		{name: "fail certificate not registered", code: customs.CodeFailure, message: "is not registered"},
		{name: "ok registered", register: true, code: customs.CodeSuccess, message: msgAccepted},
		{name: "fail sessionID already stored", code: customs.CodeFailure, message: msgDuplicate},
	}
	for _, st := range steps {
		if st.register {
			srv.Register(ebpCode, card.Cert)
		}
		_, body := postTo(t, http.DefaultClient, srv, payload)
		ack, err := customs.ParseUploadAck([]byte(body))
		if err != nil || ack.Code != st.code || !strings.Contains(ack.Message, st.message) {
			t.Fatalf("%s: ack %+v (%v), want %s with %q", st.name, ack, err, st.code, st.message)
		}
	}
	if n := srv.PostsFor("s-judge"); n != 3 {
		t.Fatalf("PostsFor = %d, want 3", n)
	}
}

func TestCloseReleasesHangingAnswers(t *testing.T) {
	t.Parallel()
	srv := Serve(t)
	srv.Script(Hang())
	done := make(chan struct{})
	go func() {
		defer close(done)
		postTo(t, http.DefaultClient, srv, []byte(`{"sessionID":"s-hang"}`))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := srv.Wait(ctx, "s-hang"); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("a hanging answer outlived Close")
	}
}
