// Package ceb179 carries the deployment template, template.yaml, inside
// every binary built from this module, so that tools such as `ceb179 local`
// create exactly the template's tables and queues wherever they run: the
// template stays the single source of truth.
package ceb179

import _ "embed"

// Template is the AWS SAM template at the root of the module.
//
//go:embed template.yaml
var Template []byte
