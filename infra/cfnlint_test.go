package infra

// The CloudFormation specification linter that TestTemplateMatchesCloudFormationSpec
// runs (`make test` fetches the specification): test code, not part of
// what `ceb179 local` needs to read and provision the template.

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// SpecPackage is the npm package, pinned, whose db.json.gz is the
// CloudFormation resource specification CheckSpec reads: every resource
// type with its properties (CloudFormation's registry schemas, and the SAM
// resource types), as the AWS CDK generates its L1 classes from it.
const SpecPackage = "@aws-cdk/aws-service-spec@0.1.216"

// Spec is the CloudFormation resource specification: the properties of
// every resource type and of the property types they use.
type Spec struct {
	resources map[string]*specShape // by CloudFormation type
	types     map[string]*specShape // by the database's $id
	sam       map[*specShape]bool   // SAM's resource and property types
}

// specShape is a resource type or a property type.
type specShape struct {
	ID    string               `json:"$id"`
	CFN   string               `json:"cloudFormationType"`
	Name  string               `json:"name"`
	Props map[string]*specProp `json:"properties"`
}

// specProp is one property of a shape.
type specProp struct {
	Type          specType   `json:"type"`
	Required      bool       `json:"required"`
	PreviousTypes []specType `json:"previousTypes"`
}

// specType is a property's type: a primitive (string, integer, number,
// boolean, json, date-time, tag), an array or map of an element type, a
// union of types, or a reference to a property type.
type specType struct {
	Kind          string     `json:"type"`
	Element       *specType  `json:"element"`
	Types         []specType `json:"types"`
	AllowedValues []any      `json:"allowedValues"`
	Reference     *struct {
		ID string `json:"$ref"`
	} `json:"reference"`
}

// LoadSpec reads the specification database (db.json.gz of SpecPackage).
func LoadSpec(path string) (*Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cloudformation spec: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("cloudformation spec %s: %w", path, err)
	}
	var db struct {
		Schema struct {
			Resource struct {
				Entities []*specShape `json:"entities"`
			} `json:"resource"`
			TypeDefinition struct {
				Entities []*specShape `json:"entities"`
			} `json:"typeDefinition"`
		} `json:"schema"`
	}
	if err := json.NewDecoder(zr).Decode(&db); err != nil {
		return nil, fmt.Errorf("cloudformation spec %s: %w", path, err)
	}
	s := &Spec{resources: map[string]*specShape{}, types: map[string]*specShape{}}
	for _, r := range db.Schema.Resource.Entities {
		s.resources[r.CFN] = r
	}
	for _, t := range db.Schema.TypeDefinition.Entities {
		s.types[t.ID] = t
	}
	s.sam = map[*specShape]bool{}
	var mark func(t specType)
	mark = func(t specType) {
		switch {
		case t.Element != nil:
			mark(*t.Element)
		case t.Reference != nil:
			if sh := s.types[t.Reference.ID]; sh != nil && !s.sam[sh] {
				s.sam[sh] = true
				for _, p := range sh.Props {
					mark(p.Type)
				}
			}
		}
		for _, u := range t.Types {
			mark(u)
		}
	}
	for typ, r := range s.resources {
		if strings.HasPrefix(typ, "AWS::Serverless::") {
			s.sam[r] = true
			for _, p := range r.Props {
				mark(p.Type)
			}
		}
	}
	if len(s.resources) < 1000 || len(s.types) < 1000 {
		return nil, fmt.Errorf("cloudformation spec %s: only %d resource types and %d property types", path, len(s.resources), len(s.types))
	}
	return s, nil
}

// The specification's SAM types are older than SAM itself. samPassThrough
// lists, by SAM resource or property type, properties SAM documents as
// handed unchanged to the CloudFormation resource it generates; they are
// checked against that resource type. samOnly lists SAM's own properties
// newer than the specification, whose names are accepted as they are.
var (
	samPassThrough = map[string]struct {
		target string
		props  []string
	}{
		"AWS::Serverless::Function": {"AWS::Lambda::Function", []string{"LoggingConfig", "RecursiveLoop", "RuntimeManagementConfig", "SnapStart"}},
		"SQSEvent":                  {"AWS::Lambda::EventSourceMapping", []string{"FilterCriteria", "FunctionResponseTypes", "MaximumBatchingWindowInSeconds", "ScalingConfig"}},
	}
	samOnly = map[string][]string{
		"HttpApiAuth": {"EnableIamAuthorizer"},
	}
)

// resourceKeys are the keys a resource may have besides Type.
var resourceKeys = []string{"Type", "Properties", "Metadata", "DependsOn", "Condition", "DeletionPolicy", "UpdateReplacePolicy", "UpdatePolicy", "CreationPolicy"}

// CheckSpec checks every resource of the template text against the
// specification, recursively: its type exists, every property name is one
// of its type's, required properties are present, and literal values have
// the property's kind (list, mapping, number, boolean, one of the allowed
// values). Values computed by intrinsic functions are not checked, except
// that both branches of Fn::If are. The function properties in SAM's
// Globals are checked as AWS::Serverless::Function properties. It returns
// one message per problem, naming the path in the template.
func (s *Spec) CheckSpec(template []byte) []string {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(template)).Decode(&doc); err != nil {
		return []string{"template: " + err.Error()}
	}
	if len(doc.Content) != 1 {
		return []string{"template: not a YAML document"}
	}
	root := doc.Content[0]
	c := &specCheck{spec: s}
	res := mapGet(root, "Resources")
	if res == nil || res.Kind != yaml.MappingNode {
		return []string{"template: no Resources"}
	}
	for i := 0; i+1 < len(res.Content); i += 2 {
		c.resource("Resources."+res.Content[i].Value, res.Content[i+1])
	}
	if g := mapGet(mapGet(root, "Globals"), "Function"); g != nil {
		fn := s.resources[TypeFunction]
		if fn == nil {
			c.problem("Globals.Function", "the specification has no "+TypeFunction)
		} else {
			c.properties("Globals.Function", TypeFunction, fn, g, false)
		}
	}
	return c.problems
}

// specCheck collects the problems of one check.
type specCheck struct {
	spec     *Spec
	problems []string
}

func (c *specCheck) problem(path, msg string) {
	c.problems = append(c.problems, path+": "+msg)
}

func (c *specCheck) resource(path string, n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		c.problem(path, "not a mapping")
		return
	}
	for _, k := range mapKeys(n) {
		if !slices.Contains(resourceKeys, k) {
			c.problem(path+"."+k, "not a resource attribute"+suggest(k, resourceKeys))
		}
	}
	typ := scalar(mapGet(n, "Type"))
	shape := c.spec.resources[typ]
	if shape == nil {
		c.problem(path+".Type", fmt.Sprintf("unknown resource type %q", typ))
		return
	}
	props := mapGet(n, "Properties")
	if props == nil {
		props = &yaml.Node{Kind: yaml.MappingNode}
	}
	c.properties(path+".Properties", typ, shape, props, true)
}

// properties checks the mapping n against shape (named name in messages);
// required says whether missing required properties count.
func (c *specCheck) properties(path, name string, shape *specShape, n *yaml.Node, required bool) {
	if isIntrinsic(n) {
		c.intrinsic(path, n, func(p string, v *yaml.Node) { c.properties(p, name, shape, v, required) })
		return
	}
	if n.Kind != yaml.MappingNode {
		c.problem(path, "want a mapping of "+name+" properties")
		return
	}
	keys := mapKeys(n)
	for _, k := range keys {
		v := mapGet(n, k)
		p, ok := shape.Props[k]
		if !ok && c.spec.sam[shape] {
			if pass, found := samPassThrough[cmp.Or(shape.CFN, shape.Name)]; found && slices.Contains(pass.props, k) {
				if target := c.spec.resources[pass.target]; target != nil && target.Props[k] != nil {
					c.value(path+"."+k, v, target.Props[k], hint(n))
					continue
				}
			}
			if slices.Contains(samOnly[shape.Name], k) {
				continue
			}
		}
		if !ok {
			c.problem(path+"."+k, "not a property of "+name+suggest(k, slices.Collect(maps.Keys(shape.Props))))
			continue
		}
		c.value(path+"."+k, v, p, hint(n))
	}
	if !required {
		return
	}
	for k, p := range shape.Props {
		if p.Required && !slices.Contains(keys, k) {
			c.problem(path, "required property "+k+" of "+name+" is missing")
		}
	}
}

// value checks one property value against its type (or a previous type
// of it: the specification keeps those that CloudFormation still takes).
func (c *specCheck) value(path string, n *yaml.Node, p *specProp, typeHint string) {
	before := len(c.problems)
	c.typed(path, n, p.Type, typeHint)
	if len(c.problems) == before || len(p.PreviousTypes) == 0 {
		return
	}
	mine := c.problems[before:]
	for _, t := range p.PreviousTypes {
		trial := &specCheck{spec: c.spec}
		trial.typed(path, n, t, typeHint)
		if len(trial.problems) == 0 {
			c.problems = c.problems[:before]
			return
		}
	}
	c.problems = append(c.problems[:before], mine...)
}

func (c *specCheck) typed(path string, n *yaml.Node, t specType, typeHint string) {
	if isIntrinsic(n) {
		c.intrinsic(path, n, func(p string, v *yaml.Node) { c.typed(p, v, t, typeHint) })
		return
	}
	switch t.Kind {
	case "json":
	case "string", "date-time":
		if n.Kind != yaml.ScalarNode {
			c.problem(path, "want a text value")
			return
		}
		c.allowed(path, n, t)
	case "integer", "number":
		if n.Kind != yaml.ScalarNode {
			c.problem(path, "want a number")
			return
		}
		if _, err := strconv.ParseFloat(n.Value, 64); err != nil {
			c.problem(path, fmt.Sprintf("%q is not a number", n.Value))
		}
	case "boolean":
		if n.Kind != yaml.ScalarNode || (n.Value != "true" && n.Value != "false") {
			c.problem(path, fmt.Sprintf("%q is not true or false", n.Value))
		}
	case "tag":
		if n.Kind != yaml.MappingNode || mapGet(n, "Key") == nil || len(n.Content) != 4 || mapGet(n, "Value") == nil {
			c.problem(path, "want a tag {Key, Value}")
		}
	case "array":
		if n.Kind != yaml.SequenceNode {
			c.problem(path, "want a list")
			return
		}
		for i, e := range n.Content {
			c.typed(fmt.Sprintf("%s[%d]", path, i), e, *t.Element, "")
		}
	case "map":
		if n.Kind != yaml.MappingNode {
			c.problem(path, "want a mapping")
			return
		}
		for _, k := range mapKeys(n) {
			c.typed(path+"."+k, mapGet(n, k), *t.Element, "")
		}
	case "ref":
		shape := c.spec.types[t.Reference.ID]
		if shape == nil {
			c.problem(path, "the specification names an unknown type "+t.Reference.ID)
			return
		}
		c.properties(path, shape.Name, shape, n, true)
	case "union":
		c.union(path, n, t, typeHint)
	default:
		c.problem(path, "the specification has an unknown kind of type "+t.Kind)
	}
}

// union accepts n when one of the union's types does. For SAM's event
// sources, whose Properties are a union of one type per event Type, the
// type named after the sibling Type (HttpApi: HttpApiEvent) is the one.
func (c *specCheck) union(path string, n *yaml.Node, t specType, typeHint string) {
	alts := t.Types
	if typeHint != "" {
		for _, a := range t.Types {
			if a.Reference != nil && c.spec.types[a.Reference.ID] != nil && c.spec.types[a.Reference.ID].Name == typeHint+"Event" {
				alts = []specType{a}
			}
		}
	}
	var best []string
	for i, a := range alts {
		trial := &specCheck{spec: c.spec}
		trial.typed(path, n, a, "")
		if len(trial.problems) == 0 {
			return
		}
		if i == 0 || len(trial.problems) < len(best) {
			best = trial.problems
		}
	}
	c.problems = append(c.problems, best...)
}

func (c *specCheck) allowed(path string, n *yaml.Node, t specType) {
	if len(t.AllowedValues) == 0 {
		return
	}
	for _, v := range t.AllowedValues {
		if fmt.Sprint(v) == n.Value {
			return
		}
	}
	c.problem(path, fmt.Sprintf("%q is not one of %v", n.Value, t.AllowedValues))
}

// intrinsic checks what can be checked of an intrinsic function's value:
// both branches of Fn::If (AWS::NoValue is fine); nothing of the others,
// whose values are only known when the stack is deployed.
func (c *specCheck) intrinsic(path string, n *yaml.Node, check func(string, *yaml.Node)) {
	args := n
	if n.Tag == "!If" {
		args = n
	} else if v := singleKey(n, "Fn::If"); v != nil {
		args = v
	} else {
		return
	}
	if args.Kind != yaml.SequenceNode || len(args.Content) != 3 {
		c.problem(path, "Fn::If needs [condition, value if true, value if false]")
		return
	}
	for i, b := range args.Content[1:] {
		if r, ok := (Expr{b}).Ref(); ok && r == "AWS::NoValue" {
			continue
		}
		check(fmt.Sprintf("%s(Fn::If %d)", path, i+1), b)
	}
}

// isIntrinsic reports whether n is an intrinsic function: a short-form tag
// (!Ref, !Sub ...) or a one-key mapping Ref or Fn::*.
func isIntrinsic(n *yaml.Node) bool {
	if n == nil {
		return false
	}
	if strings.HasPrefix(n.Tag, "!") && !isPlainTag(n.Tag) {
		return true
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		k := n.Content[0].Value
		return k == "Ref" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// hint is the value of a mapping's Type key, which picks the type of SAM
// event Properties.
func hint(n *yaml.Node) string {
	if t := mapGet(n, "Type"); t != nil && t.Kind == yaml.ScalarNode {
		return t.Value
	}
	return ""
}

// suggest names the known key closest to k (same letters ignoring case, or
// one edit away), for misspellings.
func suggest(k string, known []string) string {
	slices.Sort(known)
	for _, w := range known {
		if strings.EqualFold(w, k) || editDistance(strings.ToLower(w), strings.ToLower(k)) <= 2 {
			return " (did you mean " + w + "?)"
		}
	}
	return ""
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// SpecPath returns where the specification database is cached: the file
// named by CEB179_CFNSPEC, else .cache/cfnspec/db.json.gz under the
// repository root (`make cfnspec` fetches it there with npm).
func SpecPath() (string, error) {
	if p := os.Getenv("CEB179_CFNSPEC"); p != "" {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "cfnspec", "db.json.gz"), nil
}
