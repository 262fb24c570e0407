// Package ceb179 is the domain at the centre of the product: one customs
// request and the states it passes on its way to an upload, the messages
// and invoke payloads that carry it between the functions and hsmbridge,
// and the deployment template (template.yaml, embedded so that every tool
// creates exactly the template's tables and queues).
//
// It imports no adapter, function, bridge or tool package; they all import
// it. See docs/architecture.md for the package map and the import rules.
package ceb179
