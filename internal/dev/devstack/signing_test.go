package devstack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dev/emulator"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

// cardConfig returns an hsmbridge configuration with one E-Port signer at
// ctl for ebpCode 3301964J31, its status endpoint on statusAddr.
func cardConfig(t *testing.T, ctl *eporttest.Control, statusAddr string) *bridge.Config {
	t.Helper()
	t.Setenv(bridge.EnvStateDir, t.TempDir())
	dir := t.TempDir()
	pin := filepath.Join(dir, "card.pin")
	if err := os.WriteFile(pin, []byte("88888888\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf("statusAddr: %q\nprobeInterval: 1s\nsigners:\n  - {name: card-1, type: eport, ebpCode: 3301964J31, url: %q, pinFile: %q}\n", statusAddr, ctl.URL(), pin)
	p := filepath.Join(dir, "hsmbridge.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadBridgeConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestBridgeConfigCardLate starts the stack while the card cannot be read
// (no card in the reader): the stack comes up and says why, and once the
// card is back hsmbridge opens it, registers its certificate for its
// ebpCode, and a request is signed by it and verified by the simulator.
func TestBridgeConfigCardLate(t *testing.T) {
	card := eporttest.NewSM2Key(t, 0x0300000000000d01)
	ctl := eporttest.New(t, card.Signer, card.Cert, "88888888")
	ctl.SetMode(eporttest.NoCard)
	s := startStack(t, Options{BridgeConfig: cardConfig(t, ctl, "127.0.0.1:0")})

	if s.EbpCode != "3301964J31" || len(s.Signers) != 1 {
		t.Fatalf("ebpCode %s, signers %+v", s.EbpCode, s.Signers)
	}
	if si := s.Signers[0]; si.CertNo != "" || !strings.Contains(si.Err, "50070") || si.Type != "eport" {
		t.Fatalf("signer at start: %+v, want not open with the reader's 50070", si)
	}
	if !strings.HasPrefix(s.BridgeStatusURL, "http://127.0.0.1:") {
		t.Errorf("status URL %q", s.BridgeStatusURL)
	}
	if _, err := s.Store.GetCertificate(context.Background(), "3301964J31", ctl.CertNo()); err == nil {
		t.Fatal("certificate registered before the card was read")
	}

	ctl.SetMode(eporttest.Normal)
	sid := "late-card-1"
	if code := ask(t, s, DemoOrderSingle, sid); code != customs.CodeSuccess {
		t.Fatalf("ack %s", code)
	}
	if req := waitState(t, s, sid, 60*time.Second); req.State != ceb179.StateAccepted {
		t.Fatalf("state %s (%s)", req.State, req.Reason)
	}
	up, err := s.Sim.Wait(context.Background(), sid)
	if err != nil {
		t.Fatal(err)
	}
	if !up.SignatureValid || up.CertNo != ctl.CertNo() {
		t.Fatalf("upload %+v, want a valid signature by the card %s", up, ctl.CertNo())
	}
	if _, err := s.Store.GetCertificate(context.Background(), "3301964J31", ctl.CertNo()); err != nil {
		t.Fatalf("card certificate not registered: %v", err)
	}
}

// TestBridgeConfigStatusAddressTaken checks that a stack whose hsmbridge
// cannot serve its status endpoint does not start, and says why.
func TestBridgeConfigStatusAddressTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	card := eporttest.NewSM2Key(t, 0x0300000000000d02)
	ctl := eporttest.New(t, card.Signer, card.Cert, "88888888")
	_, err = Start(context.Background(), Options{
		Listen: "127.0.0.1:0", DataDir: t.TempDir(), Prefix: emulator.NewPrefix(t.Name()),
		BridgeConfig: cardConfig(t, ctl, ln.Addr().String()),
	})
	if err == nil || !strings.Contains(err.Error(), "status endpoint") {
		t.Fatalf("err = %v, want the status endpoint's failure", err)
	}
	if ctl.SignRequests() != 0 {
		t.Fatalf("the card got %d PIN-bearing calls from a stack that did not start", ctl.SignRequests())
	}
}
