package ceb179_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// module is this module's path.
const module = "github.com/ceb179/ceb179"

// pkg is what the import rules read of one package (from `go list -json`).
type pkg struct {
	ImportPath string
	Dir        string
	// Imports are the direct imports of its non-test files; Deps every
	// package they need, directly or not.
	Imports, Deps []string
	GoFiles       []string
	// fileImports maps each non-test file to its imports (filled in for
	// the packages whose rules name files).
	fileImports map[string][]string
}

// Package paths the rules speak of, relative to the module.
const (
	domain = ""
	dynamo = "internal/dynamo"
)

// rel returns p relative to the module ("" for the root package), and
// false for packages outside the module.
func rel(p string) (string, bool) {
	if p == module {
		return "", true
	}
	r, ok := strings.CutPrefix(p, module+"/")
	return r, ok
}

// under reports whether r (a relative path) is dir or below it.
func under(r, dir string) bool { return r == dir || strings.HasPrefix(r, dir+"/") }

// The import rules of docs/architecture.md ("What may import what").
var (
	// The pipeline's logic and the operator tools: they declare the
	// interfaces they consume and never see an adapter's types.
	logic = []string{"internal/assemble", "internal/ingest", "internal/upload", "internal/settle",
		"records", "internal/paymentsapi", "internal/ops", "internal/statuspage", "internal/notify"}
	// The consumers of the adapters among them (records holds the payment
	// an adapter stores).
	consumers = []string{"internal/assemble", "internal/ingest", "internal/upload", "internal/settle",
		"internal/ops", "internal/statuspage", "internal/notify"}
	// The adapters, one per dependency.
	adapters = []string{"internal/dynamo", "internal/queue", "internal/customsapi", "internal/signer", "internal/secret"}
	// The adapters the logic may still import, for their result types: the
	// customs HTTP client's Answer and Error (upload) and queue.Message
	// (the dead-letter queues of the settler and of the operator tools).
	// records/dynamostore is the public face of the DynamoDB adapter for
	// the platform's services, which cannot import internal/dynamo.
	adapterUses = map[string][]string{"internal/upload": {"internal/customsapi"}, "internal/settle": {"internal/queue"},
		"internal/ops": {"internal/queue"}, "records/dynamostore": {"internal/dynamo"}}
	// Where the DynamoDB store may be wired in: the functions' wiring
	// (internal/wiring), the mains of the functions (main.go only), the
	// command and the development stack.
	dynamoWirers = []string{"internal/wiring", "functions", "cmd", "internal/dev/devstack", "records/dynamostore"}
	// What the adapters and the logic must not depend on.
	outer = []string{"functions", "cmd", "hsmbridge", "internal/dev", "internal/wiring"}
	// The only packages that import an AWS SDK service package (awsService
	// and its subpackages, such as service/sqs/types), each with the
	// services it may import and why: one adapter per dependency, so every
	// other package reaches AWS through them. Checked on the packages'
	// own files; tests may build clients of their own.
	sdkUsers = map[string]struct {
		services []string
		why      string
	}{
		"internal/dynamo": {[]string{"dynamodb"}, "the DynamoDB adapter"},
		"internal/queue":  {[]string{"sqs"}, "the SQS adapter: messages, visibility, depth, dead-letter queues"},
		"internal/signer": {[]string{"kms"}, "the KMS key backend"},
		"internal/secret": {[]string{"secretsmanager", "ssm"}, "the secrets adapter: the notify function's robot secret"},
		"internal/awsenv": {[]string{"cloudwatch", "dynamodb", "kms", "lambda", "secretsmanager", "sqs", "ssm"}, "builds every client, once, from the environment"},
		"infra":           {[]string{"dynamodb", "sqs"}, "the template's control plane: creates and verifies its tables and queues"},
		"hsmbridge/bridge": {[]string{"cloudwatch", "lambda"}, "the only caller of the upload function (LambdaUploader) and of " +
			"PutMetricData (the heartbeat); the functions publish metrics as log lines"},
		"internal/dev/awstest":    {[]string{"dynamodb", "lambda", "sqs"}, "hands tests the emulator's clients"},
		"records/dynamostore":     {[]string{"dynamodb"}, "takes the platform's DynamoDB client, for the DynamoDB adapter"},
		"internal/dev/lambdatest": {[]string{"lambda"}, "deploys and invokes the built functions in the emulator's Lambda"},
	}
)

// awsService is the path of the AWS SDK's service packages.
const awsService = "github.com/aws/aws-sdk-go-v2/service/"

// violations returns every broken import rule of pkgs, one line each.
func violations(pkgs []pkg) []string {
	var out []string
	bad := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	for _, p := range pkgs {
		r, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		for _, d := range p.Deps {
			dr, ok := rel(d)
			if !ok {
				continue
			}
			switch {
			case r == domain:
				bad("the domain (root package) depends on %s: it imports no package of this module", d)
			case slices.ContainsFunc(logic, func(l string) bool { return under(r, l) }) && slices.Contains(adapters, dr) && !mayUse(p, r, dr):
				bad("%s depends on %s: logic and operator tools declare the interfaces they consume", r, dr)
			case slices.ContainsFunc(logic, func(l string) bool { return under(r, l) }) && slices.ContainsFunc(outer, func(o string) bool { return under(dr, o) }):
				bad("%s depends on %s: logic and operator tools import no function, command, bridge or tool", r, dr)
			case slices.Contains(adapters, r) && slices.ContainsFunc(append(slices.Clone(consumers), outer...), func(o string) bool { return under(dr, o) }):
				bad("adapter %s depends on %s: adapters import the domain, never their consumers", r, dr)
			}
		}
		for _, i := range p.Imports {
			ir, ok := rel(i)
			if ok && under(r, "functions") && (slices.ContainsFunc(logic, func(l string) bool { return under(ir, l) }) || slices.Contains(adapters, ir)) {
				bad("%s imports %s: a function's main builds its handler with internal/wiring, the wiring the local stack runs too", r, ir)
			}
		}
		for _, i := range p.Imports {
			service, ok := strings.CutPrefix(i, awsService)
			if !ok {
				continue
			}
			service, _, _ = strings.Cut(service, "/")
			if !slices.Contains(sdkUsers[r].services, service) {
				bad("%s imports %s: only the adapter of %s imports it (see sdkUsers)", r, i, service)
			}
		}
		if !slices.ContainsFunc(p.Imports, func(i string) bool { return i == module+"/"+dynamo }) {
			continue
		}
		if !slices.ContainsFunc(dynamoWirers, func(w string) bool { return under(r, w) }) {
			bad("%s imports %s: only internal/wiring, the mains (functions/*, cmd/*) and internal/dev/devstack wire the store in", r, dynamo)
		}
		if under(r, "functions") {
			for f, imps := range p.fileImports {
				if f != "main.go" && slices.Contains(imps, module+"/"+dynamo) {
					bad("%s/%s imports %s: in a function only main.go wires the store in", r, f, dynamo)
				}
			}
		}
	}
	return out
}

// mayUse reports whether p, the logic package r, may depend on the adapter
// dr: adapterUses names it for r, or p does not import dr itself and
// depends on a package that adapterUses allows it (statuspage reads ops,
// which reads queue.Message).
func mayUse(p pkg, r, dr string) bool {
	if slices.Contains(adapterUses[r], dr) {
		return true
	}
	if slices.Contains(p.Imports, module+"/"+dr) {
		return false
	}
	return slices.ContainsFunc(p.Deps, func(d string) bool {
		l, ok := rel(d)
		return ok && slices.Contains(adapterUses[l], dr)
	})
}

// TestImportRules checks the module's packages against the import rules.
func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; the module has more", len(pkgs))
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// TestViolations shows that each rule catches the import that breaks it.
func TestViolations(t *testing.T) {
	dep := func(path string, deps ...string) pkg {
		p := pkg{ImportPath: module + "/" + path}
		if path == "" {
			p.ImportPath = module
		}
		for _, d := range deps {
			p.Deps = append(p.Deps, module+"/"+d)
		}
		return p
	}
	imports := func(p pkg, paths ...string) pkg {
		for _, i := range paths {
			p.Imports = append(p.Imports, module+"/"+i)
		}
		return p
	}
	sdk := func(path string, services ...string) pkg {
		p := dep(path)
		for _, s := range services {
			p.Imports = append(p.Imports, awsService+s)
		}
		return p
	}
	wire := func(path string, files map[string][]string) pkg {
		p := pkg{ImportPath: module + "/" + path, Imports: []string{module + "/" + dynamo}, fileImports: map[string][]string{}}
		for f, imps := range files {
			for _, i := range imps {
				p.fileImports[f] = append(p.fileImports[f], module+"/"+i)
			}
		}
		return p
	}
	tests := []struct {
		name string
		pkg  pkg
		want string
	}{
		{"ok domain with the standard library only", pkg{ImportPath: module, Deps: []string{"time", "errors"}}, ""},
		{"ok logic on the domain", dep("internal/upload", "", "internal/customs", "internal/customsapi"), ""},
		{"ok adapter on the domain and records", dep("internal/dynamo", "", "records", "internal/customs"), ""},
		{"fail function main wires the store by hand", wire("functions/upload", map[string][]string{"main.go": {dynamo}}), "builds its handler with internal/wiring"},
		{"ok the command wires the store", wire("cmd/ceb179", map[string][]string{"cert.go": {dynamo}}), ""},
		{"ok the development stack wires the store", wire("internal/dev/devstack", nil), ""},
		{"ok the functions' wiring wires the store", wire("internal/wiring", nil), ""},
		{"ok a function main builds through the wiring", imports(dep("functions/upload"), "internal/config", "internal/wiring"), ""},
		{"fail a function main wires its handler by hand", imports(dep("functions/upload"), "internal/config", "internal/upload"), "builds its handler with internal/wiring"},
		{"fail a function main builds an adapter", imports(dep("functions/ingest"), "internal/queue"), "builds its handler with internal/wiring"},
		{"fail logic imports the wiring", dep("internal/upload", "internal/wiring"), "import no function, command, bridge or tool"},
		{"fail domain imports an adapter", dep("", "internal/dynamo"), "the domain (root package) depends on"},
		{"fail domain imports the wire format", dep("", "internal/customs"), "the domain (root package) depends on"},
		{"ok upload reads the customs client's answer", dep("internal/upload", "internal/customsapi"), ""},
		{"fail ops reaches dynamo", dep("internal/ops", "", "internal/dynamo"), "logic and operator tools declare"},
		{"ok statuspage reads the queue's message through ops", dep("internal/statuspage", "internal/ops", "internal/queue"), ""},
		{"fail statuspage imports the queue adapter itself", imports(dep("internal/statuspage", "internal/ops", "internal/queue"), "internal/queue"), "logic and operator tools declare"},
		{"fail ingest reaches the queue adapter", dep("internal/ingest", "internal/queue"), "logic and operator tools declare"},
		{"fail settle reaches the customs client", dep("internal/settle", "internal/queue", "internal/customsapi"), "logic and operator tools declare"},
		{"fail statuspage reaches the bridge", dep("internal/statuspage", "internal/ops", "hsmbridge/bridge"), "import no function, command, bridge or tool"},
		{"fail ops reaches the bridge", dep("internal/ops", "hsmbridge/bridge"), "import no function, command, bridge or tool"},
		{"fail upload reaches a tool", dep("internal/upload", "internal/dev/awstest"), "import no function, command, bridge or tool"},
		{"fail adapter imports its consumer", dep("internal/dynamo", "internal/upload"), "adapters import the domain, never their consumers"},
		{"fail a function file beside main.go imports dynamo", wire("functions/upload", map[string][]string{"main.go": nil, "handler.go": {dynamo}}), "only main.go wires the store in"},
		{"fail a tool outside the wirers imports dynamo", wire("internal/dev/bench", nil), "only internal/wiring, the mains"},
		{"ok the queue adapter imports sqs", sdk("internal/queue", "sqs", "sqs/types"), ""},
		{"ok the store imports dynamodb", sdk("internal/dynamo", "dynamodb", "dynamodb/types"), ""},
		{"ok awsenv builds every client", sdk("internal/awsenv", "cloudwatch", "dynamodb", "kms", "lambda", "sqs"), ""},
		{"ok the bridge invokes the upload function", sdk("hsmbridge/bridge", "lambda", "cloudwatch"), ""},
		{"ok infra creates the template's queues", sdk("infra", "sqs", "dynamodb/types"), ""},
		{"ok the SDK's other packages are not services", pkg{ImportPath: module + "/internal/ops", Imports: []string{"github.com/aws/aws-sdk-go-v2/aws", "github.com/aws/smithy-go"}}, ""},
		{"fail ops imports sqs", sdk("internal/ops", "sqs"), "internal/ops imports " + awsService + "sqs: only the adapter of sqs"},
		{"fail ops imports sqs types", sdk("internal/ops", "sqs/types"), "only the adapter of sqs"},
		{"fail the bridge calls sqs itself", sdk("hsmbridge/bridge", "lambda", "sqs"), "hsmbridge/bridge imports " + awsService + "sqs"},
		{"fail the command builds an sqs client", sdk("cmd/ceb179", "sqs"), "only the adapter of sqs"},
		{"fail the queue adapter calls dynamodb", sdk("internal/queue", "sqs", "dynamodb"), "internal/queue imports " + awsService + "dynamodb"},
		{"fail a function main builds a client", sdk("functions/ingest", "dynamodb"), "only the adapter of dynamodb"},
		{"fail the bridge's main builds a cloudwatch client", sdk("hsmbridge", "cloudwatch"), "only the adapter of cloudwatch"},
		{"fail the development stack imports sqs", sdk("internal/dev/devstack", "sqs"), "only the adapter of sqs"},
		{"fail the root imports a service", sdk("", "sqs"), "imports " + awsService + "sqs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := violations([]pkg{tt.pkg})
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("violations = %q, want none", got)
			case tt.want != "" && !slices.ContainsFunc(got, func(v string) bool { return strings.Contains(v, tt.want) }):
				t.Errorf("violations = %q, want one containing %q", got, tt.want)
			}
		})
	}
}

// listPackages runs `go list -json ./...` at the module root and reads the
// per-file imports of the functions' packages.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		if r, ok := rel(p.ImportPath); ok && under(r, "functions") {
			p.fileImports = fileImports(t, p.Dir, p.GoFiles)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// fileImports returns the imports of each of files in dir.
func fileImports(t *testing.T, dir string, files []string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, filepath.Join(dir, f), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range af.Imports {
			path, err := strconv.Unquote(is.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = append(out[f], path)
		}
	}
	return out
}
