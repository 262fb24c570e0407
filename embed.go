package ceb179

import _ "embed"

// Template is the AWS SAM template at the root of the module.
//
//go:embed template.yaml
var Template []byte
