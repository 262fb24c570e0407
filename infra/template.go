package infra

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// TemplateFile is the name of the template at the root of the repository.
const TemplateFile = "template.yaml"

// Resource types this package interprets.
const (
	// TypeTable is a DynamoDB table.
	TypeTable = "AWS::DynamoDB::Table"
	// TypeQueue is an SQS queue.
	TypeQueue = "AWS::SQS::Queue"
	// TypeFunction is a SAM function.
	TypeFunction = "AWS::Serverless::Function"
	// TypeHTTPAPI is a SAM HTTP API.
	TypeHTTPAPI = "AWS::Serverless::HttpApi"
	// TypeRole is an IAM role.
	TypeRole = "AWS::IAM::Role"
	// TypeManagedPolicy is an IAM managed policy.
	TypeManagedPolicy = "AWS::IAM::ManagedPolicy"
	// TypeRolePolicy is an inline policy of a role, as a resource of its own
	// (so that it can have a condition).
	TypeRolePolicy = "AWS::IAM::RolePolicy"
	// TypeLogGroup is a CloudWatch Logs log group.
	TypeLogGroup = "AWS::Logs::LogGroup"
	// TypeAlarm is a CloudWatch alarm (read for checks; not provisioned).
	TypeAlarm = "AWS::CloudWatch::Alarm"
	// TypeDashboard is a CloudWatch dashboard (read for checks; not
	// provisioned).
	TypeDashboard = "AWS::CloudWatch::Dashboard"
	// TypeTopic is an SNS topic (read for checks; not provisioned).
	TypeTopic = "AWS::SNS::Topic"
	// TypeSubscription is an SNS subscription (read for checks; not
	// provisioned).
	TypeSubscription = "AWS::SNS::Subscription"
)

// Pseudo parameters and defaults used when resolving references.
const (
	pseudoRegion       = "AWS::Region"
	pseudoAccountID    = "AWS::AccountId"
	pseudoStackName    = "AWS::StackName"
	pseudoURLSuffix    = "AWS::URLSuffix"
	pseudoPartition    = "AWS::Partition"
	defaultAccountID   = "000000000000"
	defaultStackPrefix = "ceb179"
)

// Template is a parsed SAM template.
type Template struct {
	// Path is the file the template was read from, if any.
	Path string
	// Transform is the template's Transform.
	Transform string
	// Parameters are the template's parameters by name.
	Parameters map[string]Parameter
	// Resources are the template's resources by logical ID.
	Resources map[string]Resource
	// Outputs are the template's outputs by name.
	Outputs map[string]Output

	globalFunction *yaml.Node
}

// Parameter is one template parameter.
type Parameter struct {
	// Type is the CloudFormation parameter type (String, Number, ...).
	Type string `yaml:"Type"`
	// Default is the default value, as text.
	Default string `yaml:"Default"`
	// HasDefault reports whether the template gives a Default, which may be
	// the empty string (an optional parameter).
	HasDefault bool `yaml:"-"`
	// MinValue is the smallest value a Number parameter accepts, if set.
	MinValue *float64 `yaml:"MinValue"`
	// MaxValue is the largest value a Number parameter accepts, if set.
	MaxValue *float64 `yaml:"MaxValue"`
	// AllowedPattern is the pattern a String parameter must match, if set.
	AllowedPattern string `yaml:"AllowedPattern"`
	// Description describes the parameter.
	Description string `yaml:"Description"`
}

// Resource is one template resource. Properties and Metadata are kept as
// YAML nodes; the typed accessors of Template read them.
type Resource struct {
	// LogicalID is the resource's key under Resources.
	LogicalID string
	// Type is the resource type, for example AWS::SQS::Queue.
	Type string
	// DeletionPolicy is the resource's DeletionPolicy, if set.
	DeletionPolicy string
	// UpdateReplacePolicy is the resource's UpdateReplacePolicy, if set.
	UpdateReplacePolicy string
	// Condition is the name of the condition the resource exists under, if
	// any.
	Condition string
	// DependsOn lists the resources it is created after.
	DependsOn []string
	// Properties is the resource's Properties mapping (nil when absent).
	Properties *yaml.Node
	// Metadata is the resource's Metadata mapping (nil when absent).
	Metadata *yaml.Node
}

// Output is one template output.
type Output struct {
	// Description describes the output.
	Description string
	// Value is the output's value expression.
	Value Expr
}

// Expr is a value in the template: a literal or an intrinsic function
// (Ref, Fn::GetAtt, Fn::Sub, in short or long form).
type Expr struct {
	node *yaml.Node
}

// Load reads and parses the template at path.
func Load(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	t.Path = path
	return t, nil
}

// LoadDefault reads template.yaml at the root of the module that holds
// this package's source. It is meant for tests and for tools run from a
// checkout.
func LoadDefault() (*Template, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	return Load(filepath.Join(root, TemplateFile))
}

// RepoRoot returns the root directory of the checkout: the nearest
// directory, from the working directory upwards, that holds both go.mod and
// template.yaml; failing that, the one this package was built from.
func RepoRoot() (string, error) {
	isRoot := func(dir string) bool {
		for _, f := range []string{"go.mod", TemplateFile} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				return false
			}
		}
		return true
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if isRoot(dir) {
				return dir, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		if dir := filepath.Dir(filepath.Dir(file)); isRoot(dir) {
			return dir, nil
		}
	}
	return "", errors.New("locate repository root: no directory holding go.mod and " + TemplateFile)
}

// Parse parses a template from its YAML text.
func Parse(b []byte) (*Template, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("template is not a YAML mapping")
	}
	root := doc.Content[0]
	t := &Template{
		Parameters: map[string]Parameter{},
		Resources:  map[string]Resource{},
		Outputs:    map[string]Output{},
	}
	if n := mapGet(root, "Transform"); n != nil {
		t.Transform = n.Value
	}
	if n := mapGet(root, "Parameters"); n != nil {
		if err := n.Decode(&t.Parameters); err != nil {
			return nil, fmt.Errorf("template parameters: %w", err)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			name := n.Content[i].Value
			if p, ok := t.Parameters[name]; ok && mapGet(n.Content[i+1], "Default") != nil {
				p.HasDefault = true
				t.Parameters[name] = p
			}
		}
	}
	if g := mapGet(root, "Globals"); g != nil {
		t.globalFunction = mapGet(g, "Function")
	}
	res := mapGet(root, "Resources")
	if res == nil || res.Kind != yaml.MappingNode {
		return nil, errors.New("template has no Resources")
	}
	for i := 0; i+1 < len(res.Content); i += 2 {
		id, body := res.Content[i].Value, res.Content[i+1]
		if body.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("resource %s is not a mapping", id)
		}
		r := Resource{LogicalID: id, Properties: mapGet(body, "Properties"), Metadata: mapGet(body, "Metadata")}
		if n := mapGet(body, "Type"); n != nil {
			r.Type = n.Value
		}
		if n := mapGet(body, "DeletionPolicy"); n != nil {
			r.DeletionPolicy = n.Value
		}
		if n := mapGet(body, "UpdateReplacePolicy"); n != nil {
			r.UpdateReplacePolicy = n.Value
		}
		if n := mapGet(body, "Condition"); n != nil {
			r.Condition = n.Value
		}
		for _, n := range listOf(mapGet(body, "DependsOn")) {
			r.DependsOn = append(r.DependsOn, n.Value)
		}
		if r.Type == "" {
			return nil, fmt.Errorf("resource %s has no Type", id)
		}
		t.Resources[id] = r
	}
	if out := mapGet(root, "Outputs"); out != nil {
		for i := 0; i+1 < len(out.Content); i += 2 {
			name, body := out.Content[i].Value, out.Content[i+1]
			o := Output{Value: Expr{mapGet(body, "Value")}}
			if n := mapGet(body, "Description"); n != nil {
				o.Description = n.Value
			}
			t.Outputs[name] = o
		}
	}
	return t, nil
}

// IDs returns the logical IDs of the resources of type typ, sorted.
func (t *Template) IDs(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// ParameterValues returns every parameter's default, replaced by the value
// in overrides where one is given. It fails on an override for a parameter
// the template does not declare, on a missing value (an empty String is a
// value only where the template's Default is empty too: an optional
// parameter), and on a Number outside its bounds.
func (t *Template) ParameterValues(overrides map[string]string) (map[string]string, error) {
	vals := map[string]string{}
	for name, p := range t.Parameters {
		vals[name] = p.Default
	}
	for name, v := range overrides {
		if _, ok := t.Parameters[name]; !ok {
			return nil, fmt.Errorf("parameter %s is not in the template", name)
		}
		vals[name] = v
	}
	for name, p := range t.Parameters {
		v := vals[name]
		if v == "" && (p.Type == "Number" || !p.HasDefault || p.Default != "") {
			return nil, fmt.Errorf("parameter %s has no value", name)
		}
		if p.Type == "Number" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("parameter %s: %q is not a number", name, v)
			}
			if p.MinValue != nil && f < *p.MinValue {
				return nil, fmt.Errorf("parameter %s: %s is below %v", name, v, *p.MinValue)
			}
			if p.MaxValue != nil && f > *p.MaxValue {
				return nil, fmt.Errorf("parameter %s: %s is above %v", name, v, *p.MaxValue)
			}
		}
	}
	return vals, nil
}

// IsZero reports whether the expression is absent.
func (e Expr) IsZero() bool { return e.node == nil }

// Literal returns the expression's text and true when it is a plain
// scalar, not an intrinsic function.
func (e Expr) Literal() (string, bool) {
	if e.node == nil || e.node.Kind != yaml.ScalarNode || strings.HasPrefix(e.node.Tag, "!") && !isPlainTag(e.node.Tag) {
		return "", false
	}
	return e.node.Value, true
}

// Ref returns the target of a Ref expression.
func (e Expr) Ref() (string, bool) {
	n := e.node
	if n == nil {
		return "", false
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!Ref" {
		return n.Value, true
	}
	if v := singleKey(n, "Ref"); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value, true
	}
	return "", false
}

// GetAtt returns the resource and attribute of a Fn::GetAtt expression.
func (e Expr) GetAtt() (resource, attribute string, ok bool) {
	n := e.node
	if n == nil {
		return "", "", false
	}
	var v *yaml.Node
	switch {
	case n.Tag == "!GetAtt":
		v = n
	case singleKey(n, "Fn::GetAtt") != nil:
		v = singleKey(n, "Fn::GetAtt")
	default:
		return "", "", false
	}
	switch v.Kind {
	case yaml.ScalarNode:
		res, att, found := strings.Cut(v.Value, ".")
		return res, att, found
	case yaml.SequenceNode:
		if len(v.Content) == 2 {
			return v.Content[0].Value, v.Content[1].Value, true
		}
	}
	return "", "", false
}

// Sub returns the format string of a Fn::Sub expression (the one-argument
// form).
func (e Expr) Sub() (string, bool) {
	n := e.node
	if n == nil {
		return "", false
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!Sub" {
		return n.Value, true
	}
	if v := singleKey(n, "Fn::Sub"); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value, true
	}
	return "", false
}

// References returns the logical IDs and parameter names the expression
// refers to, including those inside a Fn::Sub string, without pseudo
// parameters.
func (e Expr) References() []string {
	if r, ok := e.Ref(); ok && !strings.HasPrefix(r, "AWS::") {
		return []string{r}
	}
	if r, _, ok := e.GetAtt(); ok {
		return []string{r}
	}
	if s, ok := e.Sub(); ok {
		var refs []string
		for _, v := range subVariables(s) {
			name, _, _ := strings.Cut(v, ".")
			if !strings.HasPrefix(name, "AWS::") {
				refs = append(refs, name)
			}
		}
		return refs
	}
	return nil
}

// String renders the expression for messages.
func (e Expr) String() string {
	if e.node == nil {
		return "<none>"
	}
	if v, ok := e.Literal(); ok {
		return v
	}
	if r, ok := e.Ref(); ok {
		return "!Ref " + r
	}
	if r, a, ok := e.GetAtt(); ok {
		return "!GetAtt " + r + "." + a
	}
	if s, ok := e.Sub(); ok {
		return "!Sub " + s
	}
	return "<expression>"
}

// Resolver gives values to the targets of intrinsic functions.
type Resolver interface {
	// Ref returns the value of Ref name (a parameter, a resource or a
	// pseudo parameter).
	Ref(name string) (string, error)
	// GetAtt returns attribute att of resource id.
	GetAtt(id, att string) (string, error)
}

// Resolve evaluates the expression with r.
func (e Expr) Resolve(r Resolver) (string, error) {
	if v, ok := e.Literal(); ok {
		return v, nil
	}
	if name, ok := e.Ref(); ok {
		return r.Ref(name)
	}
	if id, att, ok := e.GetAtt(); ok {
		return r.GetAtt(id, att)
	}
	if s, ok := e.Sub(); ok {
		var b strings.Builder
		for {
			i := strings.Index(s, "${")
			if i < 0 {
				b.WriteString(s)
				break
			}
			j := strings.Index(s[i:], "}")
			if j < 0 {
				return "", fmt.Errorf("unterminated ${ in %q", s)
			}
			b.WriteString(s[:i])
			v := s[i+2 : i+j]
			var val string
			var err error
			if id, att, dotted := strings.Cut(v, "."); dotted {
				val, err = r.GetAtt(id, att)
			} else {
				val, err = r.Ref(v)
			}
			if err != nil {
				return "", err
			}
			b.WriteString(val)
			s = s[i+j+1:]
		}
		return b.String(), nil
	}
	return "", fmt.Errorf("unsupported expression %s", e)
}

// subVariables returns the ${...} names in a Fn::Sub format string.
func subVariables(s string) []string {
	var out []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return out
		}
		j := strings.Index(s[i:], "}")
		if j < 0 {
			return out
		}
		out = append(out, s[i+2:i+j])
		s = s[i+j+1:]
	}
}

// isPlainTag reports whether tag is one of YAML's own scalar tags.
func isPlainTag(tag string) bool {
	return strings.HasPrefix(tag, "!!")
}

// singleKey returns the value of a one-entry mapping whose key is key.
func singleKey(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode || len(n.Content) != 2 || n.Content[0].Value != key {
		return nil
	}
	return n.Content[1]
}

// mapGet returns the value of key in mapping n, or nil.
func mapGet(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// mapKeys returns the keys of mapping n in document order.
func mapKeys(n *yaml.Node) []string {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	keys := make([]string, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	return keys
}

// listOf returns the items of n: the items of a sequence, or n itself for
// a single value.
func listOf(n *yaml.Node) []*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.SequenceNode && n.Tag != "!GetAtt" {
		return n.Content
	}
	return []*yaml.Node{n}
}
