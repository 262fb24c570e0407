package infra

// The template's IAM statements and managed policies, and canonical table
// keys, as the template tests read them: test code, not part of what
// `ceb179 local` needs to read and provision the template.

import (
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"
)

// Statement is one IAM policy statement found in the template.
type Statement struct {
	// Owner is the logical ID of the role or policy holding the statement.
	Owner string
	// Sid is the statement ID.
	Sid string
	// Effect is Allow or Deny.
	Effect string
	// Actions are the statement's actions.
	Actions []string
	// Resources are the statement's resource expressions.
	Resources []Expr
	// Conditions are the statement's Condition block: operator (such as
	// StringEquals) → condition key → values.
	Conditions map[string]map[string][]string
}

// Statements returns every IAM policy statement of the template: the
// inline policies of AWS::IAM::Role resources and of AWS::IAM::RolePolicy
// resources (owned by the role they name), AWS::IAM::ManagedPolicy
// documents, and statements given inline in a SAM function's Policies.
func (t *Template) Statements() ([]Statement, error) {
	var out []Statement
	add := func(owner string, doc *yaml.Node) error {
		for _, st := range listOf(mapGet(doc, "Statement")) {
			s := Statement{
				Owner:  owner,
				Sid:    scalar(mapGet(st, "Sid")),
				Effect: scalar(mapGet(st, "Effect")),
			}
			if mapGet(st, "NotAction") != nil || mapGet(st, "NotResource") != nil {
				return fmt.Errorf("%s: statement %q uses NotAction or NotResource", owner, s.Sid)
			}
			for _, a := range listOf(mapGet(st, "Action")) {
				s.Actions = append(s.Actions, a.Value)
			}
			for _, r := range listOf(mapGet(st, "Resource")) {
				s.Resources = append(s.Resources, Expr{r})
			}
			if c := mapGet(st, "Condition"); c != nil {
				s.Conditions = map[string]map[string][]string{}
				for _, op := range mapKeys(c) {
					keys := mapGet(c, op)
					s.Conditions[op] = map[string][]string{}
					for _, k := range mapKeys(keys) {
						for _, v := range listOf(mapGet(keys, k)) {
							s.Conditions[op][k] = append(s.Conditions[op][k], v.Value)
						}
					}
				}
			}
			out = append(out, s)
		}
		return nil
	}
	ids := make([]string, 0, len(t.Resources))
	for id := range t.Resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r := t.Resources[id]
		var err error
		switch r.Type {
		case TypeRole:
			for _, p := range listOf(mapGet(r.Properties, "Policies")) {
				if err = add(id, mapGet(p, "PolicyDocument")); err != nil {
					break
				}
			}
		case TypeManagedPolicy:
			err = add(id, mapGet(r.Properties, "PolicyDocument"))
		case TypeRolePolicy:
			// Owned by the role it is attached to.
			owner := id
			if ref, ok := (Expr{mapGet(r.Properties, "RoleName")}).Ref(); ok {
				owner = ref
			}
			err = add(owner, mapGet(r.Properties, "PolicyDocument"))
		case TypeFunction:
			for _, p := range listOf(mapGet(r.Properties, "Policies")) {
				if mapGet(p, "Statement") != nil {
					if err = add(id, p); err != nil {
						break
					}
				}
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ManagedPolicyARNs returns, by logical ID, the AWS managed policies
// attached to roles and SAM functions (ManagedPolicyArns, and SAM policy
// names given as plain strings under Policies).
func (t *Template) ManagedPolicyARNs() map[string][]string {
	out := map[string][]string{}
	for id, r := range t.Resources {
		for _, p := range listOf(mapGet(r.Properties, "ManagedPolicyArns")) {
			out[id] = append(out[id], p.Value)
		}
		if r.Type == TypeFunction {
			for _, p := range listOf(mapGet(r.Properties, "Policies")) {
				if p.Kind == yaml.ScalarNode {
					out[id] = append(out[id], p.Value)
				}
			}
		}
	}
	return out
}

// ExprOf wraps a YAML node of the template as an expression.
func ExprOf(n *yaml.Node) Expr { return Expr{n} }

// DescribeKeys renders a table's key and indexes canonically, for example
// "key(pk,sk) [byOrder(orderNo,;KEYS_ONLY[])]".
func DescribeKeys(t TableSpec) string {
	return fmt.Sprintf("key(%s,%s) %s", t.Key.Partition, t.Key.Sort, render(t.Indexes))
}
