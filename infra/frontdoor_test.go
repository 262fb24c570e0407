package infra_test

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ceb179/ceb179/infra"
)

// at walks n along path: strings are mapping keys, ints sequence indexes.
// It returns nil when a step is missing.
func at(n *yaml.Node, path ...any) *yaml.Node {
	for _, p := range path {
		if n == nil {
			return nil
		}
		switch k := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return nil
			}
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					next = n.Content[i+1]
				}
			}
			n = next
		case int:
			if n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				return nil
			}
			n = n.Content[k]
		}
	}
	return n
}

// value is the scalar at path, "" when absent.
func value(n *yaml.Node, path ...any) string {
	if v := at(n, path...); v != nil {
		return v.Value
	}
	return ""
}

// ifBranches returns the condition and both branches of an !If node.
func ifBranches(t *testing.T, n *yaml.Node) (cond string, yes, no *yaml.Node) {
	t.Helper()
	if n == nil || n.Tag != "!If" || len(n.Content) != 3 {
		t.Fatalf("want !If [condition, then, else], got %s", infra.ExprOf(n))
	}
	return n.Content[0].Value, n.Content[1], n.Content[2]
}

// isNoValue reports whether n is !Ref AWS::NoValue.
func isNoValue(n *yaml.Node) bool {
	r, ok := infra.ExprOf(n).Ref()
	return ok && r == "AWS::NoValue"
}

// walkNodes calls f for n and every node below it.
func walkNodes(n *yaml.Node, f func(*yaml.Node)) {
	if n == nil {
		return
	}
	f(n)
	for _, c := range n.Content {
		walkNodes(c, f)
	}
}

// TestFrontDoorParameters checks the switches of the front door and its
// guards: on by default, optional domain and certificate, an empty
// allowlist by default (everyone), a daily cap of 5, and a rate limit.
func TestFrontDoorParameters(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	tests := []struct {
		name, param, typ, def string
		accept, reject        []string
	}{
		{"ok front door on by default", "FrontDoor", "String", "enabled", nil, nil},
		{"ok optional domain", "FrontDoorDomain", "String", "", []string{"", "platdata.example.com.cn"}, []string{"http://platdata.example.com.cn", "platdata.example.com.cn:80", "PLATDATA"}},
		{"ok optional certificate", "FrontDoorCertificateArn", "String", "", []string{"", "arn:aws-cn:acm:cn-north-1:123456789012:certificate/0f0e-11"}, []string{"cert"}},
		{"ok allowlist empty means everyone", "CustomsSourceCidrs", "String", "", []string{"", "203.0.113.0/24", "203.0.113.0/24,198.51.100.7/32"}, []string{"203.0.113.0/24, 198.51.100.7/32", "customs", "203.0.113.7", "2001:db8::/32"}},
		{"ok daily cap of 5", "OrderDailyCap", "Number", "5", nil, nil},
		{"ok rate rule limit", "SourceRateLimit", "Number", "1000", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := tpl.Parameters[tt.param]
			if !ok {
				t.Fatalf("no parameter %s", tt.param)
			}
			if p.Type != tt.typ || p.Default != tt.def || !p.HasDefault {
				t.Fatalf("%s: %s default %q (given %t), want %s default %q", tt.param, p.Type, p.Default, p.HasDefault, tt.typ, tt.def)
			}
			re, err := regexp.Compile(p.AllowedPattern)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range tt.accept {
				if !re.MatchString(v) {
					t.Errorf("AllowedPattern refuses %q", v)
				}
			}
			for _, v := range tt.reject {
				if re.MatchString(v) {
					t.Errorf("AllowedPattern accepts %q", v)
				}
			}
		})
	}
	if p := tpl.Parameters["OrderDailyCap"]; p.MinValue == nil || *p.MinValue != 1 {
		t.Errorf("OrderDailyCap MinValue %v, want 1", p.MinValue)
	}
	if _, err := tpl.ParameterValues(map[string]string{"FrontDoor": "disabled", "CustomsSourceCidrs": "203.0.113.0/24"}); err != nil {
		t.Errorf("front door disabled with an allowlist: %v", err)
	}
}

// TestFrontDoorServesPlainHTTP checks the path of a customs call: a
// load balancer open to the internet, a plain HTTP listener on port 80
// whose only action forwards (no redirect, no fixed answer) to a target
// group whose one target is the ingest function, with the permission to
// invoke it. Nothing in the template caches.
func TestFrontDoorServesPlainHTTP(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	byType := map[string][]string{}
	for id, r := range tpl.Resources {
		byType[r.Type] = append(byType[r.Type], id)
		if strings.HasPrefix(id, "FrontDoor") && !strings.HasSuffix(id, "Alarm") && !strings.HasPrefix(r.Condition, "HasFrontDoor") {
			t.Errorf("%s has condition %q: every front door resource needs HasFrontDoor (or a narrower one)", id, r.Condition)
		}
		if strings.HasPrefix(r.Type, "AWS::CloudFront::") {
			t.Errorf("%s: %s would cache; the front door must not", id, r.Type)
		}
	}

	lb := tpl.Resources["FrontDoorLoadBalancer"]
	if value(lb.Properties, "Type") != "application" || value(lb.Properties, "Scheme") != "internet-facing" {
		t.Errorf("load balancer %s %s, want an internet-facing application load balancer",
			value(lb.Properties, "Type"), value(lb.Properties, "Scheme"))
	}
	attrs := map[string]string{}
	for _, a := range at(lb.Properties, "LoadBalancerAttributes").Content {
		attrs[value(a, "Key")] = value(a, "Value")
	}
	if attrs["routing.http.xff_header_processing.mode"] != "append" {
		t.Errorf("X-Forwarded-For mode %q, want append: ingest takes the appended last entry as the caller", attrs["routing.http.xff_header_processing.mode"])
	}

	var http80 []string
	for _, id := range byType["AWS::ElasticLoadBalancingV2::Listener"] {
		l := tpl.Resources[id].Properties
		actions := at(l, "DefaultActions")
		if actions == nil || len(actions.Content) != 1 || value(actions, 0, "Type") != "forward" {
			t.Errorf("%s: actions %s, want a single forward (no redirect to https, no fixed answer)", id, infra.ExprOf(actions))
			continue
		}
		if ref, _ := infra.ExprOf(at(actions, 0, "TargetGroupArn")).Ref(); ref != "FrontDoorTargetGroup" {
			t.Errorf("%s forwards to %s", id, infra.ExprOf(at(actions, 0, "TargetGroupArn")))
		}
		if lbRef, _ := infra.ExprOf(at(l, "LoadBalancerArn")).Ref(); lbRef != "FrontDoorLoadBalancer" {
			t.Errorf("%s is on %s", id, infra.ExprOf(at(l, "LoadBalancerArn")))
		}
		switch port := value(l, "Port"); {
		case port == "80" && value(l, "Protocol") == "HTTP":
			http80 = append(http80, id)
			if tpl.Resources[id].Condition != "HasFrontDoor" {
				t.Errorf("%s exists under %q, want HasFrontDoor", id, tpl.Resources[id].Condition)
			}
		case port == "443" && value(l, "Protocol") == "HTTPS":
			if tpl.Resources[id].Condition != "HasFrontDoorCertificate" {
				t.Errorf("%s: https only with a certificate, condition %q", id, tpl.Resources[id].Condition)
			}
		default:
			t.Errorf("%s: %s on %s", id, value(l, "Protocol"), port)
		}
	}
	if len(http80) != 1 {
		t.Fatalf("plain HTTP listeners on 80: %v, want one", http80)
	}

	tg := tpl.Resources["FrontDoorTargetGroup"]
	targets := at(tg.Properties, "Targets")
	if value(tg.Properties, "TargetType") != "lambda" || targets == nil || len(targets.Content) != 1 {
		t.Fatalf("target group %s with %s, want one lambda target", value(tg.Properties, "TargetType"), infra.ExprOf(targets))
	}
	if id, att, _ := infra.ExprOf(at(targets, 0, "Id")).GetAtt(); id != "IngestFunction" || att != "Arn" {
		t.Errorf("target %s, want !GetAtt IngestFunction.Arn", infra.ExprOf(at(targets, 0, "Id")))
	}
	tgAttrs := map[string]string{}
	for _, a := range at(tg.Properties, "TargetGroupAttributes").Content {
		tgAttrs[value(a, "Key")] = value(a, "Value")
	}
	if tgAttrs["lambda.multi_value_headers.enabled"] != "true" {
		t.Errorf("target group attributes %v, want multi-value headers", tgAttrs)
	}
	if !slices.Contains(tg.DependsOn, "FrontDoorInvokePermission") {
		t.Errorf("target group DependsOn %v: it cannot register ingest before the permission exists", tg.DependsOn)
	}
	perm := tpl.Resources["FrontDoorInvokePermission"].Properties
	if id, _, _ := infra.ExprOf(at(perm, "FunctionName")).GetAtt(); id != "IngestFunction" ||
		value(perm, "Principal") != "elasticloadbalancing.amazonaws.com" || value(perm, "Action") != "lambda:InvokeFunction" {
		t.Errorf("permission %s %s %s", infra.ExprOf(at(perm, "FunctionName")), value(perm, "Principal"), value(perm, "Action"))
	}

	// The security group lets customs in on 80 from anywhere.
	sg := at(tpl.Resources["FrontDoorSecurityGroup"].Properties, "SecurityGroupIngress")
	if value(sg, 0, "FromPort") != "80" || value(sg, 0, "ToPort") != "80" || value(sg, 0, "CidrIp") != "0.0.0.0/0" {
		t.Errorf("security group ingress %s, want tcp 80 from 0.0.0.0/0 first", infra.ExprOf(at(sg, 0)))
	}

	// With the front door on, API Gateway's address is closed: customs
	// reaches ingest only through the front door and its guards.
	api := tpl.Resources["HttpApi"].Properties
	cond, yes, no := ifBranches(t, at(api, "DisableExecuteApiEndpoint"))
	if cond != "HasFrontDoor" || yes.Value != "true" || no.Value != "false" {
		t.Errorf("HttpApi DisableExecuteApiEndpoint %s, want !If [HasFrontDoor, true, false]", infra.ExprOf(at(api, "DisableExecuteApiEndpoint")))
	}
}

// TestPlatDataOpenURL checks the output to register with customs: plain
// http, the custom domain when given, otherwise the load balancer's name,
// no port, the path /platDataOpen.
func TestPlatDataOpenURL(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	b, err := readFile(tpl.Path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(b), &doc); err != nil {
		t.Fatal(err)
	}
	out := at(doc.Content[0], "Outputs", "PlatDataOpenUrl")
	if out == nil {
		t.Fatal("no PlatDataOpenUrl output")
	}
	if value(out, "Condition") != "HasFrontDoor" {
		t.Errorf("PlatDataOpenUrl condition %q, want HasFrontDoor", value(out, "Condition"))
	}
	cond, withDomain, withoutDomain := ifBranches(t, at(out, "Value"))
	if cond != "HasFrontDoorDomain" {
		t.Errorf("condition %q, want HasFrontDoorDomain", cond)
	}
	// http://, one host placeholder, no port, /platDataOpen, nothing else.
	url := regexp.MustCompile(`^http://\$\{([A-Za-z0-9.]+)\}/platDataOpen$`)
	for _, tt := range []struct {
		name string
		n    *yaml.Node
		host string
	}{
		{"ok custom domain", withDomain, "FrontDoorDomain"},
		{"ok load balancer name", withoutDomain, "FrontDoorLoadBalancer.DNSName"},
	} {
		s, ok := infra.ExprOf(tt.n).Sub()
		m := url.FindStringSubmatch(s)
		if !ok || m == nil || m[1] != tt.host {
			t.Errorf("%s: %s, want !Sub http://${%s}/platDataOpen", tt.name, infra.ExprOf(tt.n), tt.host)
		}
	}
}

// TestFrontDoorRateRule checks the web ACL on the load balancer: one
// rate-based rule on the connection's address (not a header), counting
// without an allowlist and blocking only sources outside it with one; no
// managed rule groups and nothing about the User-Agent, so customs' Java
// Apache-HttpClient is never blocked.
func TestFrontDoorRateRule(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	acl := tpl.Resources["FrontDoorWebAcl"]
	if acl.Type != "AWS::WAFv2::WebACL" || value(acl.Properties, "Scope") != "REGIONAL" || at(acl.Properties, "DefaultAction", "Allow") == nil {
		t.Fatalf("web ACL %s scope %s, want a regional ACL allowing by default", acl.Type, value(acl.Properties, "Scope"))
	}
	rules := at(acl.Properties, "Rules")
	if rules == nil || len(rules.Content) != 1 {
		t.Fatalf("rules %s, want exactly the rate rule", infra.ExprOf(rules))
	}
	rule := rules.Content[0]
	rate := at(rule, "Statement", "RateBasedStatement")
	if ref, _ := infra.ExprOf(at(rate, "Limit")).Ref(); ref != "SourceRateLimit" || value(rate, "AggregateKeyType") != "IP" || at(rate, "ForwardedIPConfig") != nil {
		t.Errorf("rate statement %s, want Limit !Ref SourceRateLimit on the connection's IP", infra.ExprOf(rate))
	}
	cond, scoped, none := ifBranches(t, at(rate, "ScopeDownStatement"))
	set, _, _ := infra.ExprOf(at(scoped, "NotStatement", "Statement", "IPSetReferenceStatement", "Arn")).GetAtt()
	if cond != "HasAllowlist" || set != "FrontDoorCustomsIpSet" || !isNoValue(none) {
		t.Errorf("scope down %s, want !If [HasAllowlist, not in FrontDoorCustomsIpSet, AWS::NoValue]", infra.ExprOf(at(rate, "ScopeDownStatement")))
	}
	cond, block, count := ifBranches(t, at(rule, "Action"))
	if cond != "HasAllowlist" || at(block, "Block") == nil || at(count, "Count") == nil {
		t.Errorf("action %s, want !If [HasAllowlist, Block, Count]", infra.ExprOf(at(rule, "Action")))
	}
	key := value(block, "Block", "CustomResponse", "CustomResponseBodyKey")
	if body := value(acl.Properties, "CustomResponseBodies", key, "Content"); !strings.Contains(body, `"code":"2`) {
		t.Errorf("blocked answer %q, want a customs-style JSON answer with a non-10000 code", body)
	}
	ipset := tpl.Resources["FrontDoorCustomsIpSet"]
	if ipset.Condition != "HasFrontDoorAllowlist" || value(ipset.Properties, "Scope") != "REGIONAL" {
		t.Errorf("IP set condition %q scope %q", ipset.Condition, value(ipset.Properties, "Scope"))
	}
	assoc := tpl.Resources["FrontDoorWebAclAssociation"].Properties
	if ref, _ := infra.ExprOf(at(assoc, "ResourceArn")).Ref(); ref != "FrontDoorLoadBalancer" {
		t.Errorf("web ACL associated with %s", infra.ExprOf(at(assoc, "ResourceArn")))
	}
	walkNodes(acl.Properties, func(n *yaml.Node) {
		if n.Value == "ManagedRuleGroupStatement" || strings.EqualFold(n.Value, "user-agent") {
			t.Errorf("line %d: %q in the web ACL; customs' user agent must never be blocked", n.Line, n.Value)
		}
	})
}

// TestFrontDoorAlarms checks the rate rule's alarm: it watches the rule's
// counted and blocked requests, under the names the web ACL publishes.
func TestFrontDoorAlarms(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	acl := tpl.Resources["FrontDoorWebAcl"].Properties
	aclName, _ := infra.ExprOf(at(acl, "Name")).Sub()
	ruleMetric := value(acl, "Rules", 0, "VisibilityConfig", "MetricName")
	if aclName == "" || ruleMetric == "" || value(acl, "Rules", 0, "VisibilityConfig", "CloudWatchMetricsEnabled") != "true" {
		t.Fatalf("web ACL name %q, rule metric %q: both needed, with CloudWatch metrics on", aclName, ruleMetric)
	}
	alarm := tpl.Resources["FrontDoorRateRuleAlarm"]
	if alarm.Condition != "" {
		t.Errorf("alarm condition %q: it must exist with the front door off too (the dashboard lists it)", alarm.Condition)
	}
	p := alarm.Properties
	var names []string
	var expr string
	for _, m := range at(p, "Metrics").Content {
		if e := value(m, "Expression"); e != "" {
			expr = e
			continue
		}
		metric := at(m, "MetricStat", "Metric")
		if value(metric, "Namespace") != "AWS/WAFV2" || value(m, "MetricStat", "Stat") != "Sum" || value(m, "MetricStat", "Period") != "60" {
			t.Errorf("metric %s: %s", value(m, "Id"), infra.ExprOf(at(m, "MetricStat")))
		}
		dims := map[string]string{}
		for _, d := range at(metric, "Dimensions").Content {
			v := infra.ExprOf(at(d, "Value"))
			s, ok := v.Sub()
			if !ok {
				s = value(d, "Value")
			}
			dims[value(d, "Name")] = s
		}
		if dims["WebACL"] != aclName || dims["Rule"] != ruleMetric {
			t.Errorf("metric %s dimensions %v, want WebACL %q Rule %q", value(m, "Id"), dims, aclName, ruleMetric)
		}
		names = append(names, value(metric, "MetricName"))
		if !strings.Contains(expr+" "+value(m, "Id"), value(m, "Id")) {
			t.Errorf("metric %s unused", value(m, "Id"))
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"BlockedRequests", "CountedRequests"}) || !strings.HasPrefix(expr, "SUM(") {
		t.Errorf("metrics %v expression %q, want SUM of CountedRequests and BlockedRequests", names, expr)
	}
	if th, _ := strconv.ParseFloat(value(p, "Threshold"), 64); th != 0 || value(p, "ComparisonOperator") != "GreaterThanThreshold" || value(p, "TreatMissingData") != "notBreaching" {
		t.Errorf("threshold %s %s, missing data %s", value(p, "Threshold"), value(p, "ComparisonOperator"), value(p, "TreatMissingData"))
	}
}

// TestCustomsThrottles checks that API Gateway's throttle on the customs
// route lets a burst of 10,000 calls through within a second, and that the
// payments API keeps its own, smaller limits.
func TestCustomsThrottles(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	num := func(param string) float64 {
		f, err := strconv.ParseFloat(tpl.Parameters[param].Default, 64)
		if err != nil {
			t.Fatalf("%s: %v", param, err)
		}
		return f
	}
	api := tpl.Resources["HttpApi"].Properties
	rate, _ := infra.ExprOf(at(api, "DefaultRouteSettings", "ThrottlingRateLimit")).Ref()
	burst, _ := infra.ExprOf(at(api, "DefaultRouteSettings", "ThrottlingBurstLimit")).Ref()
	if rate != "CustomsThrottlingRateLimit" || burst != "CustomsThrottlingBurstLimit" {
		t.Fatalf("HttpApi throttles %s/%s, want the customs parameters", rate, burst)
	}
	if r, b := num(rate), num(burst); r+b < 10000 {
		t.Errorf("rate %v + burst %v: a burst of 10,000 customs calls would see 429s", r, b)
	}
	pay := tpl.Resources["PaymentsApi"].Properties
	if r, _ := infra.ExprOf(at(pay, "DefaultRouteSettings", "ThrottlingRateLimit")).Ref(); r != "ApiThrottlingRateLimit" {
		t.Errorf("PaymentsApi throttle %s", r)
	}
}
