package infra_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ceb179/ceb179/hsmbridge/bridge"
	"github.com/ceb179/ceb179/infra"
)

// loadTemplate reads the repository's template.yaml.
func loadTemplate(tb testing.TB) *infra.Template {
	tb.Helper()
	tpl, err := infra.LoadDefault()
	if err != nil {
		tb.Fatal(err)
	}
	return tpl
}

func TestTemplateIsSAM(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	if tpl.Transform != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform = %q", tpl.Transform)
	}
	p := tpl.Parameters["CustomsUploadUrl"]
	if p.Default != "https://swapptest.singlewindow.cn/ceb2grab/grab/realTimeDataUpload" {
		t.Errorf("CustomsUploadUrl default = %q, want the joint-test endpoint", p.Default)
	}
	r := tpl.Parameters["RetentionDays"]
	if r.Type != "Number" || r.Default != "1125" || r.MinValue == nil || *r.MinValue != 1095 {
		t.Errorf("RetentionDays = %+v, want Number, default 1125, MinValue 1095", r)
	}
}

// TestTemplateReferences checks that every Ref, GetAtt and Sub variable in
// the template names a parameter, a resource or a pseudo parameter.
func TestTemplateReferences(t *testing.T) {
	t.Parallel()
	root, err := infra.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, infra.TemplateFile))
	if err != nil {
		t.Fatal(err)
	}
	tpl := loadTemplate(t)
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	known := func(name string) bool {
		if strings.HasPrefix(name, "AWS::") {
			return true
		}
		_, p := tpl.Parameters[name]
		_, r := tpl.Resources[name]
		return p || r
	}
	var walk func(n *yaml.Node)
	count := 0
	walk = func(n *yaml.Node) {
		for _, ref := range infra.ExprOf(n).References() {
			count++
			if !known(ref) {
				t.Errorf("line %d: reference to unknown %q", n.Line, ref)
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	if count < 20 {
		t.Fatalf("found only %d references; the walk is broken", count)
	}
}

func TestTemplateFunctions(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range fns {
		ids = append(ids, f.LogicalID)
	}
	if want := []string{"AssembleFunction", "IngestFunction", "NotifyFunction", "PaymentsFunction", "SettleFunction", "UploadFunction"}; !slices.Equal(ids, want) {
		t.Fatalf("functions %v, want %v", ids, want)
	}
	root, err := infra.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fns {
		t.Run(f.LogicalID, func(t *testing.T) {
			if f.Runtime != "provided.al2023" || !slices.Equal(f.Architectures, []string{"arm64"}) || f.Handler != "bootstrap" {
				t.Errorf("runtime %s %v handler %s, want provided.al2023 [arm64] bootstrap", f.Runtime, f.Architectures, f.Handler)
			}
			md := tpl.Resources[f.LogicalID].Metadata
			if f.BuildMethod != "makefile" || value(md, "ContextPath") != "." || value(md, "ProjectRootDirectory") != "." {
				t.Errorf("Metadata %s, want BuildMethod makefile with ContextPath and ProjectRootDirectory the repository root", infra.ExprOf(md))
			}
			// What `sam build` runs: make build-<LogicalId> with ARTIFACTS_DIR.
			cmd := exec.Command("make", "-n", "--no-print-directory", "build-"+f.LogicalID, "ARTIFACTS_DIR=/artifacts")
			cmd.Dir = root
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make -n build-%s: %v\n%s", f.LogicalID, err, out)
			}
			for _, want := range []string{"GOOS=linux GOARCH=arm64 CGO_ENABLED=0", "-tags lambda.norpc", "-trimpath", "-ldflags='-s -w'",
				"-o /artifacts/bootstrap ./" + strings.TrimSuffix(f.CodeURI, "/") + "\n"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("make build-%s runs %q, which lacks %q", f.LogicalID, out, want)
				}
			}
			if f.Timeout < 1 || f.Timeout > 900 || f.MemorySize < 128 {
				t.Errorf("Timeout %d MemorySize %d", f.Timeout, f.MemorySize)
			}
			if _, _, ok := f.Role.GetAtt(); !ok {
				t.Errorf("Role = %s, want !GetAtt <its own role>.Arn", f.Role)
			}
			main := filepath.Join(root, f.CodeURI, "main.go")
			if _, err := os.Stat(main); err != nil {
				t.Errorf("CodeUri %s: %v", f.CodeURI, err)
			}
		})
	}
	t.Run("build linux/arm64 as sam build does", func(t *testing.T) {
		for _, f := range fns {
			dir := t.TempDir()
			cmd := exec.Command("make", "--no-print-directory", "build-"+f.LogicalID, "ARTIFACTS_DIR="+dir)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make build-%s: %v\n%s", f.LogicalID, err, out)
			}
			if st, err := os.Stat(filepath.Join(dir, "bootstrap")); err != nil || st.Size() == 0 {
				t.Errorf("%s: no bootstrap: %v", f.LogicalID, err)
			}
		}
	})
}

func TestTemplateEvents(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]infra.FunctionSpec{}
	for _, f := range fns {
		byID[f.LogicalID] = f
	}

	api := byID["IngestFunction"].Events["PlatDataOpen"]
	if api.Type != "HttpApi" || api.Method != "POST" || api.Path != "/platDataOpen" || api.Auth != "" {
		t.Errorf("ingest event = %+v, want HttpApi POST /platDataOpen without auth", api)
	}
	if ref, _ := api.APIID.Ref(); ref != "HttpApi" {
		t.Errorf("ingest event ApiId = %s", api.APIID)
	}
	settings := tpl.Resources["HttpApi"].Properties
	var p struct {
		DefaultRouteSettings struct {
			ThrottlingRateLimit  yaml.Node `yaml:"ThrottlingRateLimit"`
			ThrottlingBurstLimit yaml.Node `yaml:"ThrottlingBurstLimit"`
		} `yaml:"DefaultRouteSettings"`
		Auth *yaml.Node `yaml:"Auth"`
	}
	if err := settings.Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.DefaultRouteSettings.ThrottlingRateLimit.Value == "" || p.DefaultRouteSettings.ThrottlingBurstLimit.Value == "" {
		t.Error("HttpApi has no throttling")
	}
	if p.Auth != nil {
		t.Error("HttpApi has Auth: customs calls /platDataOpen without credentials")
	}

	sq := byID["AssembleFunction"].Events["AssembleJobs"]
	if sq.Type != "SQS" || !slices.Equal(sq.FunctionResponseTypes, []string{"ReportBatchItemFailures"}) {
		t.Errorf("assemble event = %+v, want SQS with ReportBatchItemFailures", sq)
	}
	if id, att, _ := sq.Queue.GetAtt(); id != "AssembleQueue" || att != "Arn" {
		t.Errorf("assemble event queue = %s", sq.Queue)
	}
	if len(byID["UploadFunction"].Events) != 0 || len(byID["AssembleFunction"].Events) != 1 {
		t.Error("upload must have no event source (hsmbridge invokes it); assemble exactly one")
	}
	if ev := byID["SettleFunction"].Events; len(ev) != 1 || ev["EveryMinute"].Type != "Schedule" || ev["EveryMinute"].Schedule != "rate(1 minute)" {
		t.Errorf("settle events %+v, want one Schedule rate(1 minute)", ev)
	}

	// POST /payments: on its own API, IAM authorization on the route and
	// as the API's default.
	pay := byID["PaymentsFunction"].Events["RecordPayment"]
	if pay.Type != "HttpApi" || pay.Method != "POST" || pay.Path != "/payments" || pay.Auth != "AWS_IAM" {
		t.Errorf("payments event = %+v, want HttpApi POST /payments with AWS_IAM", pay)
	}
	if ref, _ := pay.APIID.Ref(); ref != "PaymentsApi" {
		t.Errorf("payments event ApiId = %s, want PaymentsApi", pay.APIID)
	}
	var pa struct {
		Auth struct {
			EnableIamAuthorizer bool   `yaml:"EnableIamAuthorizer"`
			DefaultAuthorizer   string `yaml:"DefaultAuthorizer"`
		} `yaml:"Auth"`
	}
	if err := tpl.Resources["PaymentsApi"].Properties.Decode(&pa); err != nil {
		t.Fatal(err)
	}
	if !pa.Auth.EnableIamAuthorizer || pa.Auth.DefaultAuthorizer != "AWS_IAM" {
		t.Errorf("PaymentsApi Auth %+v, want IAM authorization by default", pa.Auth)
	}
}

func TestTemplateEnvironment(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"IngestFunction":   {"ASSEMBLE_QUEUE_URL", "CUSTOMS_SOURCE_CIDRS", "ORDER_DAILY_CAP", "REQUESTS_TABLE", "RETENTION_DAYS"},
		"AssembleFunction": {"ASSEMBLE_QUEUE_URL", "PAYMENTS_TABLE", "REQUESTS_TABLE", "RETENTION_DAYS", "SIGN_QUEUE_URL"},
		"PaymentsFunction": {"PAYMENTS_TABLE", "REQUESTS_TABLE", "RETENTION_DAYS"},
		"UploadFunction":   {"CUSTOMS_UPLOAD_URL", "PAYMENTS_TABLE", "REQUESTS_TABLE", "RETENTION_DAYS", "UPLOAD_GIVE_UP_MINUTES"},
		"SettleFunction": {"ASSEMBLE_QUEUE_URL", "MISSING_GRACE_MINUTES", "PAYMENTS_TABLE", "REQUESTS_TABLE", "RETENTION_DAYS", "SIGN_DLQ_URL",
			"SIGN_QUEUE_URL", "UPLOAD_GIVE_UP_MINUTES"},
		"NotifyFunction": {"NOTIFY_DOCS_BASE_URL", "NOTIFY_SECRET_ARN", "REQUESTS_TABLE", "RETENTION_DAYS", "SIGN_DLQ_URL"},
	}
	targets := map[string]string{
		"REQUESTS_TABLE": "RequestsTable", "PAYMENTS_TABLE": "PaymentsTable",
		"ASSEMBLE_QUEUE_URL": "AssembleQueue", "SIGN_QUEUE_URL": "SignQueue", "SIGN_DLQ_URL": "SignDeadLetterQueue",
		"CUSTOMS_UPLOAD_URL": "CustomsUploadUrl", "RETENTION_DAYS": "RetentionDays", "UPLOAD_GIVE_UP_MINUTES": "UploadGiveUpMinutes",
		"CUSTOMS_SOURCE_CIDRS": "CustomsSourceCidrs", "ORDER_DAILY_CAP": "OrderDailyCap", "MISSING_GRACE_MINUTES": "MissingGraceMinutes",
		"NOTIFY_SECRET_ARN": "NotifySecretArn", "NOTIFY_DOCS_BASE_URL": "NotifyDocsBaseUrl",
	}
	for _, f := range fns {
		var names []string
		for name, e := range f.Environment {
			names = append(names, name)
			if ref, _ := e.Ref(); ref != targets[name] {
				t.Errorf("%s: %s = %s, want !Ref %s", f.LogicalID, name, e, targets[name])
			}
		}
		sort.Strings(names)
		if !slices.Equal(names, want[f.LogicalID]) {
			t.Errorf("%s environment %v, want %v", f.LogicalID, names, want[f.LogicalID])
		}
	}
}

func TestTemplateQueues(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	queues, err := tpl.Queues()
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	timeout := map[string]int{}
	for _, f := range fns {
		timeout[f.LogicalID] = f.Timeout
	}
	byID := map[string]infra.QueueSpec{}
	dlqs := map[string]bool{}
	for _, q := range queues {
		byID[q.LogicalID] = q
		if q.DeadLetterQueue != "" {
			dlqs[q.DeadLetterQueue] = true
		}
	}
	attr := func(q infra.QueueSpec, name string, def int) int {
		v, ok := q.Attributes[name]
		if !ok {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s %s = %q", q.LogicalID, name, v)
		}
		return n
	}
	for _, q := range queues {
		if q.Attributes["SqsManagedSseEnabled"] != "true" {
			t.Errorf("%s: SqsManagedSseEnabled is not true", q.LogicalID)
		}
		if dlqs[q.LogicalID] {
			if q.DeadLetterQueue != "" {
				t.Errorf("%s: a dead-letter queue has its own redrive", q.LogicalID)
			}
			continue
		}
		if q.DeadLetterQueue == "" {
			t.Errorf("%s has no dead-letter queue", q.LogicalID)
			continue
		}
		if _, ok := byID[q.DeadLetterQueue]; !ok {
			t.Errorf("%s: dead-letter queue %s is not a queue", q.LogicalID, q.DeadLetterQueue)
		}
		if q.MaxReceiveCount < 1 || q.MaxReceiveCount > 30 {
			t.Errorf("%s: maxReceiveCount %d", q.LogicalID, q.MaxReceiveCount)
		}
		if dl := byID[q.DeadLetterQueue]; attr(dl, "MessageRetentionPeriod", 345600) <= attr(q, "MessageRetentionPeriod", 345600) {
			t.Errorf("%s: its dead-letter queue must keep messages longer than it does", q.LogicalID)
		}
	}
	if len(dlqs) != 3 || len(queues) != 6 {
		t.Errorf("queues %d, dead-letter queues %d; want 3 work queues with one DLQ each", len(queues), len(dlqs))
	}
	// Lambda advises a visibility timeout of six times the function timeout
	// for an SQS event source; hsmbridge signs and then invokes upload, so
	// the sign queue needs at least twice upload's timeout, and must give a
	// job back well inside customs' two-minute window.
	if vt := attr(byID["AssembleQueue"], "VisibilityTimeout", 30); vt < 6*timeout["AssembleFunction"] {
		t.Errorf("AssembleQueue VisibilityTimeout %d < 6 × assemble timeout %d", vt, timeout["AssembleFunction"])
	}
	if vt := attr(byID["NotifyQueue"], "VisibilityTimeout", 30); vt < 6*timeout["NotifyFunction"] {
		t.Errorf("NotifyQueue VisibilityTimeout %d < 6 × notify timeout %d", vt, timeout["NotifyFunction"])
	}
	if vt := attr(byID["SignQueue"], "VisibilityTimeout", 30); vt < 2*timeout["UploadFunction"] || vt > 90 {
		t.Errorf("SignQueue VisibilityTimeout %d, want between 2 × upload timeout %d and 90", vt, timeout["UploadFunction"])
	}
	// A bridge off for long must still find its jobs: the sign queue keeps
	// them longer than the longest give-up window, plus a day.
	giveUp := tpl.Parameters["UploadGiveUpMinutes"]
	if giveUp.MaxValue == nil {
		t.Error("UploadGiveUpMinutes has no MaxValue")
	} else if keep := time.Duration(attr(byID["SignQueue"], "MessageRetentionPeriod", 345600)) * time.Second; keep < time.Duration(*giveUp.MaxValue)*time.Minute+24*time.Hour {
		t.Errorf("SignQueue keeps jobs %v, less than the longest give-up window (%v minutes) plus a day", keep, *giveUp.MaxValue)
	}
	for _, id := range []string{"AssembleQueue", "SignQueue", "NotifyQueue"} {
		if attr(byID[id], "ReceiveMessageWaitTimeSeconds", 0) != 20 {
			t.Errorf("%s: want long polling (ReceiveMessageWaitTimeSeconds 20)", id)
		}
	}
}

func TestTemplateTables(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	tables, err := tpl.Tables()
	if err != nil {
		t.Fatal(err)
	}
	// Keys and indexes as docs/architecture.md defines them.
	want := map[string]string{
		"RequestsTable": "key(sessionID,sk) [byDay(day,receivedAt;ALL[]) byOrder(orderNo,receivedAt;ALL[]) openByDeadline(openShard,deadline;ALL[])]",
		"PaymentsTable": "key(pk,sk) [byOrder(orderNo,;KEYS_ONLY[]) byPaidDay(paidDay,orderNo;KEYS_ONLY[]) unpaid(unpaid,declaredAt;KEYS_ONLY[])]",
	}
	if len(tables) != len(want) {
		t.Fatalf("%d tables, want %d", len(tables), len(want))
	}
	for _, tb := range tables {
		if got := infra.DescribeKeys(tb); got != want[tb.LogicalID] {
			t.Errorf("%s: %s, want %s", tb.LogicalID, got, want[tb.LogicalID])
		}
		if tb.TTLAttribute != "expiresAt" {
			t.Errorf("%s: TTL attribute %q, want expiresAt", tb.LogicalID, tb.TTLAttribute)
		}
		if !tb.PointInTimeRecovery {
			t.Errorf("%s: no point-in-time recovery", tb.LogicalID)
		}
		if tb.DeletionPolicy != "Retain" || tb.UpdateReplacePolicy != "Retain" {
			t.Errorf("%s: DeletionPolicy %q UpdateReplacePolicy %q, want Retain", tb.LogicalID, tb.DeletionPolicy, tb.UpdateReplacePolicy)
		}
		if tb.BillingMode != "PAY_PER_REQUEST" {
			t.Errorf("%s: BillingMode %s, want on-demand", tb.LogicalID, tb.BillingMode)
		}
		if tb.TableName != "" {
			t.Errorf("%s: fixed TableName %q; let CloudFormation name it", tb.LogicalID, tb.TableName)
		}
	}
}

func TestTemplateIAM(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	stmts, err := tpl.Statements()
	if err != nil {
		t.Fatal(err)
	}
	if m := tpl.ManagedPolicyARNs(); len(m) != 0 {
		t.Errorf("managed policies attached: %v; write least-privilege statements instead", m)
	}
	got := map[string][]string{}
	for _, s := range stmts {
		if s.Effect != "Allow" {
			t.Errorf("%s/%s: Effect %q", s.Owner, s.Sid, s.Effect)
		}
		for _, a := range s.Actions {
			if strings.Contains(a, "*") {
				t.Errorf("%s/%s: wildcard action %q", s.Owner, s.Sid, a)
			}
			got[s.Owner] = append(got[s.Owner], a)
		}
		if len(s.Resources) == 0 {
			t.Errorf("%s/%s: no Resource", s.Owner, s.Sid)
		}
		if namespaceScoped(s) {
			// cloudwatch:PutMetricData takes no resource ARN: "*" is the
			// only resource it accepts; the namespace condition scopes it.
			continue
		}
		for _, r := range s.Resources {
			if v, ok := r.Literal(); ok {
				t.Errorf("%s/%s: literal resource %q; name a template resource", s.Owner, s.Sid, v)
			}
			if len(r.References()) == 0 {
				t.Errorf("%s/%s: resource %s refers to nothing in the template", s.Owner, s.Sid, r)
			}
			if sub, ok := r.Sub(); ok && strings.Contains(sub, "*") {
				t.Errorf("%s/%s: wildcard resource %s", s.Owner, s.Sid, sub)
			}
		}
	}
	wantBridge := []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "lambda:InvokeFunction", "cloudwatch:PutMetricData"}
	if !slices.Equal(got["HsmBridgePolicy"], wantBridge) {
		t.Errorf("HsmBridgePolicy actions %v, want %v", got["HsmBridgePolicy"], wantBridge)
	}
	for _, s := range stmts {
		if s.Owner != "HsmBridgePolicy" {
			continue
		}
		if s.Sid == "Heartbeat" {
			if !namespaceScoped(s) || !slices.Equal(s.Conditions["StringEquals"]["cloudwatch:namespace"], []string{bridge.HeartbeatNamespace}) {
				t.Errorf("HsmBridgePolicy/Heartbeat %+v, want cloudwatch:PutMetricData only in namespace %s", s, bridge.HeartbeatNamespace)
			}
			continue
		}
		target := s.Resources[0].References()[0]
		if (s.Sid == "SignQueue") != (target == "SignQueue") || (s.Sid == "Upload") != (target == "UploadFunction") {
			t.Errorf("HsmBridgePolicy/%s on %s", s.Sid, target)
		}
	}
	for _, role := range []string{"IngestRole", "AssembleRole", "UploadRole", "PaymentsRole", "SettleRole", "NotifyRole"} {
		if len(got[role]) == 0 {
			t.Errorf("%s has no statements", role)
		}
		if !slices.Contains(got[role], "logs:PutLogEvents") {
			t.Errorf("%s cannot write its logs", role)
		}
	}
	if !slices.Contains(got["AssembleRole"], "sqs:ReceiveMessage") {
		t.Error("AssembleRole cannot receive from its event source queue")
	}
}

// namespaceScoped reports whether s allows only cloudwatch:PutMetricData
// on "*" and holds a StringEquals condition on cloudwatch:namespace.
func namespaceScoped(s infra.Statement) bool {
	if !slices.Equal(s.Actions, []string{"cloudwatch:PutMetricData"}) || len(s.Resources) != 1 {
		return false
	}
	if v, ok := s.Resources[0].Literal(); !ok || v != "*" {
		return false
	}
	ns := s.Conditions["StringEquals"]["cloudwatch:namespace"]
	return len(ns) == 1 && ns[0] != "" && !strings.Contains(ns[0], "*")
}

func TestTemplateOutputs(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	for name, target := range map[string]string{
		"ApiUrl": "HttpApi", "RequestsTableName": "RequestsTable", "PaymentsTableName": "PaymentsTable",
		"AssembleQueueUrl": "AssembleQueue", "SignQueueUrl": "SignQueue", "SignDeadLetterQueueUrl": "SignDeadLetterQueue",
		"IngestFunctionName": "IngestFunction", "AssembleFunctionName": "AssembleFunction",
		"UploadFunctionName": "UploadFunction", "HsmBridgePolicyArn": "HsmBridgePolicy",
		"AlarmTopicArn": "AlarmTopic", "DashboardUrl": "Dashboard",
	} {
		o, ok := tpl.Outputs[name]
		if !ok {
			t.Errorf("output %s missing", name)
			continue
		}
		if refs := o.Value.References(); !slices.Contains(refs, target) {
			t.Errorf("output %s = %s, want a reference to %s", name, o.Value, target)
		}
	}
}
