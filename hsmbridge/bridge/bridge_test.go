package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/internal/signer"
	"github.com/ceb179/ceb179/internal/signer/eporttest"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// keySpec is a signer spec over a key file signer paced at interval.
func keySpec(name, ebp string, key eporttest.Key, interval time.Duration) bridge.SignerSpec {
	return bridge.SignerSpec{Name: name, EbpCode: ebp, Open: func(context.Context) (signer.Signer, error) {
		ks, err := signer.NewKeyFilePEM(key.KeyPEM, key.CertPEM)
		if err != nil {
			return nil, err
		}
		return &pacedSigner{Signer: ks, interval: interval}, nil
	}}
}

// TestKillLosesNothing kills a bridge in the middle of a batch (every call
// it makes fails from that instant, and it gets no chance to give its jobs
// back), then starts another: the messages come back after their
// visibility timeout and every session reaches customs exactly once.
func TestKillLosesNothing(t *testing.T) {
	key := eporttest.NewRSAKey(t, 0x11)
	for _, tc := range []struct {
		name   string
		killAt int // accepted uploads before the kill
	}{
		{"ok kill after a few", 5},
		{"ok kill mid batch", 60},
		{"ok kill near the end", 115},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const n = 120
				q, up := newFakeQueue(), newFakeUploader()
				up.uploadLatency = 150 * time.Millisecond
				for i := range n {
					q.sendJob(fmt.Sprintf("K%03d", i), "EBP1", time.Now().Add(10*time.Minute))
				}
				start := func(k *killable) (context.CancelFunc, chan struct{}) {
					b, err := bridge.New(bridge.Options{
						Queue: k, Uploader: k, Logger: quietLogger(), Visibility: 30 * time.Second,
						Signers: []bridge.SignerSpec{
							keySpec("a", "EBP1", key, 100*time.Millisecond),
							keySpec("b", "EBP1", key, 100*time.Millisecond),
						},
					})
					if err != nil {
						t.Fatal(err)
					}
					ctx, cancel := context.WithCancel(t.Context())
					done := make(chan struct{})
					go func() { defer close(done); b.Run(ctx) }()
					return cancel, done
				}

				first := &killable{q: q, u: up}
				cancel, done := start(first)
				for up.accepted() < tc.killAt {
					time.Sleep(10 * time.Millisecond)
				}
				first.dead.Store(true)
				cancel()
				<-done
				killedAt := time.Now()
				if q.len() == 0 {
					t.Fatal("nothing left to recover: kill came too late")
				}

				second := &killable{q: q, u: up}
				cancel, done = start(second)
				for q.len() > 0 && time.Since(killedAt) < 10*time.Minute {
					time.Sleep(time.Second)
				}
				cancel()
				<-done

				if q.len() != 0 {
					t.Errorf("%d messages still in the queue", q.len())
				}
				up.mu.Lock()
				defer up.mu.Unlock()
				if len(up.posts) != n {
					t.Errorf("%d sessions reached customs, want %d", len(up.posts), n)
				}
				for sid, p := range up.posts {
					if p != 1 {
						t.Errorf("session %s posted %d times", sid, p)
					}
				}
			})
		})
	}
}

// TestBridgeKeyFiles runs jobs of two ebpCodes through key file signers
// and checks each job is signed by a signer of its own ebpCode.
func TestBridgeKeyFiles(t *testing.T) {
	k1, k2 := eporttest.NewRSAKey(t, 0x21), eporttest.NewRSAKey(t, 0x22)
	synctest.Test(t, func(t *testing.T) {
		q, up := newFakeQueue(), newFakeUploader()
		up.addCert(k1.Cert)
		up.addCert(k2.Cert)
		b, err := bridge.New(bridge.Options{
			Queue: q, Uploader: up, Logger: quietLogger(),
			Signers: []bridge.SignerSpec{
				keySpec("p1", "EBP1", k1, 10*time.Millisecond),
				keySpec("p2", "EBP2", k2, 10*time.Millisecond),
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); b.Run(ctx) }()
		for i := range 40 {
			q.sendJob(fmt.Sprintf("J%02d", i), fmt.Sprintf("EBP%d", i%2+1), time.Now().Add(2*time.Minute))
		}
		for q.len() > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
		<-done
		st := b.Status()
		if st.Totals.OnTime != 40 || up.badSigs != 0 {
			t.Errorf("on time %d, bad signatures %d; want 40, 0", st.Totals.OnTime, up.badSigs)
		}
		for sid, certNo := range up.certNos {
			var i int
			fmt.Sscanf(sid, "J%d", &i)
			want := "21"
			if i%2 == 1 {
				want = "22"
			}
			if certNo != want {
				t.Errorf("session %s signed with certNo %s, want %s", sid, certNo, want)
			}
		}
	})
}

// TestStatusEndpoint checks the endpoint answers on loopback with the
// queue depth and the signers.
func TestStatusEndpoint(t *testing.T) {
	key := eporttest.NewRSAKey(t, 0x31)
	q, up := newFakeQueue(), newFakeUploader()
	addrc := make(chan net.Addr, 1)
	b, err := bridge.New(bridge.Options{
		Queue: q, Uploader: up, Logger: quietLogger(), StatusAddr: "127.0.0.1:0",
		OnStatusListen: func(a net.Addr) { addrc <- a },
		Signers:        []bridge.SignerSpec{keySpec("card1", "EBP1", key, 0)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	addr := <-addrc
	var st ceb179.SignerHealth
	for range 250 {
		resp, err := http.Get("http://" + addr.String() + "/status")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Signers) == 1 && st.Signers[0].State == "healthy" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(st.Signers) != 1 || st.Signers[0].State != "healthy" || st.Signers[0].CertNo != "31" {
		t.Errorf("status signers = %+v", st.Signers)
	}
	if st.MaxBacklog != 2000 || st.Policy != "EDF" {
		t.Errorf("status = %+v", st)
	}
	// DNS rebinding: the endpoint reached under a foreign name answers 403.
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr.String()+"/status", nil)
	req.Host = "rebind.evil.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Host: status %d, want 403", resp.StatusCode)
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		name, addr string
		ok         bool
	}{
		{"ok IPv4 loopback", "127.0.0.1:9179", true},
		{"ok IPv6 loopback", "[::1]:9179", true},
		{"ok localhost", "localhost:9179", true},
		{"fail all interfaces", ":9179", false},
		{"fail wildcard", "0.0.0.0:9179", false},
		{"fail LAN address", "192.168.1.10:9179", false},
		{"fail no port", "127.0.0.1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := bridge.CheckLoopback(tc.addr)
			if (err == nil) != tc.ok {
				t.Errorf("CheckLoopback(%q) = %v", tc.addr, err)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	key := eporttest.NewRSAKey(t, 0x41)
	q, up := newFakeQueue(), newFakeUploader()
	for _, tc := range []struct {
		name string
		o    bridge.Options
		want string
	}{
		{"fail no signers", bridge.Options{Queue: q, Uploader: up}, "no signers"},
		{"fail no queue", bridge.Options{Uploader: up, Signers: []bridge.SignerSpec{keySpec("a", "E", key, 0)}}, "required"},
		{"fail duplicate name", bridge.Options{Queue: q, Uploader: up, Signers: []bridge.SignerSpec{keySpec("a", "E", key, 0), keySpec("a", "E", key, 0)}}, "twice"},
		{"fail no ebpCode", bridge.Options{Queue: q, Uploader: up, Signers: []bridge.SignerSpec{keySpec("a", "", key, 0)}}, "ebpCode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bridge.New(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
