package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/internal/notify"
	"github.com/ceb179/ceb179/internal/notify/robottest"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// writeNotifyConfig writes a robot configuration file.
func writeNotifyConfig(t *testing.T, robots ...notify.RobotConfig) string {
	t.Helper()
	b, err := json.Marshal(notify.Config{Robots: robots})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "robots.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLocalNotifyRefusedPIN: with `ceb179 local --bridge-config
// --notify-config`, a card that refuses its PIN reaches the group robot
// within two minutes, as the BridgePINRefusedAlarm of template.yaml raised
// by the local stack and posted by the notify function's code; nothing is
// posted before. `ceb179 notify test --local` reaches the same robot.
func TestLocalNotifyRefusedPIN(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local pipeline")
	}
	robot := robottest.New(t, robottest.DingTalk, robottest.WithSecret("SEClocal"))
	robots := writeNotifyConfig(t, notify.RobotConfig{Name: "oncall", Type: notify.DingTalk, Webhook: robot.URL, Secret: robot.Secret})
	card := eporttest.NewSM2Key(t, 0x0300000000000ce1)
	ctl := eporttest.New(t, card.Signer, card.Cert, "88888888")
	statusAddr := freeAddr(t)
	cfg := writeBridgeConfig(t, statusAddr,
		"name: card-1", "type: eport", "ebpCode: 3301964J31", "url: "+ctl.URL(), "pinFile: "+writePIN(t, "12345678"))

	r := startLocal(t, "--bridge-config", cfg, "--notify-config", robots)
	if !strings.Contains(r.out.String(), "alarms ") {
		t.Errorf("banner does not say the alarms are raised locally:\n%s", r.out)
	}
	time.Sleep(2 * time.Second)
	if n := len(robot.Posts()); n != 0 {
		t.Fatalf("%d posts before anything happened: %+v", n, robot.Posts())
	}
	r.ask(t, devstack.DemoOrderSingle, "notify-pin-1")
	var refused time.Time
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if state, _ := bridgeSigner(t, statusAddr); strings.HasPrefix(state, "disabled") {
			refused = time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("signer not disabled after a wrong PIN; output:\n%s", r.out)
		}
	}
	var got robottest.Post
	for deadline := refused.Add(2 * time.Minute); got.Text == ""; time.Sleep(100 * time.Millisecond) {
		for _, p := range robot.Accepted() {
			if strings.Contains(p.Text, "bridge-pin-refused") {
				got = p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message about the refused PIN within 2 minutes; robot got %+v", robot.Posts())
		}
	}
	t.Logf("refused PIN at the robot %v after the signer was disabled", got.At.Sub(refused).Round(time.Second))
	for _, want := range []string{"ceb179-local-bridge-pin-refused", "操作员卡拒绝了 PIN", "operations.md#bridge-pin-refused", "hsmbridge pin-reset"} {
		if !strings.Contains(got.Text, want) {
			t.Errorf("message lacks %q:\n%s", want, got.Text)
		}
	}
	if w := ctl.WrongPINs(); w != 1 {
		t.Errorf("the card got %d wrong PINs, want 1", w)
	}

	var out, errOut lockedBuffer
	before := len(robot.Accepted())
	if code := run(t.Context(), []string{"notify", "test", "--local"}, nil, &out, &errOut); code != exitOK {
		t.Fatalf("notify test --local exit %d:\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "oncall") || !strings.Contains(out.String(), `{"errcode":0,"errmsg":"ok"}`) || len(robot.Accepted()) != before+1 {
		t.Errorf("notify test --local printed:\n%s\nrobot accepted %d, want %d", out.String(), len(robot.Accepted()), before+1)
	}
}

func TestNotifyTestCommand(t *testing.T) {
	t.Parallel()
	ok := robottest.New(t, robottest.Feishu, robottest.WithSecret("s"))
	bad := robottest.New(t, robottest.WeCom)
	bad.FailNext(100, `{"errcode":93000,"errmsg":"invalid webhook url"}`)
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		wantOut  string
		wantPost int
	}{
		{"ok one robot", []string{"--config", writeNotifyConfig(t, notify.RobotConfig{Name: "lark", Type: notify.Feishu, Webhook: ok.URL, Secret: ok.Secret})},
			exitOK, `{"StatusCode":0`, 1},
		{"fail a robot refuses", []string{"--config", writeNotifyConfig(t, notify.RobotConfig{Name: "wc", Type: notify.WeCom, Webhook: bad.URL})},
			exitFail, `"errcode":93000`, 0},
		{"fail no robots", []string{"--config", writeNotifyConfig(t)}, exitFail, "no robots configured", 0},
		{"fail two sources", []string{"--config", "x", "--secret", "arn:aws:ssm:us-east-1:123456789012:parameter/r"}, exitUsage, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut lockedBuffer
			code := run(t.Context(), append([]string{"notify", "test"}, tc.args...), nil, &out, &errOut)
			if code != tc.code || !strings.Contains(out.String(), tc.wantOut) {
				t.Fatalf("exit %d, want %d; output:\n%s%s", code, tc.code, out.String(), errOut.String())
			}
		})
	}
	if n := len(ok.Accepted()); n != 1 {
		t.Errorf("the Feishu bot accepted %d messages, want 1", n)
	}
}
