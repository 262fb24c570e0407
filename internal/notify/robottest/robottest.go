// Package robottest serves stand-ins for the group robots notify posts to
// (a DingTalk custom robot, a Feishu/Lark custom bot, a WeCom group robot)
// on loopback, for tests. Each checks what its vendor checks: the token or
// key in its address, the signature and its timestamp's freshness as the
// vendor documents them, the message type, the size limit and the rate
// limit per minute, and answers as the vendor does (errcode 310000 for a
// bad DingTalk signature, code 19021 for Feishu, 130101 or 45009 when sent
// too fast). It records every request and what it made of it.
package robottest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Kind is the robot a Robot stands in for: "dingtalk", "feishu" or "wecom".
type Kind string

// The kinds of robot.
const (
	DingTalk Kind = "dingtalk"
	Feishu   Kind = "feishu"
	WeCom    Kind = "wecom"
)

// Post is one request the robot received.
type Post struct {
	// At is when it arrived.
	At time.Time
	// Accepted is whether the robot accepted it (and showed it in the group).
	Accepted bool
	// Answer is what the robot answered.
	Answer string
	// Title and Text are the message's title (DingTalk title, Feishu card
	// header; empty for WeCom) and markdown.
	Title, Text string
}

// Robot is one stand-in robot.
type Robot struct {
	// Kind is what it stands in for.
	Kind Kind
	// URL is its webhook, with its token or key.
	URL string
	// Secret is its signing secret ("" when it does not check signatures).
	Secret string

	token     string
	perMinute int
	minute    time.Duration
	srv       *httptest.Server

	mu    sync.Mutex
	posts []Post
	fail  []string // answers to give to the next requests
}

// Option adjusts a Robot.
type Option func(*Robot)

// WithSecret makes the robot check signatures made with secret.
func WithSecret(secret string) Option { return func(r *Robot) { r.Secret = secret } }

// WithMinute shortens the minute the rate limit is counted in.
func WithMinute(d time.Duration) Option { return func(r *Robot) { r.minute = d } }

// New serves a stand-in robot of kind until the test ends.
func New(tb testing.TB, kind Kind, opts ...Option) *Robot {
	tb.Helper()
	r := &Robot{Kind: kind, token: fmt.Sprintf("tok%d", time.Now().UnixNano()), minute: time.Minute}
	switch kind {
	case DingTalk, WeCom:
		r.perMinute = 20
	case Feishu:
		r.perMinute = 100
	default:
		tb.Fatalf("robottest: unknown kind %q", kind)
	}
	for _, o := range opts {
		o(r)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	tb.Cleanup(r.srv.Close)
	switch kind {
	case DingTalk:
		r.URL = r.srv.URL + "/robot/send?access_token=" + r.token
	case Feishu:
		r.URL = r.srv.URL + "/open-apis/bot/v2/hook/" + r.token
	case WeCom:
		r.URL = r.srv.URL + "/cgi-bin/webhook/send?key=" + r.token
	}
	return r
}

// Token returns the access token or key in the robot's webhook.
func (r *Robot) Token() string { return r.token }

// FailNext makes the robot answer the next n requests with answer (HTTP
// 200), before looking at them, as a robot whose security settings
// changed does.
func (r *Robot) FailNext(n int, answer string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range n {
		r.fail = append(r.fail, answer)
	}
}

// Posts returns every request received so far.
func (r *Robot) Posts() []Post {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Post(nil), r.posts...)
}

// Accepted returns the messages the robot accepted.
func (r *Robot) Accepted() []Post {
	var out []Post
	for _, p := range r.Posts() {
		if p.Accepted {
			out = append(out, p)
		}
	}
	return out
}

// MaxInWindow returns the largest number of requests that arrived within
// any window of length d.
func (r *Robot) MaxInWindow(d time.Duration) int {
	posts := r.Posts()
	most := 0
	for i := range posts {
		n := 0
		for j := i; j < len(posts) && posts[j].At.Sub(posts[i].At) < d; j++ {
			n++
		}
		most = max(most, n)
	}
	return most
}

func (r *Robot) serve(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	p := Post{At: now}
	answer := r.judge(req, body, now, &p)
	p.Answer = answer
	r.mu.Lock()
	r.posts = append(r.posts, p)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, answer)
}

// judge checks one request as the vendor would and returns the answer.
func (r *Robot) judge(req *http.Request, body []byte, now time.Time, p *Post) string {
	r.mu.Lock()
	if len(r.fail) > 0 {
		a := r.fail[0]
		r.fail = r.fail[1:]
		r.mu.Unlock()
		return a
	}
	recent := 0
	for _, q := range r.posts {
		if now.Sub(q.At) < r.minute {
			recent++
		}
	}
	r.mu.Unlock()
	if req.Method != http.MethodPost {
		return r.refuse("method")
	}
	switch r.Kind {
	case DingTalk:
		q := req.URL.Query()
		if req.URL.Path != "/robot/send" || q.Get("access_token") != r.token {
			return `{"errcode":300001,"errmsg":"token is not exist"}`
		}
		if r.Secret != "" {
			ts, sign := q.Get("timestamp"), q.Get("sign")
			ms, err := strconv.ParseInt(ts, 10, 64)
			if err != nil || now.Sub(time.UnixMilli(ms)).Abs() > time.Hour {
				return `{"errcode":310000,"errmsg":"invalid timestamp"}`
			}
			mac := hmac.New(sha256.New, []byte(r.Secret))
			mac.Write([]byte(ts + "\n" + r.Secret))
			if !hmac.Equal([]byte(sign), []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))) {
				return `{"errcode":310000,"errmsg":"sign not match"}`
			}
		}
		if recent >= r.perMinute {
			return `{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`
		}
		var m struct {
			MsgType  string `json:"msgtype"`
			Markdown struct {
				Title string `json:"title"`
				Text  string `json:"text"`
			} `json:"markdown"`
		}
		if json.Unmarshal(body, &m) != nil || m.MsgType != "markdown" || m.Markdown.Title == "" || m.Markdown.Text == "" {
			return `{"errcode":40035,"errmsg":"缺少参数 json"}`
		}
		p.Title, p.Text, p.Accepted = m.Markdown.Title, m.Markdown.Text, true
		return `{"errcode":0,"errmsg":"ok"}`
	case Feishu:
		if req.URL.Path != "/open-apis/bot/v2/hook/"+r.token {
			return `{"code":19001,"msg":"param invalid: incoming webhook access token invalid"}`
		}
		var m struct {
			Timestamp string `json:"timestamp"`
			Sign      string `json:"sign"`
			MsgType   string `json:"msg_type"`
			Card      struct {
				Header struct {
					Title struct {
						Content string `json:"content"`
					} `json:"title"`
				} `json:"header"`
				Elements []struct {
					Tag     string `json:"tag"`
					Content string `json:"content"`
				} `json:"elements"`
			} `json:"card"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return `{"code":9499,"msg":"Bad Request"}`
		}
		if r.Secret != "" {
			sec, err := strconv.ParseInt(m.Timestamp, 10, 64)
			mac := hmac.New(sha256.New, []byte(m.Timestamp+"\n"+r.Secret))
			if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > time.Hour ||
				!hmac.Equal([]byte(m.Sign), []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))) {
				return `{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}`
			}
		}
		if recent >= r.perMinute {
			return `{"code":11232,"msg":"frequency limited"}`
		}
		if m.MsgType != "interactive" || len(m.Card.Elements) == 0 || m.Card.Elements[0].Content == "" {
			return `{"code":9499,"msg":"Bad Request"}`
		}
		p.Title, p.Text, p.Accepted = m.Card.Header.Title.Content, m.Card.Elements[0].Content, true
		return `{"StatusCode":0,"StatusMessage":"success","code":0,"data":{},"msg":"success"}`
	default: // WeCom
		if req.URL.Path != "/cgi-bin/webhook/send" || req.URL.Query().Get("key") != r.token {
			return `{"errcode":93000,"errmsg":"invalid webhook url"}`
		}
		if recent >= r.perMinute {
			return `{"errcode":45009,"errmsg":"api freq out of limit"}`
		}
		var m struct {
			MsgType  string `json:"msgtype"`
			Markdown struct {
				Content string `json:"content"`
			} `json:"markdown"`
		}
		if json.Unmarshal(body, &m) != nil || m.MsgType != "markdown" || m.Markdown.Content == "" {
			return `{"errcode":40008,"errmsg":"invalid message type"}`
		}
		if len(m.Markdown.Content) > 4096 {
			return `{"errcode":40058,"errmsg":"markdown.content exceed max length 4096"}`
		}
		p.Text, p.Accepted = m.Markdown.Content, true
		return `{"errcode":0,"errmsg":"ok"}`
	}
}

func (r *Robot) refuse(what string) string {
	if r.Kind == Feishu {
		return `{"code":9499,"msg":"` + what + `"}`
	}
	return `{"errcode":40035,"errmsg":"` + strings.ReplaceAll(what, `"`, "") + `"}`
}
