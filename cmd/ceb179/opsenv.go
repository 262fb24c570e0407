package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/awsenv"
	"github.com/ceb179/ceb179/internal/config"
	"github.com/ceb179/ceb179/internal/dev/devstack"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/ops"
	"github.com/ceb179/ceb179/internal/queue"
	"github.com/ceb179/ceb179/internal/settle"
)

// Environment variables of the operator commands besides config's.
const (
	// envAssembleDLQ and envSignDLQ name the dead-letter queues when the
	// source queues' redrive policies cannot be read.
	envAssembleDLQ = "ASSEMBLE_DLQ_URL"
	envSignDLQ     = "SIGN_DLQ_URL"
)

// opsTarget is where an operator command looks: the running local stack
// (--local [--data DIR]) or the environment's tables and queues.
type opsTarget struct {
	local   bool
	dataDir string
	json    bool
}

// addFlags adds --local, --data and --json to fs.
func (t *opsTarget) addFlags(fs *flagSet) {
	fs.BoolVar(&t.local, "local", false, "use the running local stack (`ceb179 local`)")
	fs.StringVar(&t.dataDir, "data", devstack.DefaultDir, "data directory of the local stack (with --local)")
	fs.BoolVar(&t.json, "json", false, "print JSON instead of tables")
}

// opsEnv is an operator command's connection to the tables and queues.
type opsEnv struct {
	store       *dynamo.Store
	clients     *awsenv.Clients
	service     *ops.Service
	assembleURL string
	signURL     string
	dlqURLs     map[string]string
	// where names the table read, for the output.
	where string
}

// openOps connects to the local stack or to the environment's resources.
func (t opsTarget) open(ctx context.Context) (*opsEnv, error) {
	cfg, err := config.FromEnv(nil)
	if err != nil {
		return nil, err
	}
	e := &opsEnv{dlqURLs: map[string]string{"assemble": os.Getenv(envAssembleDLQ), "sign": os.Getenv(envSignDLQ)}}
	var clients *awsenv.Clients
	tables := dynamo.Tables{Requests: cfg.RequestsTable, Payments: cfg.PaymentsTable}
	if t.local {
		st, err := devstack.ReadState(t.dataDir)
		if err != nil {
			return nil, err
		}
		clients, err = awsenv.Load(ctx, awsenv.WithEmulatorAt(st.Region, st.Endpoint))
		if err != nil {
			return nil, err
		}
		tables = dynamo.Tables{Requests: st.Tables.Requests, Payments: st.Tables.Payments}
		e.assembleURL, e.signURL = st.Queues.Assemble, st.Queues.Sign
		e.dlqURLs = map[string]string{}
		e.where = st.Tables.Requests + " (local)"
	} else {
		if cfg.RequestsTable == "" {
			return nil, errors.New("REQUESTS_TABLE is not set (or use --local)")
		}
		if clients, err = awsenv.Load(ctx); err != nil {
			return nil, err
		}
		e.assembleURL, e.signURL = cfg.AssembleQueueURL, cfg.SignQueueURL
		e.where = cfg.RequestsTable
		if ep := aws.ToString(clients.Config.BaseEndpoint); ep != "" {
			e.where += " at " + ep
		}
	}
	if tables.Requests == "" {
		return nil, errors.New("no requests table published by the local stack")
	}
	e.store = dynamo.New(clients.DynamoDB, tables, cfg.Retention)
	e.clients = clients
	var assemble ops.Sender
	if e.assembleURL != "" {
		assemble = queue.New(clients.SQS, e.assembleURL)
	}
	var opts []ops.Option
	if tables.Payments != "" {
		m := settle.NewMissing(e.store, nil, nil, settle.WithGrace(cmp.Or(cfg.MissingGrace, settle.DefaultMissingGrace)))
		opts = append(opts, ops.WithMissing(m.Open))
	}
	e.service = ops.New(e.store, assemble, opts...)
	return e, nil
}

// dlq resolves the dead-letter queue of the source queue named name.
func (e *opsEnv) dlq(ctx context.Context, name string) (ops.DLQ, error) {
	src := map[string]string{"assemble": e.assembleURL, "sign": e.signURL}[name]
	if src == "" {
		return ops.DLQ{}, fmt.Errorf("%s queue URL not configured (%s)", name, map[string]string{"assemble": config.EnvAssembleQueueURL, "sign": config.EnvSignQueueURL}[name])
	}
	d, err := queue.DeadLettersOf(ctx, queue.New(e.clients.SQS, src), e.dlqURLs[name])
	if err != nil {
		return ops.DLQ{}, fmt.Errorf("%s queue: %w", name, err)
	}
	return ops.DLQ{Name: name, Queue: d}, nil
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// clockTime formats t as China wall-clock time.
func clockTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(ceb179.China).Format("2006-01-02 15:04:05.000")
}

// seconds formats d in seconds with two decimals.
func seconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
