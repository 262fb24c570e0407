package signer

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/signer/sdftest"
	"pgregory.net/rapid"
)

// TestSDFPasswordProperty drives the SDF signer through random runs of
// opens with right and wrong passwords, restarts (a new guard over the
// same state directory) and access-right calls that fail in every way the
// device can (a refusal, a device code, an unknown code, no answer), and
// checks in the soft device's own log that no password ever reached the
// device again after an access-right call with it failed, and that no
// wrong password reached it twice.
func TestSDFPasswordProperty(t *testing.T) {
	dev := sdftest.New(t, 0x0f01, 0x0f02, sdftest.Options{MaxWrong: 100})
	old := pinHashIterations
	pinHashIterations = 1000
	t.Cleanup(func() { pinHashIterations = old })
	passwords := []string{sdftest.Password, "11111111", "22222222"}
	faults := []uint32{0, 0, sdftest.SDRPrkRErr, sdftest.SDRCommFail, sdftest.SDRHardFail, sdftest.SDRParDeny, 0x0100ff00, 1}
	rapid.Check(t, func(rt *rapid.T) {
		dev.Reset(t)
		dir, err := os.MkdirTemp("", "sdf-guard-")
		if err != nil {
			rt.Fatal(err)
		}
		defer os.RemoveAll(dir)
		newGuard := func() *PINGuard {
			g, err := NewPINGuard(dir)
			if err != nil {
				rt.Fatal(err)
			}
			return g
		}
		guard := newGuard()
		for range rapid.IntRange(1, 6).Draw(rt, "steps") {
			if rapid.Bool().Draw(rt, "restart") {
				guard = newGuard()
			}
			pw := rapid.SampledFrom(passwords).Draw(rt, "password")
			switch f := rapid.SampledFrom(faults).Draw(rt, "fault"); f {
			case 0:
			case 1:
				dev.Hang(t, "SDF_GetPrivateKeyAccessRight")
			default:
				dev.Fail(t, "SDF_GetPrivateKeyAccessRight", f, 1)
			}
			s, err := OpenSDF(context.Background(), SDFConfig{
				Library: dev.Library, KeyIndex: sdftest.SM2Index, CertFile: dev.SM2Cert, PIN: NewPIN(pw),
				Sessions: 1, CallTimeout: 50 * time.Millisecond, Guard: guard, Name: "sdf-p",
			})
			dev.Release(t)
			if err == nil {
				if _, err := s.Sign(context.Background(), []byte("probe")); err != nil {
					rt.Fatalf("sign after a good open: %v", err)
				}
				s.Close()
			}
		}
		failed := map[string]bool{}
		wrong := map[string]int{}
		for i, a := range dev.Accesses(t) {
			if failed[a.Password] {
				rt.Fatalf("access-right call %d carried a password that had failed before: %+v\n%+v", i, a, dev.Accesses(t))
			}
			if a.Answer != 0 {
				failed[a.Password] = true
			}
			if a.Verdict != "ok" {
				if wrong[a.Password]++; wrong[a.Password] > 1 {
					rt.Fatalf("a wrong password reached the device twice: %+v", dev.Accesses(t))
				}
			}
		}
	})
}
