// Package records is how a platform records what customs may ask for up to
// three years later: one Payment (the raw request sent to the payment
// company, its raw response, and the head fields of payExchangeInfoHead
// except guid) paying one or more orders (the entries of
// payExchangeInfoLists), and the orders it declared to customs
// (DeclaredOrder), so that ceb179 can tell which declared order still has
// no record. It is public: the platform's own Go services import it.
//
// A Payment is validated on write with the customs field rules; a bad
// payment is refused with every violation listed (a *ValidationError
// naming fields, never values) and nothing of it is stored. Persistence
// is behind the Store interface; package records/dynamostore implements it
// for ceb179's payments table.
//
// The ways in share this package and its rules: Recorder (Record one
// payment, RecordBatch many, each atomically), for services with access to
// the table; Client, the same over the payments API (POST /payments and
// POST /orders, IAM authorization, SigV4), for services without it; and
// Import, for `ceb179 import` (JSON Lines, one payment per line, in the
// shape of ParsePayment).
//
// Nothing in this package logs payment data: messages name fields and
// payTransactionId or orderNo values, never the raw request and response,
// goods or receiving account fields.
package records
