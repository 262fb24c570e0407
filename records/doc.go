// Package records holds what a platform records at payment time, the data
// that customs may ask for up to three years later: one payment (the raw
// request sent to the payment company, its raw response, and the head
// fields of payExchangeInfoHead except guid) paying one or more orders (the
// entries of payExchangeInfoLists).
//
// A Payment is validated on write with the wire format's field rules
// (customs.ValidateRecord); a bad payment is refused with every violation
// listed and nothing of it is stored. Persistence is behind the Store
// interface, implemented for DynamoDB by internal/dynamo.
//
// Three ways in share this package: Recorder, for the platform's Go
// services; Import, for `ceb179 import` (JSON Lines, one payment per line,
// in the shape of ParsePayment); and Handler, the HTTP endpoint POST
// /payments for platforms written in other languages.
//
// Nothing in this package logs payment data: messages name fields and
// payTransactionId or orderNo values, never the raw request and response,
// goods or receiving account fields.
package records
