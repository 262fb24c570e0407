package devstack

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ceb179/ceb179"
	"github.com/ceb179/ceb179/internal/customs"
	"github.com/ceb179/ceb179/internal/dynamo"
	"github.com/ceb179/ceb179/records"
)

// Demo orders seeded by the local stack: one payment for one order, and one
// payment for two orders (customs asks for either and must get both).
const (
	DemoOrderSingle = "DEMO-ORDER-1"
	DemoOrderMultiA = "DEMO-ORDER-2A"
	DemoOrderMultiB = "DEMO-ORDER-2B"
)

// DemoPayments returns the demo payment records for ebpCode, paid at now.
func DemoPayments(ebpCode string, now time.Time) []records.Payment {
	tradingTime := now.In(ceb179.China).Format(records.TradingTimeLayout)
	goods := func(name, link string) []customs.Goods {
		return []customs.Goods{{Gname: name, ItemLink: link}}
	}
	return []records.Payment{
		{
			InitalRequest:    `<xml><appid><![CDATA[wxdemo]]></appid><body><![CDATA[济州花梨精华面膜]]></body><out_trade_no>DEMO-ORDER-1</out_trade_no><total_fee>8808</total_fee></xml>`,
			InitalResponse:   `<xml><return_code><![CDATA[SUCCESS]]></return_code><result_code><![CDATA[SUCCESS]]></result_code><transaction_id>4200000000000000000000000001</transaction_id></xml>`,
			EbpCode:          ebpCode,
			PayCode:          "1537923071",
			PayTransactionID: "4200000000000000000000000001",
			TotalAmount:      "88.08",
			Currency:         "142",
			VerDept:          "3",
			PayType:          "1",
			TradingTime:      tradingTime,
			Orders: []customs.Order{{
				OrderNo: DemoOrderSingle, GoodsInfo: goods("济州花梨精华面膜", "https://shop.example.com/detail?itemId=999761&shopId=453"),
				RecpAccount: ebpCode, RecpCode: ebpCode, RecpName: "海南省示例进出口贸易有限公司",
			}},
		},
		{
			InitalRequest:    `{"out_trade_no":"DEMO-ORDER-2","total_amount":"5.0","subject":"两件商品 <套装> & 赠品"}`,
			InitalResponse:   `{"code":"10000","msg":"Success","trade_no":"2024000000000000000000000002"}`,
			EbpCode:          ebpCode,
			PayCode:          "31222699S7",
			PayTransactionID: "2024000000000000000000000002",
			TotalAmount:      "5.0",
			Currency:         "142",
			VerDept:          "3",
			PayType:          "4",
			TradingTime:      tradingTime,
			Note:             "one payment for two orders",
			Orders: []customs.Order{
				{OrderNo: DemoOrderMultiA, GoodsInfo: goods("保湿面霜", "https://shop.example.com/a?x=1&y=2;https://shop.example.com/a2"), RecpAccount: ebpCode, RecpCode: ebpCode, RecpName: "海南省示例进出口贸易有限公司"},
				{OrderNo: DemoOrderMultiB, GoodsInfo: goods("Vitamin C 60 tablets", "https://shop.example.com/b?id=7"), RecpAccount: "HK-ACC-88", RecpName: "Example HK Trading Ltd"},
			},
		},
	}
}

// seedDemo records the demo payments (again, harmlessly, on a restart with
// persisted data) and returns their orders.
func seedDemo(ctx context.Context, store *dynamo.Store, ebpCode string) ([]string, error) {
	rec := records.NewRecorder(store)
	var orders []string
	for _, p := range DemoPayments(ebpCode, time.Now()) {
		if _, err := rec.Record(ctx, p); err != nil && !isConflict(err) {
			return nil, fmt.Errorf("local: seed demo payment %s: %w", p.PayTransactionID, err)
		}
		for _, o := range p.Orders {
			orders = append(orders, o.OrderNo)
		}
	}
	return orders, nil
}

// isConflict reports a demo payment kept from an earlier run (its trading
// time differs, so it is not an exact duplicate).
func isConflict(err error) bool {
	return errors.Is(err, records.ErrConflict) || errors.Is(err, records.ErrOrderTaken)
}
