package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/ceb179/ceb179/internal/dev/bench"
	"github.com/ceb179/ceb179/internal/dev/devstack"
)

var benchCommand = command{
	name:    "bench",
	summary: "measure the whole pipeline on this machine and print one table",
	run:     runBench,
}

func runBench(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench", "[--scenarios a,b,c,d,e,f,g] [--compress K] [--scale F] | --bridge-config FILE [--load X] [--requests N] [--scale F]", `
Runs the whole pipeline on this machine (the same local stack as
'ceb179 local', everything on loopback) and prints one table: ack latency
p50/p99, end-to-end p50/p99, uploads, on time, and for card-speed signers
the most that could be on time and what first-in-first-out signing gets.

Scenarios: (a) a burst of 10,000 requests with a key-file signer; (b) 50
requests a second for a minute with a key-file signer; (c) 1,500 requests
over 120 s against one signer limited to an E-Port card's 250 signatures a
minute; (d) the same with four such signers; (e) 1,000 requests at 50 a
second, 30% of them for orders with no record, key-file signer; (f) 40
requests for unknown orders at once, then 10 known ones; (g) 10,000
requests over 15 minutes of which 30% are over their orders' daily cap, no
allowlist, one signer at 560 signatures a minute, enough for the requests
within the cap but not for all: every one must be uploaded, those within
the cap on time, the others after them (a second table splits them by the
cap). In (e) and (f) the
latencies and counts are of the known orders, which unknown ones must not
hold up. --compress K runs (c) and (d)
K times faster (every duration divided, every rate multiplied); the table
says which mode ran. --scale shrinks every count and duration for a quick
look.

--bridge-config runs (c)/(d) against the signers of an hsmbridge
configuration file instead: the platform's own cards or cipher machine,
through the same code as 'ceb179 local --bridge-config'. A warm-up keeps
the signers of the first signer's ebpCode busy and measures each one's
steady rate from back-to-back signatures (at least 30, over at least 15 s,
or 15 s times --scale; the first signature after an idle spell, which
costs a card no wait, is not counted), printed with its spread (95%
confidence). Then --load times
that rate arrives for 120 s (or --requests over 120 s), in real time: a
card is a card. The rate is measured again from the signatures made
during the run; if it drifted (a card slowing down), the table says so
and the bound uses the run's rate. The table gives the uploads on time,
the most the measured rates allow on time, what first-in-first-out
signing would get, and how many such signers the load needs.`)
	which := fs.String("scenarios", "a,b,c,d,e,f,g", "which scenarios to run")
	compress := fs.Float64("compress", 4, "time compression for the card-speed scenarios (1: real time)")
	scale := fs.Float64("scale", 1, "fraction of the standard sizes to run (0..1]")
	bridgeFile := fs.String("bridge-config", "", "run against the signers of this hsmbridge configuration file, in real time")
	load := fs.Float64("load", 3, "with --bridge-config: the offered load, as a multiple of the measured rate")
	requests := fs.Int("requests", 0, "with --bridge-config: send this many requests over 120 s instead of --load times the rate")
	if _, code, ok := fs.parse(args, stdout, stderr); !ok {
		return code
	}
	if *compress < 1 {
		return fs.usageError(stderr, "--compress must be at least 1")
	}
	if *scale <= 0 || *scale > 1 {
		return fs.usageError(stderr, "--scale must be in (0, 1]")
	}
	if *bridgeFile != "" {
		if fs.isSet("scenarios") || fs.isSet("compress") {
			return fs.usageError(stderr, "--bridge-config runs its own signers in real time: drop --scenarios and --compress")
		}
		if *load <= 0 || *requests < 0 {
			return fs.usageError(stderr, "--load must be positive and --requests not negative")
		}
		return benchBridge(ctx, *bridgeFile, bench.BridgeRun{Load: *load, Requests: *requests, Scale: *scale}, stdout, stderr)
	}
	all := bench.Standard(*compress, *scale)
	var chosen []bench.Scenario
	for _, w := range strings.Split(*which, ",") {
		w = strings.TrimSpace(w)
		if len(w) != 1 || w[0] < 'a' || int(w[0]-'a') >= len(all) {
			return fs.usageError(stderr, fmt.Sprintf("unknown scenario %q (want a to g)", w))
		}
		chosen = append(chosen, all[w[0]-'a'])
	}

	fmt.Fprintf(stdout, "ceb179 bench on %s/%s, %d CPUs, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	var results []bench.Result
	for i, sc := range chosen {
		fmt.Fprintf(stderr, "running %s ...\n", sc.Name)
		r, err := bench.Run(ctx, sc, fmt.Sprintf("bench%d-", i))
		if err != nil {
			return fail(stderr, fs.name, exitFail, err)
		}
		results = append(results, r)
	}
	if err := bench.WriteTable(stdout, results); err != nil {
		return fail(stderr, fs.name, exitFail, err)
	}
	return exitOK
}

// benchBridge runs the real-time bench against the signers of an hsmbridge
// configuration file and prints the measured rates and the table.
func benchBridge(ctx context.Context, file string, r bench.BridgeRun, stdout, stderr io.Writer) int {
	cfg, err := devstack.LoadBridgeConfig(file)
	if err != nil {
		return fail(stderr, "bench", exitUsage, err)
	}
	r.Config = cfg
	r.OnRun = func(sc bench.Scenario, rates []bench.SignerRate) {
		for _, s := range rates {
			fmt.Fprintf(stderr, "  %s: %s from %d signatures\n", s.Name, s.Warmup, s.Warmup.Samples)
		}
		fmt.Fprintf(stderr, "offering %d requests over %s, in real time ...\n", sc.Requests, sc.Over)
	}
	fmt.Fprintf(stdout, "ceb179 bench on %s/%s, %d CPUs, %s, signers of %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), file)
	fmt.Fprintln(stderr, "opening the signers and measuring their steady rate (back-to-back signatures) ...")
	start := time.Now()
	res, err := bench.RunBridge(ctx, r, "benchbridge-")
	if err != nil {
		return fail(stderr, "bench", exitFail, err)
	}
	if err := bench.WriteBridge(stdout, res); err != nil {
		return fail(stderr, "bench", exitFail, err)
	}
	fmt.Fprintf(stdout, "Took %s.\n", time.Since(start).Round(time.Second))
	return exitOK
}
