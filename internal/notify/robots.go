package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Limits of each kind of robot, as its vendor documents them.
var limits = map[Kind]struct {
	perMinute int // messages a minute per robot
	maxBytes  int // bytes of markdown per message
}{
	// DingTalk: 20 messages a minute per robot; a markdown text of about
	// 20,000 bytes.
	DingTalk: {20, 18000},
	// Feishu/Lark: 100 a minute (5 a second); a request body of 20 KB.
	Feishu: {100, 18000},
	// WeCom: 20 a minute; markdown content of at most 4096 bytes.
	WeCom: {20, 4096},
}

// PerMinute returns how many messages a minute a robot of kind accepts.
func PerMinute(kind Kind) int { return limits[kind].perMinute }

// MaxBytes returns the size limit of a message's markdown for kind.
func MaxBytes(kind Kind) int { return limits[kind].maxBytes }

// Answer is what a robot answered one post.
type Answer struct {
	// Status is the HTTP status (0 when no answer came).
	Status int
	// Body is the answer's body, at most 1 KB of it.
	Body string
}

// RobotError is a post a robot did not accept.
type RobotError struct {
	// Robot is the robot's name.
	Robot string
	// Answer is what it answered.
	Answer Answer
	// Err says why the answer is not a success (or why none came).
	Err error
}

// Error names the robot and why; it never holds the webhook.
func (e *RobotError) Error() string {
	if e.Answer.Status == 0 {
		return fmt.Sprintf("robot %s: %v", e.Robot, e.Err)
	}
	return fmt.Sprintf("robot %s: HTTP %d %s: %v", e.Robot, e.Answer.Status, e.Answer.Body, e.Err)
}

// Unwrap returns the cause.
func (e *RobotError) Unwrap() error { return e.Err }

// robot posts messages to one configured robot.
type robot struct {
	cfg    RobotConfig
	client *http.Client
	now    func() time.Time
}

// post sends m once and reads the answer.
func (r *robot) post(ctx context.Context, m Message) (Answer, error) {
	req, err := r.request(ctx, m)
	if err != nil {
		return Answer{}, &RobotError{Robot: r.cfg.Name, Err: err}
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return Answer{}, &RobotError{Robot: r.cfg.Name, Err: redactURL(err)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	a := Answer{Status: resp.StatusCode, Body: string(b)}
	if err := accepted(r.cfg.Type, a); err != nil {
		return a, &RobotError{Robot: r.cfg.Name, Answer: a, Err: err}
	}
	return a, nil
}

// request builds the signed POST of m for the robot's kind.
func (r *robot) request(ctx context.Context, m Message) (*http.Request, error) {
	target := r.cfg.Webhook
	var body any
	switch r.cfg.Type {
	case DingTalk:
		body = map[string]any{"msgtype": "markdown", "markdown": map[string]string{"title": m.Title, "text": m.Markdown}}
		if r.cfg.Secret != "" {
			u, err := url.Parse(target)
			if err != nil {
				return nil, errors.New("webhook is not a URL")
			}
			ts := strconv.FormatInt(r.now().UnixMilli(), 10)
			q := u.Query()
			q.Set("timestamp", ts)
			q.Set("sign", DingTalkSign(r.cfg.Secret, ts))
			u.RawQuery = q.Encode()
			target = u.String()
		}
	case Feishu:
		color := "green"
		if m.Alarm {
			color = "red"
		}
		msg := map[string]any{
			"msg_type": "interactive",
			"card": map[string]any{
				"config":   map[string]any{"wide_screen_mode": true},
				"header":   map[string]any{"title": map[string]string{"tag": "plain_text", "content": m.Title}, "template": color},
				"elements": []any{map[string]string{"tag": "markdown", "content": m.Markdown}},
			},
		}
		if r.cfg.Secret != "" {
			ts := strconv.FormatInt(r.now().Unix(), 10)
			msg["timestamp"] = ts
			msg["sign"] = FeishuSign(r.cfg.Secret, ts)
		}
		body = msg
	case WeCom:
		body = map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": m.Markdown}}
	default:
		return nil, fmt.Errorf("unknown robot type %q", r.cfg.Type)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, &buf)
	if err != nil {
		return nil, errors.New("webhook is not a URL")
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	return req, nil
}

// DingTalkSign is a DingTalk robot's signature as DingTalk documents it:
// Base64(HMAC-SHA256(key secret, timestamp + "\n" + secret)), timestamp in
// milliseconds. It goes URL-encoded in the query, with the timestamp.
func DingTalkSign(secret, timestamp string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// FeishuSign is a Feishu/Lark bot's signature as Feishu documents it:
// Base64(HMAC-SHA256 keyed with timestamp + "\n" + secret over an empty
// message), timestamp in seconds. It goes in the JSON body, with the
// timestamp.
func FeishuSign(secret, timestamp string) string {
	mac := hmac.New(sha256.New, []byte(timestamp+"\n"+secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// accepted reads a robot's answer: HTTP 2xx and an errcode (DingTalk,
// WeCom) or code (Feishu; StatusCode in its older answers) of 0. An
// answer that says neither is not taken as a success.
func accepted(kind Kind, a Answer) error {
	if a.Status < 200 || a.Status > 299 {
		return fmt.Errorf("HTTP status %d", a.Status)
	}
	var ans struct {
		ErrCode    *int   `json:"errcode"`
		ErrMsg     string `json:"errmsg"`
		Code       *int   `json:"code"`
		Msg        string `json:"msg"`
		StatusCode *int   `json:"StatusCode"`
	}
	if err := json.Unmarshal([]byte(a.Body), &ans); err != nil {
		return fmt.Errorf("answer is not JSON: %v", err)
	}
	switch kind {
	case Feishu:
		switch {
		case ans.Code != nil && *ans.Code == 0:
			return nil
		case ans.Code != nil:
			return fmt.Errorf("code %d: %s", *ans.Code, ans.Msg)
		case ans.StatusCode != nil && *ans.StatusCode == 0:
			return nil
		case ans.StatusCode != nil:
			return fmt.Errorf("StatusCode %d", *ans.StatusCode)
		}
		return errors.New("answer has no code")
	default:
		switch {
		case ans.ErrCode != nil && *ans.ErrCode == 0:
			return nil
		case ans.ErrCode != nil:
			return fmt.Errorf("errcode %d: %s", *ans.ErrCode, ans.ErrMsg)
		}
		return errors.New("answer has no errcode")
	}
}

// redactURL drops the URL from an HTTP client error: the webhook holds the
// robot's token.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
