package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/internal/dev/lambdatest"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// rudeCard is one card of TestLocalBridgeConfigRudeControls: a fake
// control that answers a wrong PIN in its own way, or a card with a good
// PIN in an awkward file.
type rudeCard struct {
	row    string
	name   string
	answer eporttest.Answer
	pin    []byte // the PIN file's bytes
	good   bool   // the file holds the card's PIN
	ctl    *eporttest.Control
	seen   []int // wrong PINs counted at the control after each phase
}

// bridgeStates reads every signer's state from hsmbridge's status endpoint.
func bridgeStates(t *testing.T, statusAddr string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, s := range bridgeSigners(t, statusAddr) {
		out[s.Name] = s.State
	}
	return out
}

// TestLocalBridgeConfigRudeControls reruns issue 19's table through the
// real commands: `ceb179 local --bridge-config` with jobs arriving and a
// 1 s probe interval, then a restart of it, then the hsmbridge binary's
// `check` from a copy of the configuration in another folder. Five cards
// get a wrong PIN and answer it as rudely as a control might (no answer,
// a dropped connection, garbage, reader words, "E"); a sixth has its
// right PIN in a Notepad file (UTF-8 byte order mark, CRLF), and its
// reader fails with 50070 for a while. Wrong PINs are counted in each fake
// control as they arrive: at most one per card, none for the Notepad
// card, which signs once its reader is back.
func TestLocalBridgeConfigRudeControls(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local pipeline twice and builds hsmbridge")
	}
	const right, wrong = "88888888", "12345678"
	cards := []*rudeCard{
		{row: "never answers (call times out)", name: "hang", answer: eporttest.RudeAnswers[0]},
		{row: "closes the connection", name: "drop", answer: eporttest.RudeAnswers[1]},
		{row: `answers "Result":"false", Error not a list`, name: "garbage", answer: eporttest.RudeAnswers[2]},
		{row: "answers [读卡器底层库]操作失败", name: "reader-words", answer: eporttest.RudeAnswers[4]},
		{row: "answers E and nothing else", name: "one-letter", answer: eporttest.RudeAnswers[5]},
		{row: "PIN file with BOM and CRLF, right PIN", name: "notepad", pin: []byte("\xEF\xBB\xBF" + right + "\r\n"), good: true},
	}
	stateDir := t.TempDir()
	t.Setenv(bridge.EnvStateDir, stateDir)
	pins := t.TempDir()
	statusAddr := freeAddr(t)
	var cfg strings.Builder
	// A job that fails on a card goes to the next one (up to 6 times)
	// rather than back to the queue, and comes back within a second when
	// it is given back.
	fmt.Fprintf(&cfg, "queueURL: http://127.0.0.1:1/q\nuploadFunction: upload\nstatusAddr: %s\nprobeInterval: 1s\nsignTimeout: 3s\nmaxAttempts: 6\nretryDelay: 1s\nsigners:\n", statusAddr)
	for i, c := range cards {
		k := eporttest.NewSM2Key(t, int64(0x0300000000000e00+i))
		c.ctl = eporttest.New(t, k.Signer, k.Cert, right)
		c.ctl.SetWrongPINAnswer(c.answer)
		if c.pin == nil {
			c.pin = []byte(wrong + "\n")
		}
		timeout := "1s" // the hang is a strike after a second
		if c.good {
			timeout = "10s"
		}
		pinFile := filepath.Join(pins, c.name+".pin")
		if err := os.WriteFile(pinFile, c.pin, 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cfg, "  - {name: %s, type: eport, ebpCode: 3301964J31, url: %q, pinFile: %q, callTimeout: %s}\n", c.name, c.ctl.URL(), pinFile, timeout)
	}
	cfgFile := filepath.Join(t.TempDir(), "hsmbridge.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	seen := func() {
		for _, c := range cards {
			c.seen = append(c.seen, c.ctl.WrongPINs())
		}
	}
	// The local stacks of one test process share their tables, and an
	// order is signed at most 5 times a day: few requests, on the orders
	// the other tests use least.
	orders := []string{devstack.DemoOrderMultiB, devstack.DemoOrderMultiA}
	allDisabled := func() bool {
		disabled := 0
		for _, st := range bridgeStates(t, statusAddr) {
			if strings.HasPrefix(st, "disabled") {
				disabled++
			}
		}
		return disabled == len(cards)-1
	}

	// 1. ceb179 local, jobs arriving until every wrong card is disabled
	// (at most 4 requests), then the Notepad card signs them, then three
	// probe intervals. Until the wrong cards are disabled the Notepad
	// card's reader answers its signatures with 50070 (a known code: its
	// PIN stays usable), so that the jobs go round the other cards.
	notepad := cards[len(cards)-1]
	notepad.ctl.SetMode(eporttest.Reset50070)
	r := startLocal(t, "--bridge-config", cfgFile)
	if want := "PIN markers    " + filepath.Join(stateDir, bridge.PINRefusedDir); !strings.Contains(r.out.String(), want) {
		t.Errorf("banner lacks %q:\n%s", want, r.out)
	}
	for i := 0; i < 4 && !allDisabled(); i++ {
		r.ask(t, orders[i%len(orders)], fmt.Sprintf("rude-%d", i))
		for deadline := time.Now().Add(5 * time.Second); !allDisabled() && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
		}
	}
	notepad.ctl.SetMode(eporttest.Normal)
	for deadline := time.Now().Add(60 * time.Second); notepad.ctl.Signs() == 0 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	states := bridgeStates(t, statusAddr)
	if c := r.stop(); c != exitOK {
		t.Fatalf("exit %d:\n%s", c, r.out)
	}
	seen()

	// 2. A restart, a job and three probe intervals: the markers are the
	// machine's, nothing is sent.
	r = startLocal(t, "--bridge-config", cfgFile)
	r.ask(t, devstack.DemoOrderMultiB, "rude-restart")
	time.Sleep(4 * time.Second)
	restarted := bridgeStates(t, statusAddr)
	if c := r.stop(); c != exitOK {
		t.Fatalf("exit %d after the restart:\n%s", c, r.out)
	}
	seen()

	// 3. hsmbridge check, the real binary, from a copy of the
	// configuration in another folder.
	exe := lambdatest.Build(t, "", "", "./hsmbridge")["./hsmbridge"]
	copied := filepath.Join(t.TempDir(), "elsewhere", "hsmbridge.yaml")
	if err := os.MkdirAll(filepath.Dir(copied), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copied, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(exe, "-config", copied, "check")
	cmd.Stdout, cmd.Stderr = &out, &out
	var exit *exec.ExitError
	if err := cmd.Run(); !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("hsmbridge check: %v, want exit 1\n%s", err, out.String())
	}
	seen()

	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "the control, given a wrong PIN\tafter local\tafter restart\tafter check\tstate in local")
	for _, c := range cards {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", c.row, c.seen[0], c.seen[1], c.seen[2], states[c.name])
		switch {
		case c.good:
			if c.seen[2] != 0 || c.ctl.Signs() == 0 || states[c.name] != "healthy" {
				t.Errorf("%s: %d wrong PINs, %d signatures, state %q; want 0, some, healthy", c.name, c.seen[2], c.ctl.Signs(), states[c.name])
			}
			if !strings.Contains(out.String(), "OK   "+c.name) {
				t.Errorf("check did not pass %s:\n%s", c.name, out.String())
			}
		default:
			if c.seen[2] != 1 || c.ctl.PINRequests() != 1 {
				t.Errorf("%s: %d wrong PINs in %d PIN-bearing requests, want exactly 1", c.name, c.seen[2], c.ctl.PINRequests())
			}
			if c.seen[0] != 1 || !strings.HasPrefix(states[c.name], "disabled") || !strings.HasPrefix(restarted[c.name], "disabled") {
				t.Errorf("%s: %d wrong PINs in ceb179 local, state %q, after the restart %q; want 1, disabled, disabled", c.name, c.seen[0], states[c.name], restarted[c.name])
			}
			if !strings.Contains(out.String(), "FAIL "+c.name) {
				t.Errorf("check passed %s:\n%s", c.name, out.String())
			}
		}
	}
	_ = tw.Flush()
	t.Logf("wrong PINs counted at each fake control:\n%s", table.String())
}

// TestBridgeConfigBadPINFile has a PIN file that is not plainly the PIN (a
// trailing space, as in issue 19's table; UTF-16 as PowerShell 5's echo
// writes it): `ceb179 local --bridge-config` refuses to start and says
// what is wrong, and no PIN reaches the card (hsmbridge check: see
// hsmbridge's TestCheckCommand).
func TestBridgeConfigBadPINFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"fail trailing space, right PIN", []byte("88888888 \n"), "a space at character 9 of 9"},
		{"fail PowerShell 5 echo, right PIN", []byte{0xFF, 0xFE, '8', 0, '8', 0, '8', 0, '8', 0, '8', 0, '8', 0, '8', 0, '8', 0, '\r', 0, '\n', 0}, "UTF-16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			card := eporttest.NewSM2Key(t, 0x0300000000000e10)
			ctl := eporttest.New(t, card.Signer, card.Cert, "88888888")
			pinFile := filepath.Join(t.TempDir(), "card.pin")
			if err := os.WriteFile(pinFile, tc.file, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := writeBridgeConfig(t, "off", "name: card-1", "type: eport", "ebpCode: 3301964J31", "url: "+ctl.URL(), "pinFile: "+pinFile)
			t.Chdir(t.TempDir()) // where the local stack keeps its log
			r := runCLI(t, nil, "local", "--listen", "127.0.0.1:0", "--bridge-config", cfg)
			if r.code == exitOK || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, pinFile) {
				t.Errorf("ceb179 local: exit %d, stderr %q; want a failure saying %q about %s", r.code, r.stderr, tc.want, pinFile)
			}
			if strings.Contains(r.stdout+r.stderr, "88888888") {
				t.Errorf("the output holds the PIN")
			}
			if n := ctl.PINRequests(); n != 0 {
				t.Errorf("the card got %d PIN-bearing requests, want 0", n)
			}
		})
	}
}
