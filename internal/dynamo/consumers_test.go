package dynamo_test

import (
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/internal/ops"
	"github.com/ceb179/ceb179/internal/ops/opstest"
	"github.com/ceb179/ceb179/internal/settle"
	"github.com/ceb179/ceb179/internal/upload"
)

// The store implements the interfaces its consumers declare.
var (
	_ upload.Store     = (*dynamo.Store)(nil)
	_ upload.CertStore = (*dynamo.Store)(nil)
	_ ops.Store        = (*dynamo.Store)(nil)
	_ settle.Store     = (*dynamo.Store)(nil)
	_ opstest.Store    = (*dynamo.Store)(nil)
)
