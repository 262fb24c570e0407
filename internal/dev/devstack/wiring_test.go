package devstack

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/dev/emulator"
	"github.com/ceb179/ceb179/internal/wiring"
)

// TestLocalStackRunsTheProductionWiring: one configuration, given to the
// local stack as its options and to the functions' mains as the
// environment template.yaml would set, builds functions with the same
// settings. Every function the local stack runs is compared, setting by
// setting, with what its main's constructor builds from that environment.
func TestLocalStackRunsTheProductionWiring(t *testing.T) {
	s := startStack(t, Options{
		NoDemo: true, SettleEvery: -1,
		GiveUp:       90 * time.Minute,
		MissingGrace: 45 * time.Minute,
		Allowlist:    []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Notify:       []byte("robots: []\n"),
		AlarmEvery:   time.Hour,
	})
	// The environment of each function, as the template sets it (the
	// endpoints are the local stack's: they are not settings).
	env := map[string]string{
		config.EnvRequestsTable:       s.Published.Tables.Requests,
		config.EnvPaymentsTable:       s.Published.Tables.Payments,
		config.EnvAssembleQueueURL:    s.Published.Queues.Assemble,
		config.EnvSignQueueURL:        s.Published.Queues.Sign,
		config.EnvSignDLQURL:          "http://127.0.0.1:1/sign-dlq",
		config.EnvCustomsUploadURL:    s.CustomsUploadURL,
		config.EnvUploadGiveUpMinutes: "90",
		config.EnvMissingGraceMinutes: "45",
		config.EnvCustomsSourceCIDRs:  "127.0.0.1/32",
		config.EnvNotifySecretARN:     s.NotifySecretARN,
		config.EnvNotifyDocsBaseURL:   "https://github.com/ceb179/ceb179/blob/main/docs/", // the template's default
	}
	getenv := func(name string) string { return env[name] }
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	up, err := config.UploadFromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := config.NotifyFromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	conn := emulator.Connect()
	main := func(name string) config.Function {
		return config.Function{Name: name, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: cfg, Upload: up, AWS: conn.Clients}
	}
	mains := map[string]func() (wiring.Settings, error){
		"ingest":   func() (wiring.Settings, error) { _, st := wiring.Ingest(main("ingest")); return st, nil },
		"assemble": func() (wiring.Settings, error) { _, st := wiring.Assemble(main("assemble")); return st, nil },
		"upload":   func() (wiring.Settings, error) { _, st, err := wiring.Upload(main("upload")); return st, err },
		"settle":   func() (wiring.Settings, error) { _, _, st := wiring.Settle(main("settle")); return st, nil },
		"payments": func() (wiring.Settings, error) { _, st := wiring.Payments(main("payments")); return st, nil },
		"notify":   func() (wiring.Settings, error) { _, st, err := wiring.Notify(main("notify"), nc); return st, err },
	}
	var names []string
	for name := range s.Functions {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"assemble", "ingest", "notify", "payments", "settle", "upload"}; !slices.Equal(names, want) {
		t.Fatalf("the local stack built %v through the wiring, want %v", names, want)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			want, err := mains[name]()
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Functions[name]; !reflect.DeepEqual(got, want) {
				t.Errorf("the local %s differs from the deployed one:\n%s", name, diff(got, want))
			}
		})
	}
}

// diff lists the fields of two Settings that differ.
func diff(local, deployed wiring.Settings) string {
	var out []string
	l, d := reflect.ValueOf(local), reflect.ValueOf(deployed)
	for i := range l.NumField() {
		if !reflect.DeepEqual(l.Field(i).Interface(), d.Field(i).Interface()) {
			out = append(out, fmt.Sprintf("  %s: local %+v, deployed %+v", l.Type().Field(i).Name, l.Field(i).Interface(), d.Field(i).Interface()))
		}
	}
	return strings.Join(out, "\n")
}
