package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"
)

// Kind is a robot vendor.
type Kind string

// The robots notify can post to.
const (
	// DingTalk is a DingTalk (钉钉) custom robot.
	DingTalk Kind = "dingtalk"
	// Feishu is a Feishu (飞书) or Lark custom bot.
	Feishu Kind = "feishu"
	// WeCom is a WeCom (企业微信) group robot.
	WeCom Kind = "wecom"
)

// RobotConfig is one robot of the configuration.
type RobotConfig struct {
	// Name identifies the robot in logs, metrics and `ceb179 notify test`.
	Name string `yaml:"name" json:"name"`
	// Type is dingtalk, feishu (or lark) or wecom.
	Type Kind `yaml:"type" json:"type"`
	// Webhook is the robot's address, with its access token or key. It is
	// a secret: it is never logged.
	Webhook string `yaml:"webhook" json:"webhook"`
	// Secret is the signing secret of a DingTalk robot (加签, SEC...) or a
	// Feishu bot (签名校验); empty when the robot does not sign. WeCom
	// robots have none.
	Secret string `yaml:"secret" json:"secret,omitempty"`
}

// Config is what the secret (or `ceb179 local --notify-config FILE`)
// holds: the robots, and optionally the base URL of the documentation the
// messages link to.
type Config struct {
	// Robots are the robots each alarm change is posted to.
	Robots []RobotConfig `yaml:"robots" json:"robots"`
	// DocsBaseURL, when set, replaces the template's NotifyDocsBaseUrl.
	DocsBaseURL string `yaml:"docsBaseUrl" json:"docsBaseUrl,omitempty"`
}

// ParseConfig reads a configuration in JSON or YAML and checks it. Unknown
// keys are errors; the error text never holds a webhook or a secret.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("notify config: %w", redactYAML(err))
	}
	var errs []error
	seen := map[string]bool{}
	for i := range c.Robots {
		r := &c.Robots[i]
		where := fmt.Sprintf("robots[%d] %q", i, r.Name)
		if r.Type == "lark" {
			r.Type = Feishu
		}
		switch {
		case r.Name == "":
			errs = append(errs, fmt.Errorf("%s: name is required", where))
		case seen[r.Name]:
			errs = append(errs, fmt.Errorf("%s: name used twice", where))
		}
		seen[r.Name] = true
		switch r.Type {
		case DingTalk, Feishu, WeCom:
		default:
			errs = append(errs, fmt.Errorf("%s: type must be dingtalk, feishu (or lark) or wecom", where))
		}
		if err := checkWebhook(r.Webhook); err != nil {
			errs = append(errs, fmt.Errorf("%s: webhook %w", where, err))
		}
		if r.Type == WeCom && r.Secret != "" {
			errs = append(errs, fmt.Errorf("%s: a WeCom group robot has no signing secret (its key is in the webhook)", where))
		}
	}
	if c.DocsBaseURL != "" {
		if u, err := url.Parse(c.DocsBaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, errors.New("docsBaseUrl must be an http(s) URL"))
		}
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("notify config: %w", errors.Join(errs...))
	}
	return c, nil
}

// checkWebhook accepts https addresses, and http only on loopback (a
// robot stand-in on this machine). It never quotes the address.
func checkWebhook(raw string) error {
	if raw == "" {
		return errors.New("is required")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("is not a URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return errors.New("must be https (http only on loopback)")
	}
	return errors.New("must be https")
}

// redactYAML keeps a YAML error's position and kind but not the value it
// quotes, which may be a webhook.
func redactYAML(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "`"); i >= 0 {
		msg = msg[:i] + "(value not shown)"
	}
	return errors.New(msg)
}

// NoRobots is the configuration source of a stack without robots: every
// change is received and nothing is posted.
var NoRobots ConfigSource = noRobots{}

type noRobots struct{}

func (noRobots) Read(context.Context) ([]byte, error) { return []byte(`{"robots":[]}`), nil }
