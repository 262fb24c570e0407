package infra

import (
	"fmt"
	"sort"
	"strconv"

	"gopkg.in/yaml.v3"
)

// TableSpec is a DynamoDB table as the template declares it.
type TableSpec struct {
	// LogicalID is the table's logical ID.
	LogicalID string
	// TableName is the TableName property, if the template fixes one.
	TableName string
	// BillingMode is PAY_PER_REQUEST or PROVISIONED.
	BillingMode string
	// Attributes maps attribute names to their types (S, N, B).
	Attributes map[string]string
	// Key is the table's primary key.
	Key KeySpec
	// Indexes are the global secondary indexes, sorted by name.
	Indexes []IndexSpec
	// TTLAttribute is the TTL attribute name ("" when TTL is not enabled).
	TTLAttribute string
	// PointInTimeRecovery reports whether PITR is enabled.
	PointInTimeRecovery bool
	// DeletionProtection reports DeletionProtectionEnabled.
	DeletionProtection bool
	// DeletionPolicy and UpdateReplacePolicy are the resource's policies.
	DeletionPolicy, UpdateReplacePolicy string
}

// KeySpec is a partition key and an optional sort key.
type KeySpec struct {
	// Partition is the HASH key attribute.
	Partition string
	// Sort is the RANGE key attribute, or "".
	Sort string
}

// IndexSpec is a global secondary index.
type IndexSpec struct {
	// Name is the index name.
	Name string
	// Key is the index key.
	Key KeySpec
	// Projection is ALL, KEYS_ONLY or INCLUDE.
	Projection string
	// NonKeyAttributes are the projected attributes of an INCLUDE index.
	NonKeyAttributes []string
}

// QueueSpec is an SQS queue as the template declares it.
type QueueSpec struct {
	// LogicalID is the queue's logical ID.
	LogicalID string
	// QueueName is the QueueName property, if the template fixes one.
	QueueName string
	// Attributes are the SQS attributes (by SQS attribute name) that the
	// properties set, except RedrivePolicy.
	Attributes map[string]string
	// DeadLetterQueue is the logical ID of the redrive target, or "".
	DeadLetterQueue string
	// MaxReceiveCount is the redrive policy's maxReceiveCount.
	MaxReceiveCount int
}

// FunctionSpec is a SAM function with the template's Globals merged in.
type FunctionSpec struct {
	// LogicalID is the function's logical ID.
	LogicalID string
	// CodeURI is the CodeUri property: the package directory, relative to
	// the template.
	CodeURI string
	// Handler, Runtime and Architectures are the function's settings.
	Handler, Runtime string
	// Architectures lists the instruction set architectures.
	Architectures []string
	// BuildMethod is Metadata.BuildMethod.
	BuildMethod string
	// MemorySize is in MB; Timeout in seconds.
	MemorySize, Timeout int
	// Environment maps variable names to their value expressions.
	Environment map[string]Expr
	// Events are the function's event sources by name.
	Events map[string]EventSpec
	// Role is the Role expression, if the function names its role.
	Role Expr
	// LogFormat is LoggingConfig.LogFormat (Text or JSON; "" means Text).
	LogFormat string
}

// EventSpec is one event source of a SAM function.
type EventSpec struct {
	// Name is the event's key under Events.
	Name string
	// Type is the event type (SQS, HttpApi, ...).
	Type string
	// Queue is an SQS event's Queue expression.
	Queue Expr
	// BatchSize is an SQS event's BatchSize.
	BatchSize int
	// FunctionResponseTypes is an SQS event's FunctionResponseTypes.
	FunctionResponseTypes []string
	// APIID, Path and Method describe an HttpApi event.
	APIID Expr
	// Path is an HttpApi event's route path.
	Path string
	// Method is an HttpApi event's HTTP method.
	Method string
	// Auth is an HttpApi event's Auth.Authorizer, if set.
	Auth string
	// Schedule is a Schedule event's expression (rate(1 minute)).
	Schedule string
}

// Tables returns the DynamoDB tables of the template, sorted by logical ID.
func (t *Template) Tables() ([]TableSpec, error) {
	var out []TableSpec
	for _, id := range t.IDs(TypeTable) {
		r := t.Resources[id]
		var p struct {
			TableName            string `yaml:"TableName"`
			BillingMode          string `yaml:"BillingMode"`
			DeletionProtection   bool   `yaml:"DeletionProtectionEnabled"`
			AttributeDefinitions []struct {
				AttributeName string `yaml:"AttributeName"`
				AttributeType string `yaml:"AttributeType"`
			} `yaml:"AttributeDefinitions"`
			KeySchema              []keyElement `yaml:"KeySchema"`
			GlobalSecondaryIndexes []struct {
				IndexName  string       `yaml:"IndexName"`
				KeySchema  []keyElement `yaml:"KeySchema"`
				Projection struct {
					ProjectionType   string   `yaml:"ProjectionType"`
					NonKeyAttributes []string `yaml:"NonKeyAttributes"`
				} `yaml:"Projection"`
			} `yaml:"GlobalSecondaryIndexes"`
			TimeToLiveSpecification struct {
				AttributeName string `yaml:"AttributeName"`
				Enabled       bool   `yaml:"Enabled"`
			} `yaml:"TimeToLiveSpecification"`
			PointInTimeRecoverySpecification struct {
				PointInTimeRecoveryEnabled bool `yaml:"PointInTimeRecoveryEnabled"`
			} `yaml:"PointInTimeRecoverySpecification"`
		}
		if r.Properties == nil {
			return nil, fmt.Errorf("table %s has no Properties", id)
		}
		if err := r.Properties.Decode(&p); err != nil {
			return nil, fmt.Errorf("table %s: %w", id, err)
		}
		s := TableSpec{
			LogicalID:           id,
			TableName:           p.TableName,
			BillingMode:         p.BillingMode,
			Attributes:          map[string]string{},
			DeletionProtection:  p.DeletionProtection,
			PointInTimeRecovery: p.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled,
			DeletionPolicy:      r.DeletionPolicy,
			UpdateReplacePolicy: r.UpdateReplacePolicy,
		}
		if s.BillingMode == "" {
			s.BillingMode = "PROVISIONED"
		}
		if p.TimeToLiveSpecification.Enabled {
			s.TTLAttribute = p.TimeToLiveSpecification.AttributeName
		}
		for _, a := range p.AttributeDefinitions {
			s.Attributes[a.AttributeName] = a.AttributeType
		}
		var err error
		if s.Key, err = keySpec(p.KeySchema); err != nil {
			return nil, fmt.Errorf("table %s: %w", id, err)
		}
		for _, g := range p.GlobalSecondaryIndexes {
			k, err := keySpec(g.KeySchema)
			if err != nil {
				return nil, fmt.Errorf("table %s index %s: %w", id, g.IndexName, err)
			}
			s.Indexes = append(s.Indexes, IndexSpec{
				Name:             g.IndexName,
				Key:              k,
				Projection:       g.Projection.ProjectionType,
				NonKeyAttributes: g.Projection.NonKeyAttributes,
			})
		}
		sort.Slice(s.Indexes, func(i, j int) bool { return s.Indexes[i].Name < s.Indexes[j].Name })
		out = append(out, s)
	}
	return out, nil
}

// keyElement is one KeySchema entry.
type keyElement struct {
	AttributeName string `yaml:"AttributeName"`
	KeyType       string `yaml:"KeyType"`
}

// keySpec converts a KeySchema.
func keySpec(ks []keyElement) (KeySpec, error) {
	var k KeySpec
	for _, e := range ks {
		switch e.KeyType {
		case "HASH":
			k.Partition = e.AttributeName
		case "RANGE":
			k.Sort = e.AttributeName
		default:
			return k, fmt.Errorf("key type %q", e.KeyType)
		}
	}
	if k.Partition == "" {
		return k, fmt.Errorf("no HASH key")
	}
	return k, nil
}

// queueProperties maps the AWS::SQS::Queue properties that become queue
// attributes to their SQS attribute names.
var queueProperties = map[string]string{
	"VisibilityTimeout":             "VisibilityTimeout",
	"MessageRetentionPeriod":        "MessageRetentionPeriod",
	"ReceiveMessageWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
	"DelaySeconds":                  "DelaySeconds",
	"MaximumMessageSize":            "MaximumMessageSize",
	"SqsManagedSseEnabled":          "SqsManagedSseEnabled",
	"FifoQueue":                     "FifoQueue",
	"ContentBasedDeduplication":     "ContentBasedDeduplication",
}

// Queues returns the SQS queues of the template, sorted by logical ID. A
// property this package does not know is an error, so that a template
// change cannot be silently left out of provisioning.
func (t *Template) Queues() ([]QueueSpec, error) {
	var out []QueueSpec
	for _, id := range t.IDs(TypeQueue) {
		r := t.Resources[id]
		s := QueueSpec{LogicalID: id, Attributes: map[string]string{}}
		for _, key := range mapKeys(r.Properties) {
			v := mapGet(r.Properties, key)
			switch key {
			case "QueueName":
				s.QueueName = v.Value
			case "RedrivePolicy":
				s.DeadLetterQueue = firstReference(Expr{mapGet(v, "deadLetterTargetArn")})
				n, err := strconv.Atoi(scalar(mapGet(v, "maxReceiveCount")))
				if err != nil || s.DeadLetterQueue == "" {
					return nil, fmt.Errorf("queue %s: RedrivePolicy needs deadLetterTargetArn (!GetAtt Queue.Arn) and maxReceiveCount", id)
				}
				s.MaxReceiveCount = n
			default:
				name, ok := queueProperties[key]
				if !ok {
					return nil, fmt.Errorf("queue %s: property %s is not supported by package infra", id, key)
				}
				if v.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("queue %s: property %s must be a literal", id, key)
				}
				s.Attributes[name] = v.Value
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// Functions returns the SAM functions of the template with Globals merged
// (function properties win; Environment variables are merged key by key),
// sorted by logical ID.
func (t *Template) Functions() ([]FunctionSpec, error) {
	var out []FunctionSpec
	for _, id := range t.IDs(TypeFunction) {
		r := t.Resources[id]
		s := FunctionSpec{LogicalID: id, Environment: map[string]Expr{}, Events: map[string]EventSpec{}}
		for _, layer := range []*yaml.Node{t.globalFunction, r.Properties} {
			if err := s.merge(layer); err != nil {
				return nil, fmt.Errorf("function %s: %w", id, err)
			}
		}
		if m := mapGet(r.Metadata, "BuildMethod"); m != nil {
			s.BuildMethod = m.Value
		}
		events := mapGet(r.Properties, "Events")
		for _, name := range mapKeys(events) {
			e, err := eventSpec(name, mapGet(events, name))
			if err != nil {
				return nil, fmt.Errorf("function %s event %s: %w", id, name, err)
			}
			s.Events[name] = e
		}
		out = append(out, s)
	}
	return out, nil
}

// merge applies one layer of function properties (Globals, then the
// function's own).
func (s *FunctionSpec) merge(n *yaml.Node) error {
	for _, key := range mapKeys(n) {
		v := mapGet(n, key)
		var err error
		switch key {
		case "CodeUri":
			s.CodeURI = v.Value
		case "Handler":
			s.Handler = v.Value
		case "Runtime":
			s.Runtime = v.Value
		case "Architectures":
			s.Architectures = nil
			for _, a := range listOf(v) {
				s.Architectures = append(s.Architectures, a.Value)
			}
		case "MemorySize":
			s.MemorySize, err = strconv.Atoi(v.Value)
		case "Timeout":
			s.Timeout, err = strconv.Atoi(v.Value)
		case "Role":
			s.Role = Expr{v}
		case "LoggingConfig":
			if f := scalar(mapGet(v, "LogFormat")); f != "" {
				s.LogFormat = f
			}
		case "Environment":
			vars := mapGet(v, "Variables")
			for _, name := range mapKeys(vars) {
				s.Environment[name] = Expr{mapGet(vars, name)}
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

// eventSpec reads one SAM event source.
func eventSpec(name string, n *yaml.Node) (EventSpec, error) {
	e := EventSpec{Name: name, Type: scalar(mapGet(n, "Type"))}
	p := mapGet(n, "Properties")
	switch e.Type {
	case "SQS":
		e.Queue = Expr{mapGet(p, "Queue")}
		if b := mapGet(p, "BatchSize"); b != nil {
			var err error
			if e.BatchSize, err = strconv.Atoi(b.Value); err != nil {
				return e, fmt.Errorf("BatchSize: %w", err)
			}
		}
		for _, v := range listOf(mapGet(p, "FunctionResponseTypes")) {
			e.FunctionResponseTypes = append(e.FunctionResponseTypes, v.Value)
		}
	case "HttpApi":
		e.APIID = Expr{mapGet(p, "ApiId")}
		e.Path = scalar(mapGet(p, "Path"))
		e.Method = scalar(mapGet(p, "Method"))
		e.Auth = scalar(mapGet(mapGet(p, "Auth"), "Authorizer"))
	case "Schedule":
		e.Schedule = scalar(mapGet(p, "Schedule"))
	}
	return e, nil
}

// firstReference returns the first logical ID e refers to, or "".
func firstReference(e Expr) string {
	if refs := e.References(); len(refs) > 0 {
		return refs[0]
	}
	return ""
}

// scalar returns the value of a scalar node, or "".
func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}
