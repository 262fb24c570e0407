// Package ceb179 is the domain at the centre of the product: one customs
// request and the states it passes on its way to an upload; the messages
// and invoke payloads that carry it between the functions and hsmbridge
// (SignJob, Invocation, SourceAnswer, UploadAnswer); upload attempts,
// operators' views and replays, certificates and the bridge's health;
// retention, customs' time zone and calendar day; a payment's orders and
// goods (Order, Goods), its exact amount (Amount) and the error listing
// broken field rules (ValidationError), shared by the wire format and the
// public package records; the kinds of error the
// adapters return and the edges map to customs codes, HTTP statuses and
// exit codes; and the deployment template (template.yaml, embedded so that
// every tool creates exactly the template's tables and queues).
//
// It imports no adapter, function, bridge or tool package; they all import
// it. See docs/architecture.md for the package map and the import rules,
// which imports_test.go checks.
package ceb179
