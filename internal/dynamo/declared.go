package dynamo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ceb179/ceb179/internal/clock"
	"github.com/ceb179/ceb179/records"
)

// Keys and indexes of declared orders (docs/architecture.md).
const (
	skDeclared = "DECLARED"
	// IndexUnpaid is the sparse index of declared orders still without a
	// payment: partition unpaid (always unpaidValue), sort declaredAt.
	IndexUnpaid = "unpaid"
	// IndexPaidDay lists the orders of the payments of a China day:
	// partition paidDay ("yyyy-mm-dd#shard"), sort orderNo.
	IndexPaidDay = "byPaidDay"
	unpaidValue  = "UNPAID"
	// paidDayShards spreads one day's orders over partitions of the index,
	// so that a bulk import of one day is not held by one partition.
	paidDayShards  = 8
	maxBatchWrite  = 25 // items in one BatchWriteItem
	maxOpenPerPage = 1000
)

// Compile-time check that Store keeps declared orders.
var _ records.OrderStore = (*Store)(nil)

// declaredItem is the ORDER#<orderNo>/DECLARED item: the order was
// declared to customs. unpaid is present (and the item in the sparse index
// IndexUnpaid) only while no payment is known for the order.
type declaredItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	DeclaredAt int64  `dynamodbav:"declaredAt"`
	ReceivedAt int64  `dynamodbav:"receivedAt"`
	Unpaid     string `dynamodbav:"unpaid,omitempty"`
	ExpiresAt  int64  `dynamodbav:"expiresAt"`
}

// paidDay is the paidDay value of an order paid on day.
func paidDay(day, orderNo string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(orderNo))
	return day + "#" + strconv.Itoa(int(h.Sum32()%paidDayShards))
}

// DeclareOrders stores declared orders (see records.OrderStore): one error
// per order, ErrDuplicate when the order was declared before (the first
// declaration is kept). An order without a payment record yet is written
// with unpaid set, so that the Missing pass finds it in the sparse index;
// an order already paid is written without.
func (s *Store) DeclareOrders(ctx context.Context, orders []records.DeclaredOrder) []error {
	errs := make([]error, len(orders))
	for start := 0; start < len(orders); start += maxBatchGet / 2 {
		chunk := orders[start:min(len(orders), start+maxBatchGet/2)]
		s.declareChunk(ctx, chunk, errs[start:start+len(chunk)])
	}
	return errs
}

// declareChunk declares at most 50 orders: one consistent read of their
// DECLARED and owner items, then the new ones in batch writes.
func (s *Store) declareChunk(ctx context.Context, orders []records.DeclaredOrder, errs []error) {
	keys := make([]map[string]types.AttributeValue, 0, 2*len(orders))
	for _, o := range orders {
		keys = append(keys, key(orderPrefix+o.OrderNo, skDeclared), key(orderPrefix+o.OrderNo, skOwner))
	}
	found, err := s.batchGet(ctx, keys, true)
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("read declared orders: %w", err)
		}
		return
	}
	now := time.Now()
	var (
		puts []types.WriteRequest
		at   []int
		seen = map[string]bool{}
	)
	for i, o := range orders {
		pk := orderPrefix + o.OrderNo
		if found[pk+"\x00"+skDeclared] || seen[o.OrderNo] {
			errs[i] = fmt.Errorf("order %s: %w", o.OrderNo, records.ErrDuplicate)
			continue
		}
		seen[o.OrderNo] = true
		it := declaredItem{PK: pk, SK: skDeclared, DeclaredAt: o.DeclaredAt.UnixMilli(), ReceivedAt: now.UnixMilli(),
			ExpiresAt: s.expiresAt(o.DeclaredAt)}
		if !found[pk+"\x00"+skOwner] {
			it.Unpaid = unpaidValue
		}
		item, err := attributevalue.MarshalMap(it)
		if err != nil {
			errs[i] = fmt.Errorf("encode declared order %s: %w", o.OrderNo, err)
			continue
		}
		puts = append(puts, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
		at = append(at, i)
	}
	for start := 0; start < len(puts); start += maxBatchWrite {
		end := min(len(puts), start+maxBatchWrite)
		if err := s.batchWrite(ctx, puts[start:end]); err != nil {
			for _, i := range at[start:end] {
				errs[i] = fmt.Errorf("write declared order %s: %w", orders[i].OrderNo, err)
			}
		}
	}
}

// OpenOrders returns the declared orders still marked unpaid that were
// declared at or before declaredBefore, oldest first, at most limit of
// them (more reports that there are others). It reads the sparse index
// IndexUnpaid only, so its cost follows the open orders, not the history;
// the index is eventually consistent and an order it returns may have been
// paid since (PaidOrders tells).
func (s *Store) OpenOrders(ctx context.Context, declaredBefore time.Time, limit int) (orders []records.DeclaredOrder, more bool, err error) {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.tables.Payments),
		IndexName:              aws.String(IndexUnpaid),
		KeyConditionExpression: aws.String("unpaid = :u AND declaredAt <= :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":u": &types.AttributeValueMemberS{Value: unpaidValue},
			":t": &types.AttributeValueMemberN{Value: strconv.FormatInt(declaredBefore.UnixMilli(), 10)},
		},
	}
	for {
		in.Limit = aws.Int32(int32(min(maxOpenPerPage, limit-len(orders)+1)))
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, false, fmt.Errorf("query unpaid declared orders: %w", err)
		}
		for _, item := range out.Items {
			var it declaredItem
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return nil, false, fmt.Errorf("decode unpaid declared order: %w", err)
			}
			if len(orders) == limit {
				return orders, true, nil
			}
			orders = append(orders, records.DeclaredOrder{OrderNo: strings.TrimPrefix(it.PK, orderPrefix), DeclaredAt: time.UnixMilli(it.DeclaredAt)})
		}
		if len(out.LastEvaluatedKey) == 0 {
			return orders, false, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// PaidOrders returns, of orderNos, those that belong to a recorded payment,
// with the payTransactionId of each (consistent reads of the owner items).
func (s *Store) PaidOrders(ctx context.Context, orderNos []string) (map[string]string, error) {
	out := map[string]string{}
	for start := 0; start < len(orderNos); start += maxBatchGet {
		var keys []map[string]types.AttributeValue
		for _, o := range orderNos[start:min(len(orderNos), start+maxBatchGet)] {
			keys = append(keys, key(orderPrefix+o, skOwner))
		}
		err := s.batchGetItems(ctx, keys, true, []string{"pk", "payTransactionId"}, func(item map[string]types.AttributeValue) error {
			var o orderOwner
			if err := attributevalue.UnmarshalMap(item, &o); err != nil {
				return fmt.Errorf("decode order owner: %w", err)
			}
			out[strings.TrimPrefix(o.PK, orderPrefix)] = o.PayTransactionID
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read order owners: %w", err)
		}
	}
	return out, nil
}

// CloseDeclared removes the unpaid mark of declared orders whose payment
// is recorded (PaidOrders said so), taking them out of IndexUnpaid.
func (s *Store) CloseDeclared(ctx context.Context, orderNos []string) error {
	return s.closeDeclared(ctx, orderNos, true)
}

// closeDeclared removes the unpaid mark of the declared orders among
// orderNos. Unless known says they are all marked, it reads which are
// first, so that orders never declared cost a read, not a write.
func (s *Store) closeDeclared(ctx context.Context, orderNos []string, known bool) error {
	if !known && len(orderNos) > 0 {
		var keys []map[string]types.AttributeValue
		for _, o := range orderNos {
			keys = append(keys, key(orderPrefix+o, skDeclared))
		}
		var open []string
		for start := 0; start < len(keys); start += maxBatchGet {
			err := s.batchGetItems(ctx, keys[start:min(len(keys), start+maxBatchGet)], false, []string{"pk", "unpaid"}, func(item map[string]types.AttributeValue) error {
				if _, ok := item["unpaid"]; ok {
					if pk, ok := item["pk"].(*types.AttributeValueMemberS); ok {
						open = append(open, strings.TrimPrefix(pk.Value, orderPrefix))
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("read declared orders: %w", err)
			}
		}
		orderNos = open
	}
	var errs []error
	for _, o := range orderNos {
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:           aws.String(s.tables.Payments),
			Key:                 key(orderPrefix+o, skDeclared),
			UpdateExpression:    aws.String("REMOVE unpaid"),
			ConditionExpression: aws.String("attribute_exists(unpaid)"),
		})
		if _, ccf := conditionFailed(err); err != nil && !ccf {
			errs = append(errs, fmt.Errorf("close declared order %s: %w", o, err))
		}
	}
	return errors.Join(errs...)
}

// PaidOrdersOfDay returns the order numbers of the payments whose
// tradingTime falls on day (yyyy-mm-dd, China), from the index
// IndexPaidDay.
func (s *Store) PaidOrdersOfDay(ctx context.Context, day string) ([]string, error) {
	var out []string
	for shard := range paidDayShards {
		p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
			TableName:                 aws.String(s.tables.Payments),
			IndexName:                 aws.String(IndexPaidDay),
			KeyConditionExpression:    aws.String("paidDay = :d"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":d": &types.AttributeValueMemberS{Value: day + "#" + strconv.Itoa(shard)}},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list orders paid on %s: %w", day, err)
			}
			for _, item := range page.Items {
				if o, ok := item["orderNo"].(*types.AttributeValueMemberS); ok {
					out = append(out, o.Value)
				}
			}
		}
	}
	return out, nil
}

// batchGet reads keys (at most maxBatchGet) from the payments table and
// reports which exist, by "pk\x00sk".
func (s *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue, consistent bool) (map[string]bool, error) {
	found := map[string]bool{}
	err := s.batchGetItems(ctx, keys, consistent, []string{"pk", "sk"}, func(item map[string]types.AttributeValue) error {
		pk, _ := item["pk"].(*types.AttributeValueMemberS)
		sk, _ := item["sk"].(*types.AttributeValueMemberS)
		if pk != nil && sk != nil {
			found[pk.Value+"\x00"+sk.Value] = true
		}
		return nil
	})
	return found, err
}

// batchGetItems reads keys (at most maxBatchGet) from the payments table
// with BatchGetItem, asking again for unprocessed keys a bounded number of
// times, and calls fn with every item found, holding only the attributes
// attrs.
func (s *Store) batchGetItems(ctx context.Context, keys []map[string]types.AttributeValue, consistent bool, attrs []string, fn func(map[string]types.AttributeValue) error) error {
	names := map[string]string{}
	refs := make([]string, len(attrs))
	for i, a := range attrs {
		refs[i] = "#a" + strconv.Itoa(i)
		names[refs[i]] = a
	}
	for attempt := 0; len(keys) > 0; attempt++ {
		if attempt == maxAttempts {
			return fmt.Errorf("unprocessed keys after %d attempts", attempt)
		}
		out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
			s.tables.Payments: {Keys: keys, ConsistentRead: aws.Bool(consistent),
				ProjectionExpression: aws.String(strings.Join(refs, ", ")), ExpressionAttributeNames: names},
		}})
		if err != nil {
			return err
		}
		for _, item := range out.Responses[s.tables.Payments] {
			if err := fn(item); err != nil {
				return err
			}
		}
		keys = out.UnprocessedKeys[s.tables.Payments].Keys
		if len(keys) > 0 {
			if err := clock.Sleep(ctx, time.Duration(attempt+1)*20*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// batchWrite writes requests (at most maxBatchWrite) to the payments
// table, sending unprocessed ones again a bounded number of times.
func (s *Store) batchWrite(ctx context.Context, reqs []types.WriteRequest) error {
	for attempt := 0; len(reqs) > 0; attempt++ {
		if attempt == maxAttempts {
			return fmt.Errorf("unprocessed items after %d attempts", attempt)
		}
		out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{s.tables.Payments: reqs}})
		if err != nil {
			return err
		}
		reqs = out.UnprocessedItems[s.tables.Payments]
		if len(reqs) > 0 {
			if err := clock.Sleep(ctx, time.Duration(attempt+1)*20*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}
