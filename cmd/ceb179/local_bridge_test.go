package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/dev/customssim"
	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// localRun is `ceb179 local` running in this process.
type localRun struct {
	addr   string
	out    *lockedBuffer
	cancel context.CancelFunc
	code   chan int
}

// startLocal runs `ceb179 local --listen ADDR args...` in this process, in a
// temporary working directory (its data folder lands there), with the
// built-in customs simulator, and waits until it is ready.
func startLocal(t *testing.T, args ...string) *localRun {
	t.Helper()
	return startLocalEnv(t, map[string]string{"CUSTOMS_UPLOAD_URL": "", "CUSTOMS_CA_FILE": ""}, args...)
}

// startLocalEnv is startLocal with these environment variables.
func startLocalEnv(t *testing.T, env map[string]string, args ...string) *localRun {
	t.Helper()
	t.Chdir(t.TempDir())
	for k, v := range env {
		t.Setenv(k, v)
	}
	r := &localRun{addr: freeAddr(t), out: &lockedBuffer{}, code: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	var stderr lockedBuffer
	go func() {
		r.code <- run(ctx, append([]string{"local", "--listen", r.addr}, args...), nil, r.out, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.code
	})
	r.waitFor(t, "Ready.", 90*time.Second, func() bool {
		select {
		case c := <-r.code:
			t.Fatalf("ceb179 local exited %d before it was ready:\n%s\n%s", c, r.out, stderr.String())
		default:
		}
		return false
	})
	return r
}

// waitFor waits until the output contains want, calling check meanwhile.
func (r *localRun) waitFor(t *testing.T, want string, within time.Duration, check func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !strings.Contains(r.out.String(), want); time.Sleep(50 * time.Millisecond) {
		if check != nil && check() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q after %s; output:\n%s", want, within, r.out)
		}
	}
}

// ask calls platDataOpen as customs does and checks the 10000.
func (r *localRun) ask(t *testing.T, orderNo, sessionID string) {
	t.Helper()
	open := fmt.Sprintf(`{"orderNo":%q,"sessionID":%q,"serviceTime":%d}`, orderNo, sessionID, time.Now().UnixMilli())
	resp, err := http.PostForm("http://"+r.addr+"/platDataOpen", url.Values{"openReq": {open}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"code":"10000"`) {
		t.Fatalf("ack %s", body)
	}
}

// stop sends Ctrl-C and returns the exit code.
func (r *localRun) stop() int {
	r.cancel()
	c := <-r.code
	r.code <- c
	return c
}

// writeBridgeConfig writes an hsmbridge configuration with one signer
// (the YAML lines of that signer) and a status endpoint on statusAddr, and
// points the machine's state directory at a temporary one for the test.
func writeBridgeConfig(t *testing.T, statusAddr string, signerYAML ...string) string {
	t.Helper()
	t.Setenv(bridge.EnvStateDir, t.TempDir())
	cfg := "statusAddr: " + statusAddr + "\nprobeInterval: 1s\nsignTimeout: 10s\nsigners:\n  - " + strings.Join(signerYAML, "\n    ") + "\n"
	p := filepath.Join(t.TempDir(), "hsmbridge.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writePIN writes a PIN file.
func writePIN(t *testing.T, pin string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "card.pin")
	if err := os.WriteFile(p, []byte(pin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// bridgeSignerStatus is one signer on hsmbridge's status endpoint.
type bridgeSignerStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Signs int64  `json:"signs"`
}

// bridgeSigners reads the signers of hsmbridge's status endpoint.
func bridgeSigners(t *testing.T, statusAddr string) []bridgeSignerStatus {
	t.Helper()
	resp, err := http.Get("http://" + statusAddr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Signers []bridgeSignerStatus `json:"signers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.Signers) == 0 {
		t.Fatalf("hsmbridge status: %v %+v", err, st)
	}
	return st.Signers
}

// bridgeSigner reads the first signer of hsmbridge's status endpoint.
func bridgeSigner(t *testing.T, statusAddr string) (state string, signs int64) {
	t.Helper()
	s := bridgeSigners(t, statusAddr)[0]
	return s.State, s.Signs
}

// TestLocalBridgeConfigEPort runs `ceb179 local --bridge-config` with an
// E-Port card behind the fake client control (real WebSocket, the _id 0
// notice on connect): the card's certificate is read from the card and
// registered for its ebpCode, the banner shows it, the demo records are
// the card's platform's, and a customs request for a two-order payment
// ends in an upload the simulator verified against that certificate.
func TestLocalBridgeConfigEPort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local pipeline")
	}
	card := eporttest.NewSM2Key(t, 0x0300000000000cde)
	ctl := eporttest.New(t, card.Signer, card.Cert, "88888888")
	statusAddr := freeAddr(t)
	cfg := writeBridgeConfig(t, statusAddr,
		"name: card-1", "type: eport", "ebpCode: 3301964J31", "url: "+ctl.URL(), "pinFile: "+writePIN(t, "88888888"))

	r := startLocal(t, "--bridge-config", cfg)
	banner := r.out.String()
	for _, want := range []string{"card-1", "eport", "ebpCode 3301964J31", "certNo " + ctl.CertNo(), "SM2 (SM3)", "hsmbridge      http://" + statusAddr + "/status"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if ctl.CertNo() != "0300000000000cde" {
		t.Fatalf("card certNo %s", ctl.CertNo())
	}

	r.ask(t, devstack.DemoOrderMultiB, "bridge-eport-1")
	r.waitFor(t, "bridge-eport-1  order "+devstack.DemoOrderMultiB+"  uploaded and accepted by customs", 60*time.Second, nil)
	if state, signs := bridgeSigner(t, statusAddr); state != "healthy" || signs < 1 {
		t.Errorf("hsmbridge signer %s with %d signatures, want healthy with at least 1", state, signs)
	}
	// The upload was signed by the card (a card is probed without its
	// PIN, so there is no test signature).
	if n := ctl.Signs(); n < 1 {
		t.Errorf("the card made %d signatures, want at least 1", n)
	}
	if c := r.stop(); c != exitOK {
		t.Fatalf("exit %d:\n%s", c, r.out)
	}
	for _, want := range []string{"ceb179 local stopped.", "accepted on time: 1"} {
		if !strings.Contains(r.out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}
}

// TestLocalBridgeConfigWrongPIN proves the bridge's PIN safety inside
// `ceb179 local`: a card whose PIN file holds a wrong PIN is sent exactly
// one PIN-bearing call (counted by the fake control), is disabled, and
// stays untouched while customs requests arrive and probe intervals pass.
func TestLocalBridgeConfigWrongPIN(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local pipeline")
	}
	card := eporttest.NewSM2Key(t, 0x0300000000000cdf)
	ctl := eporttest.New(t, card.Signer, card.Cert, "88888888")
	statusAddr := freeAddr(t)
	cfg := writeBridgeConfig(t, statusAddr,
		"name: card-1", "type: eport", "ebpCode: 3301964J31", "url: "+ctl.URL(), "pinFile: "+writePIN(t, "12345678"))

	r := startLocal(t, "--bridge-config", cfg)
	r.ask(t, devstack.DemoOrderSingle, "bridge-pin-1")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if state, _ := bridgeSigner(t, statusAddr); strings.HasPrefix(state, "disabled") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("signer not disabled after a wrong PIN; output:\n%s", r.out)
		}
	}
	// Several probe intervals (1 s) and a second request later, the card
	// still saw one PIN.
	r.ask(t, devstack.DemoOrderMultiA, "bridge-pin-2")
	time.Sleep(4 * time.Second)
	if w, n := ctl.WrongPINs(), ctl.SignRequests(); w != 1 || n != 1 {
		t.Fatalf("the card got %d wrong PINs in %d PIN-bearing calls, want exactly 1 of each", w, n)
	}
	if strings.Contains(r.out.String(), "accepted by customs") {
		t.Fatalf("an upload was accepted without a signature:\n%s", r.out)
	}
	if c := r.stop(); c != exitOK {
		t.Fatalf("exit %d:\n%s", c, r.out)
	}
}

// TestBenchBridgeConfig runs `ceb179 bench --bridge-config` briefly
// against a fake card signing 1,200 a minute and checks what it prints,
// and the flags it refuses.
func TestBenchBridgeConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local pipeline")
	}
	card := eporttest.NewSM2Key(t, 0x0300000000000ce0)
	ctl := eporttest.New(t, card.Signer, card.Cert, "88888888")
	ctl.SetRate(1200)
	cfg := writeBridgeConfig(t, "off",
		"name: card-1", "type: eport", "ebpCode: 3301964J31", "url: "+ctl.URL(), "pinFile: "+writePIN(t, "88888888"))

	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"ok short run", []string{"--bridge-config", cfg, "--scale", "0.025"}, exitOK,
			[]string{"steady rate (warm-up)", "card-1  3301964J31", "/min ±", "back-to-back", "real time", "max on time", "FIFO on time",
				"of the most possible", "how many signers:", "offering"}},
		{"fail with --compress", []string{"--bridge-config", cfg, "--compress", "4"}, exitUsage, []string{"real time"}},
		{"fail missing file", []string{"--bridge-config", filepath.Join(t.TempDir(), "none.yaml")}, exitUsage, []string{"hsmbridge config"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, nil, append([]string{"bench"}, tt.args...)...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout+r.stderr, w) {
					t.Errorf("output lacks %q:\n%s\n%s", w, r.stdout, r.stderr)
				}
			}
		})
	}
}

// TestLocalBridgeConfigJointTest plays the joint test from one PC on
// loopback: CUSTOMS_UPLOAD_URL points at an https endpoint that, like
// customs' joint-test endpoint, answers 10000 without verifying
// signatures. Its certificate is trusted only through CUSTOMS_CA_FILE:
// with it the card's upload arrives, without it TLS verification refuses
// the endpoint and nothing is sent.
func TestLocalBridgeConfigJointTest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole local pipeline")
	}
	card := eporttest.NewSM2Key(t, 0x0300000000000ce1)
	ctl := eporttest.New(t, card.Signer, card.Cert, "88888888")
	cfg := writeBridgeConfig(t, "off",
		"name: card-1", "type: eport", "ebpCode: 3301964J31", "url: "+ctl.URL(), "pinFile: "+writePIN(t, "88888888"))
	joint := customssim.New(customssim.WithoutSignatureCheck())
	srv := httptest.NewUnstartedServer(joint)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake of the failing case
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	uploadURL := srv.URL + customssim.UploadPath

	t.Run("ok verified with CUSTOMS_CA_FILE", func(t *testing.T) {
		r := startLocalEnv(t, map[string]string{"CUSTOMS_UPLOAD_URL": uploadURL, "CUSTOMS_CA_FILE": caFile}, "--bridge-config", cfg)
		if !strings.Contains(r.out.String(), "customs        "+uploadURL) {
			t.Errorf("banner does not name the endpoint:\n%s", r.out)
		}
		r.ask(t, devstack.DemoOrderSingle, "joint-1")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		up, err := joint.Wait(ctx, "joint-1")
		if err != nil {
			t.Fatalf("no upload at the https endpoint: %v\n%s", err, r.out)
		}
		if !up.Accepted() || up.CertNo != ctl.CertNo() {
			t.Fatalf("upload %+v, want accepted with the card's certNo %s", up, ctl.CertNo())
		}
		r.waitFor(t, "joint-1  order "+devstack.DemoOrderSingle+"  uploaded and accepted by customs", 30*time.Second, nil)
	})
	t.Run("fail endpoint not trusted without the CA", func(t *testing.T) {
		before := len(joint.Uploads())
		r := startLocalEnv(t, map[string]string{"CUSTOMS_UPLOAD_URL": uploadURL, "CUSTOMS_CA_FILE": ""}, "--bridge-config", cfg)
		r.ask(t, devstack.DemoOrderSingle, "joint-2")
		logFile := filepath.Join(".ceb179", "ceb179-local.log")
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			b, _ := os.ReadFile(logFile)
			if strings.Contains(string(b), "certificate signed by unknown authority") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no TLS verification failure logged:\n%s\n%s", b, r.out)
			}
		}
		if n := len(joint.Uploads()); n != before {
			t.Fatalf("%d uploads reached an untrusted endpoint", n-before)
		}
		if strings.Contains(r.out.String(), "joint-2  order "+devstack.DemoOrderSingle+"  uploaded and accepted") {
			t.Fatalf("accepted by an untrusted endpoint:\n%s", r.out)
		}
	})
}

func TestTryCurl(t *testing.T) {
	tests := []struct {
		name, goos, want string
	}{
		{"ok POSIX shell", "linux", `curl -s http://127.0.0.1:8080/platDataOpen --data-urlencode 'openReq={"orderNo":"DEMO-ORDER-1","sessionID":"demo-1","serviceTime":1700000000000}'`},
		{"ok cmd.exe on Windows", "windows", `curl.exe -s http://127.0.0.1:8080/platDataOpen --data-urlencode "openReq={\"orderNo\":\"DEMO-ORDER-1\",\"sessionID\":\"demo-1\",\"serviceTime\":1700000000000}"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tryCurl(tt.goos, "http://127.0.0.1:8080", "DEMO-ORDER-1", "demo-1", 1700000000000); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestLocalBridgeConfigUsage(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("signers:\n  - {name: card-1, type: eport, ebpCode: 3301964J31, pinFile: p, colour: red}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noPIN := filepath.Join(dir, "nopin.yaml")
	if err := os.WriteFile(noPIN, []byte("signers:\n  - {name: card-1, type: eport, ebpCode: 3301964J31}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"fail with a key file too", []string{"--bridge-config", bad, "--signer-key", "k.pem", "--signer-cert", "c.pem"}, "brings its own signers"},
		{"fail unknown key in the file", []string{"--bridge-config", bad}, "colour"},
		{"fail card without a PIN", []string{"--bridge-config", noPIN}, "pinFile or pinEnv"},
		{"fail missing file", []string{"--bridge-config", filepath.Join(dir, "none.yaml")}, "none.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, nil, append([]string{"local", "--listen", "127.0.0.1:0"}, tt.args...)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, exitUsage, tt.want)
			}
			if strings.Contains(r.stdout, "starting") {
				t.Fatalf("started a stack: %s", r.stdout)
			}
		})
	}
}
