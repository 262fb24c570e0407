package dynamo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/clock"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/records"
)

// Keys of the payments table (docs/architecture.md).
const (
	payPrefix    = "PAY#"
	orderPrefix  = "ORDER#"
	skHead       = "HEAD"
	skOwner      = "PAYMENT"
	maxTransact  = 100 // items in one TransactWriteItems
	maxBatchGet  = 100 // keys in one BatchGetItem
	maxAttempts  = 5   // bounded retries of throttled or conflicting writes
	maxQueryPage = 64  // pages of one payment query
)

// Compile-time checks that Store is what records consumes.
var (
	_ records.Store  = (*Store)(nil)
	_ records.Finder = (*Store)(nil)
)

// paymentHead is the HEAD item of a payment. totalAmount is a string: a
// DynamoDB number would turn "5.0" into "5".
type paymentHead struct {
	PK               string `dynamodbav:"pk"`
	SK               string `dynamodbav:"sk"`
	InitalRequest    string `dynamodbav:"initalRequest"`
	InitalResponse   string `dynamodbav:"initalResponse"`
	EbpCode          string `dynamodbav:"ebpCode"`
	PayCode          string `dynamodbav:"payCode"`
	PayTransactionID string `dynamodbav:"payTransactionId"`
	TotalAmount      string `dynamodbav:"totalAmount"`
	Currency         string `dynamodbav:"currency"`
	VerDept          string `dynamodbav:"verDept"`
	PayType          string `dynamodbav:"payType"`
	TradingTime      string `dynamodbav:"tradingTime"`
	Note             string `dynamodbav:"note"`
	Orders           int    `dynamodbav:"orders"`
	Digest           string `dynamodbav:"digest"`
	RecordedAt       int64  `dynamodbav:"recordedAt"`
	ExpiresAt        int64  `dynamodbav:"expiresAt"`
}

// paymentOrder is the ORDER#<orderNo> item of a payment; seq keeps the
// order of payExchangeInfoLists. paidDay (the China day of tradingTime and
// a shard, index byPaidDay) lists the orders paid on a day.
type paymentOrder struct {
	PK          string      `dynamodbav:"pk"`
	SK          string      `dynamodbav:"sk"`
	OrderNo     string      `dynamodbav:"orderNo"`
	PaidDay     string      `dynamodbav:"paidDay,omitempty"`
	Seq         int         `dynamodbav:"seq"`
	GoodsInfo   []goodsItem `dynamodbav:"goodsInfo"`
	RecpAccount string      `dynamodbav:"recpAccount"`
	RecpCode    string      `dynamodbav:"recpCode"`
	RecpName    string      `dynamodbav:"recpName"`
	ExpiresAt   int64       `dynamodbav:"expiresAt"`
}

// goodsItem is one entry of an order's goodsInfo.
type goodsItem struct {
	Gname    string `dynamodbav:"gname"`
	ItemLink string `dynamodbav:"itemLink"`
}

// orderOwner is the ORDER#<orderNo>/PAYMENT item: it makes an order belong
// to one payment only, and finds that payment with one consistent read.
type orderOwner struct {
	PK               string `dynamodbav:"pk"`
	SK               string `dynamodbav:"sk"`
	PayTransactionID string `dynamodbav:"payTransactionId"`
	ExpiresAt        int64  `dynamodbav:"expiresAt"`
}

func payKey(payTransactionID string) string { return payPrefix + payTransactionID }

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

// PaymentExpiresAt returns the TTL of a payment's items, in epoch seconds:
// its trading time (China time) plus the store's retention.
func (s *Store) PaymentExpiresAt(p records.Payment) (int64, error) {
	t, err := p.TradedAt()
	if err != nil {
		return 0, err
	}
	return s.expiresAt(t), nil
}

// paymentWrite is one payment's items, ready for a transaction.
type paymentWrite struct {
	index  int // in the caller's slice
	p      records.Payment
	digest string
	items  []types.TransactWriteItem
	roles  []itemRole // what each item is, in the order of items
	keys   []string   // "pk\x00sk" of every item
}

// roleKind is what a transaction item of a payment is.
type roleKind int

// The kinds of items of a payment.
const (
	roleHead  roleKind = iota // PAY#<id>/HEAD
	roleOrder                 // PAY#<id>/ORDER#<orderNo>: under the payment's key
	roleOwner                 // ORDER#<orderNo>/PAYMENT: the order's owner
)

// itemRole names one transaction item of a payment: its kind and, for an
// order's items, which order of the payment (index in Orders). A broken
// condition is read through the role of its item, never its position.
type itemRole struct {
	kind  roleKind
	order int
}

// String is "head", "order n" or "owner n".
func (r itemRole) String() string {
	switch r.kind {
	case roleHead:
		return "head"
	case roleOrder:
		return fmt.Sprintf("order %d", r.order)
	}
	return fmt.Sprintf("owner %d", r.order)
}

func (s *Store) paymentItems(p records.Payment, now time.Time) (paymentWrite, error) {
	exp, err := s.PaymentExpiresAt(p)
	if err != nil {
		return paymentWrite{}, err
	}
	if exp <= now.Unix() {
		return paymentWrite{}, fmt.Errorf("payment %s: tradingTime %s plus %d days of retention has passed: %w",
			p.PayTransactionID, p.TradingTime, int(s.retention.Hours()/24), records.ErrExpired)
	}
	digest, err := p.Digest()
	if err != nil {
		return paymentWrite{}, err
	}
	table := aws.String(s.tables.Payments)
	pk := payKey(p.PayTransactionID)
	w := paymentWrite{p: p, digest: digest}
	traded, _ := p.TradedAt() // read by PaymentExpiresAt above
	day := ceb179.Day(traded)
	put := func(role itemRole, v any, cond string) error {
		item, err := attributevalue.MarshalMap(v)
		if err != nil {
			return err
		}
		w.items = append(w.items, types.TransactWriteItem{Put: &types.Put{
			TableName:           table,
			Item:                item,
			ConditionExpression: aws.String(cond),
		}})
		pkv := item["pk"].(*types.AttributeValueMemberS).Value
		skv := item["sk"].(*types.AttributeValueMemberS).Value
		w.keys = append(w.keys, pkv+"\x00"+skv)
		w.roles = append(w.roles, role)
		return nil
	}
	if err := put(itemRole{kind: roleHead}, paymentHead{
		PK: pk, SK: skHead,
		InitalRequest: p.InitalRequest, InitalResponse: p.InitalResponse,
		EbpCode: p.EbpCode, PayCode: p.PayCode, PayTransactionID: p.PayTransactionID,
		TotalAmount: string(p.TotalAmount), Currency: p.Currency, VerDept: p.VerDept,
		PayType: p.PayType, TradingTime: p.TradingTime, Note: p.Note,
		Orders: len(p.Orders), Digest: digest, RecordedAt: now.UnixMilli(), ExpiresAt: exp,
	}, "attribute_not_exists(pk)"); err != nil {
		return paymentWrite{}, fmt.Errorf("encode payment %s: %w", p.PayTransactionID, err)
	}
	for i, o := range p.Orders {
		goods := make([]goodsItem, len(o.GoodsInfo))
		for j, g := range o.GoodsInfo {
			goods[j] = goodsItem{Gname: g.Gname, ItemLink: g.ItemLink}
		}
		if err := put(itemRole{kind: roleOrder, order: i}, paymentOrder{
			PK: pk, SK: orderPrefix + o.OrderNo, OrderNo: o.OrderNo, PaidDay: paidDay(day, o.OrderNo), Seq: i,
			GoodsInfo: goods, RecpAccount: o.RecpAccount, RecpCode: o.RecpCode, RecpName: o.RecpName,
			ExpiresAt: exp,
		}, "attribute_not_exists(pk)"); err != nil {
			return paymentWrite{}, fmt.Errorf("encode payment %s: %w", p.PayTransactionID, err)
		}
		if err := put(itemRole{kind: roleOwner, order: i}, orderOwner{
			PK: orderPrefix + o.OrderNo, SK: skOwner, PayTransactionID: p.PayTransactionID, ExpiresAt: exp,
		}, "attribute_not_exists(pk)"); err != nil {
			return paymentWrite{}, fmt.Errorf("encode payment %s: %w", p.PayTransactionID, err)
		}
	}
	if len(w.items) > maxTransact {
		return paymentWrite{}, fmt.Errorf("payment %s: %d orders, more than %d", p.PayTransactionID, len(p.Orders), records.MaxOrders)
	}
	return w, nil
}

// PutPayments writes payments, each one atomically, and returns one error
// per payment (see records.Store). Several payments share one
// TransactWriteItems call (at most 100 items, no item twice); every item is
// conditional on not existing, so a payment already stored is refused
// whole. Heads that already exist are found first with BatchGetItem, so
// that running an import again costs reads, not failed transactions. When a
// transaction is cancelled, the cancellation reasons name the payments that
// broke a condition; the others are written again.
func (s *Store) PutPayments(ctx context.Context, ps []records.Payment) []error {
	errs := make([]error, len(ps))
	now := time.Now()
	var todo []paymentWrite
	for i, p := range ps {
		w, err := s.paymentItems(p, now)
		if err != nil {
			errs[i] = err
			continue
		}
		w.index = i
		todo = append(todo, w)
	}
	// Heads already stored: duplicates or conflicts, without a write.
	existing, err := s.headDigests(ctx, todo)
	if err != nil {
		for _, w := range todo {
			errs[w.index] = err
		}
		return errs
	}
	pending := todo[:0]
	for _, w := range todo {
		if d, ok := existing[w.p.PayTransactionID]; ok {
			errs[w.index] = sameOrConflict(w, d)
			continue
		}
		pending = append(pending, w)
	}
	for _, group := range groupWrites(pending) {
		s.writeGroup(ctx, group, errs)
	}
	var paid []string
	for _, w := range pending {
		if errs[w.index] == nil {
			paid = append(paid, w.p.OrderNos()...)
		}
	}
	// Best effort: the settler's Missing pass closes what this leaves open.
	_ = s.closeDeclared(ctx, paid, false)
	return errs
}

func sameOrConflict(w paymentWrite, storedDigest string) error {
	if storedDigest == w.digest {
		return fmt.Errorf("payment %s: %w", w.p.PayTransactionID, records.ErrDuplicate)
	}
	return fmt.Errorf("payment %s: %w", w.p.PayTransactionID, records.ErrConflict)
}

// groupWrites packs payments into transactions of at most maxTransact items
// in which no item appears twice, keeping their order.
func groupWrites(ws []paymentWrite) [][]paymentWrite {
	var (
		groups [][]paymentWrite
		cur    []paymentWrite
		n      int
		seen   = map[string]bool{}
	)
	for _, w := range ws {
		clash := n+len(w.items) > maxTransact
		for _, k := range w.keys {
			clash = clash || seen[k]
		}
		if clash && len(cur) > 0 {
			groups = append(groups, cur)
			cur, n, seen = nil, 0, map[string]bool{}
		}
		cur = append(cur, w)
		n += len(w.items)
		for _, k := range w.keys {
			seen[k] = true
		}
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	return groups
}

// writeGroup writes a group of payments in one transaction and sets errs
// for every payment of it. After a cancellation, the payments that broke a
// condition get their reason and the others are written again; when no
// condition was broken (a conflicting transaction, throttling, or no reasons
// given), it waits a little and writes the payments one at a time. The
// number of rounds is bounded.
func (s *Store) writeGroup(ctx context.Context, group []paymentWrite, errs []error) {
	fail := func(ws []paymentWrite, err error) {
		for _, w := range ws {
			errs[w.index] = fmt.Errorf("write payment %s: %w", w.p.PayTransactionID, err)
		}
	}
	for attempt := 0; len(group) > 0; attempt++ {
		if attempt == maxAttempts+len(group) {
			fail(group, fmt.Errorf("gave up after %d attempts", attempt))
			return
		}
		var items []types.TransactWriteItem
		for _, w := range group {
			items = append(items, w.items...)
		}
		_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return
		}
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			fail(group, err)
			return
		}
		var retry []paymentWrite
		at := 0
		for _, w := range group {
			var broken []itemRole // w's items that broke their condition
			for j, role := range w.roles {
				if k := at + j; k < len(tce.CancellationReasons) && aws.ToString(tce.CancellationReasons[k].Code) == "ConditionalCheckFailed" {
					broken = append(broken, role)
				}
			}
			at += len(w.items)
			if len(broken) == 0 {
				retry = append(retry, w)
				continue
			}
			errs[w.index] = s.classify(ctx, w, broken)
		}
		if len(retry) < len(group) {
			group = retry
			continue
		}
		if err := clock.Sleep(ctx, time.Duration(attempt+1)*20*time.Millisecond); err != nil {
			fail(group, err)
			return
		}
		if len(group) > 1 {
			for _, w := range group {
				s.writeGroup(ctx, []paymentWrite{w}, errs)
			}
			return
		}
	}
}

// classify says why a payment's transaction items broke their conditions:
// its head exists (a duplicate or a conflict) or one of its orders belongs
// to another payment.
func (s *Store) classify(ctx context.Context, w paymentWrite, broken []itemRole) error {
	for _, r := range broken {
		if r.kind != roleOwner {
			// The head, or an ORDER item under the payment's own key: the
			// payment key exists.
			digests, err := s.headDigests(ctx, []paymentWrite{w})
			if err != nil {
				return err
			}
			if d, ok := digests[w.p.PayTransactionID]; ok {
				return sameOrConflict(w, d)
			}
			return fmt.Errorf("payment %s: %w", w.p.PayTransactionID, records.ErrConflict)
		}
	}
	o := w.p.Orders[broken[0].order]
	owner, err := s.orderOwner(ctx, o.OrderNo)
	if err != nil && !errors.Is(err, ceb179.ErrNotFound) {
		return err
	}
	return fmt.Errorf("payment %s: %w", w.p.PayTransactionID, &records.OrderTakenError{OrderNo: o.OrderNo, Owner: owner})
}

// headDigests returns the digest of every payment of ws whose head is
// stored, by payTransactionId.
func (s *Store) headDigests(ctx context.Context, ws []paymentWrite) (map[string]string, error) {
	out := map[string]string{}
	var keys []map[string]types.AttributeValue
	seen := map[string]bool{}
	for _, w := range ws {
		if id := w.p.PayTransactionID; !seen[id] {
			seen[id] = true
			keys = append(keys, key(payKey(id), skHead))
		}
	}
	for start := 0; start < len(keys); start += maxBatchGet {
		err := s.batchGetItems(ctx, keys[start:min(len(keys), start+maxBatchGet)], true, []string{"payTransactionId", "digest"}, func(item map[string]types.AttributeValue) error {
			var h struct {
				ID     string `dynamodbav:"payTransactionId"`
				Digest string `dynamodbav:"digest"`
			}
			if err := attributevalue.UnmarshalMap(item, &h); err != nil {
				return fmt.Errorf("decode payment head: %w", err)
			}
			out[h.ID] = h.Digest
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read payment heads: %w", err)
		}
	}
	return out, nil
}

// orderOwner returns the payTransactionId of the payment holding orderNo.
func (s *Store) orderOwner(ctx context.Context, orderNo string) (string, error) {
	item, err := s.getItem(ctx, s.tables.Payments, key(orderPrefix+orderNo, skOwner))
	if errors.Is(err, ceb179.ErrNotFound) {
		return "", fmt.Errorf("order %s: %w", orderNo, ceb179.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("get owner of order %s: %w", orderNo, err)
	}
	var o orderOwner
	if err := attributevalue.UnmarshalMap(item, &o); err != nil {
		return "", fmt.Errorf("decode owner of order %s: %w", orderNo, err)
	}
	return o.PayTransactionID, nil
}

// PaymentByOrder returns the payment that paid orderNo, with every order of
// it in the recorded order, in two consistent reads: the order's owner item,
// then the payment's items. It returns an error wrapping
// ceb179.ErrNotFound when no payment holds the order.
func (s *Store) PaymentByOrder(ctx context.Context, orderNo string) (records.Payment, error) {
	id, err := s.orderOwner(ctx, orderNo)
	if err != nil {
		return records.Payment{}, err
	}
	return s.GetPayment(ctx, id)
}

// GetPayment returns the payment recorded under payTransactionID, or an
// error wrapping ceb179.ErrNotFound.
func (s *Store) GetPayment(ctx context.Context, payTransactionID string) (records.Payment, error) {
	var (
		head   *paymentHead
		orders []paymentOrder
		start  map[string]types.AttributeValue
	)
	for page := 0; ; page++ {
		if page == maxQueryPage {
			return records.Payment{}, fmt.Errorf("read payment %s: more than %d pages", payTransactionID, maxQueryPage)
		}
		out, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.tables.Payments),
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: payKey(payTransactionID)}},
			ConsistentRead:            aws.Bool(true),
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return records.Payment{}, fmt.Errorf("read payment %s: %w", payTransactionID, err)
		}
		for _, item := range out.Items {
			sk, _ := item["sk"].(*types.AttributeValueMemberS)
			switch {
			case sk != nil && sk.Value == skHead:
				head = new(paymentHead)
				if err := attributevalue.UnmarshalMap(item, head); err != nil {
					return records.Payment{}, fmt.Errorf("decode payment %s: %w", payTransactionID, err)
				}
			case sk != nil && strings.HasPrefix(sk.Value, orderPrefix):
				var o paymentOrder
				if err := attributevalue.UnmarshalMap(item, &o); err != nil {
					return records.Payment{}, fmt.Errorf("decode payment %s: %w", payTransactionID, err)
				}
				orders = append(orders, o)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	if head == nil {
		return records.Payment{}, fmt.Errorf("payment %s: %w", payTransactionID, ceb179.ErrNotFound)
	}
	sort.SliceStable(orders, func(i, j int) bool { return orders[i].Seq < orders[j].Seq })
	p := records.Payment{
		InitalRequest: head.InitalRequest, InitalResponse: head.InitalResponse,
		EbpCode: head.EbpCode, PayCode: head.PayCode, PayTransactionID: head.PayTransactionID,
		TotalAmount: customs.Amount(head.TotalAmount), Currency: head.Currency, VerDept: head.VerDept,
		PayType: head.PayType, TradingTime: head.TradingTime, Note: head.Note,
	}
	for _, o := range orders {
		goods := make([]customs.Goods, len(o.GoodsInfo))
		for j, g := range o.GoodsInfo {
			goods[j] = customs.Goods{Gname: g.Gname, ItemLink: g.ItemLink}
		}
		p.Orders = append(p.Orders, customs.Order{
			OrderNo: o.OrderNo, GoodsInfo: goods,
			RecpAccount: o.RecpAccount, RecpCode: o.RecpCode, RecpName: o.RecpName,
		})
	}
	if len(p.Orders) != head.Orders {
		return records.Payment{}, fmt.Errorf("read payment %s: %d of %d orders found", payTransactionID, len(p.Orders), head.Orders)
	}
	return p, nil
}
