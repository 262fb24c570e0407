// Package dynamostore keeps payment records and declared orders in
// ceb179's payments table (the stack's PaymentsTableName output) for the
// platform's Go services: the Store of records.NewRecorder, and the finder
// that reads a payment back as customs' assembly will.
//
//	cfg, err := config.LoadDefaultConfig(ctx)
//	store := dynamostore.New(dynamodb.NewFromConfig(cfg), os.Getenv("PAYMENTS_TABLE"))
//	rec := records.NewRecorder(store)
//
// Every payment is written in one transaction, all of it or nothing, with
// its time to live set from tradingTime and the retention (at least three
// years). The caller needs dynamodb:PutItem, GetItem, BatchGetItem,
// BatchWriteItem, UpdateItem and Query on the table.
package dynamostore

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/records"
)

// Store is the payments table. It implements records.Store,
// records.Finder and records.OrderStore.
type Store struct {
	s *dynamo.Store
}

// Compile-time checks of what Store implements.
var (
	_ records.Store      = (*Store)(nil)
	_ records.Finder     = (*Store)(nil)
	_ records.OrderStore = (*Store)(nil)
)

// Option changes a Store made by New.
type Option func(*options)

type options struct{ retention time.Duration }

// WithRetention sets how long records are kept (the stack's RetentionDays);
// less than three years is raised to three years. The default is three
// years and 30 days.
func WithRetention(d time.Duration) Option { return func(o *options) { o.retention = d } }

// New returns the store of the payments table named table, reached through
// db.
func New(db *dynamodb.Client, table string, opts ...Option) *Store {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return &Store{s: dynamo.New(db, dynamo.Tables{Payments: table}, o.retention)}
}

// PutPayments writes valid payments, each atomically, and returns one error
// per payment (see records.Store).
func (s *Store) PutPayments(ctx context.Context, ps []records.Payment) []error {
	return s.s.PutPayments(ctx, ps)
}

// PaymentByOrder returns the payment that paid orderNo, with every order of
// it, read consistently; an error wrapping records.ErrNotFound when none
// did.
func (s *Store) PaymentByOrder(ctx context.Context, orderNo string) (records.Payment, error) {
	return s.s.PaymentByOrder(ctx, orderNo)
}

// GetPayment returns the payment recorded under payTransactionID, or an
// error wrapping records.ErrNotFound.
func (s *Store) GetPayment(ctx context.Context, payTransactionID string) (records.Payment, error) {
	return s.s.GetPayment(ctx, payTransactionID)
}

// DeclareOrders stores declared orders (see records.OrderStore).
func (s *Store) DeclareOrders(ctx context.Context, orders []records.DeclaredOrder) []error {
	return s.s.DeclareOrders(ctx, orders)
}
