package customs

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func validHead() Head {
	return Head{
		GUID: "2B8E5F1C-6A0D-4C37-9B1E-8F2D3A4C5E6F", InitalRequest: "<xml>req</xml>", InitalResponse: "<xml>resp</xml>",
		EbpCode: "46016602EV", PayCode: "1537923071", PayTransactionID: "4200000681202009235085032319",
		TotalAmount: "88.08", Currency: "142", VerDept: "3", PayType: "1", TradingTime: "20190304013138", Note: "",
	}
}

func validOrders() []Order {
	return []Order{{
		OrderNo: "ORD001", GoodsInfo: []Goods{{Gname: "面膜", ItemLink: "https://shop.example.cn/item?id=1&sku=2"}},
		RecpAccount: "6222000011112222", RecpCode: "", RecpName: "杭州某某贸易有限公司",
	}}
}

// violations returns the "<path>: <message>" lines of err, which must be
// nil or a *ValidationError.
func violations(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %T is not a *ValidationError", err)
	}
	var out []string
	for _, v := range ve.Violations {
		if !strings.HasSuffix(v.Path, v.Field) {
			t.Errorf("violation path %q does not end in field %q", v.Path, v.Field)
		}
		out = append(out, v.String())
	}
	return out
}

func TestValidate(t *testing.T) {
	h := func(k string) string { return "payExchangeInfoHead." + k }
	tests := []struct {
		name   string
		head   func(*Head)
		orders func([]Order) []Order
		want   []string
	}{
		{name: "ok valid", want: nil},
		{name: "ok optional fields empty", head: func(x *Head) { x.PayType, x.Note = "", "" }},
		{name: "ok limits reached in characters", head: func(x *Head) {
			x.GUID = strings.Repeat("中", 36)
			x.InitalRequest = strings.Repeat("é", 8000)
			x.InitalResponse = strings.Repeat("😀", 8000)
			x.EbpCode, x.PayCode = strings.Repeat("9", 18), strings.Repeat("码", 18)
			x.PayTransactionID = strings.Repeat("T", 60)
			x.Currency = "1420"
			x.Note = strings.Repeat("注", 1000)
		}, orders: func(o []Order) []Order {
			o[0].OrderNo = strings.Repeat("号", 60)
			o[0].GoodsInfo[0] = Goods{Gname: strings.Repeat("品", 250), ItemLink: strings.Repeat("l", 3000)}
			o[0].RecpAccount, o[0].RecpCode, o[0].RecpName = strings.Repeat("a", 60), strings.Repeat("c", 18), strings.Repeat("名", 100)
			return o
		}},
		{name: "ok raw fields with control characters", head: func(x *Head) { x.InitalRequest = "a\r\n\tb\x00"; x.Note = "x\ny" }},
		{name: "ok guid digits and dashes only", head: func(x *Head) { x.GUID = "12345678-1234" }},
		{name: "ok verDept 1", head: func(x *Head) { x.VerDept = "1" }},
		{name: "ok payType 4", head: func(x *Head) { x.PayType = "4" }},
		{name: "ok amount 5.0", head: func(x *Head) { x.TotalAmount = "5.0" }},
		{name: "ok amount limits", head: func(x *Head) { x.TotalAmount = "99999999999999.99999" }},
		{name: "ok amount small", head: func(x *Head) { x.TotalAmount = "0.00001" }},
		{name: "ok leap day", head: func(x *Head) { x.TradingTime = "20240229235959" }},
		{name: "ok several orders and goods", orders: func(o []Order) []Order {
			o[0].GoodsInfo = append(o[0].GoodsInfo, Goods{Gname: "b", ItemLink: "l1;l2"})
			return append(o, Order{OrderNo: "ORD002", GoodsInfo: []Goods{{Gname: "c", ItemLink: "l"}}, RecpAccount: "a", RecpName: "n"})
		}},

		{name: "fail guid missing", head: func(x *Head) { x.GUID = "" }, want: []string{h("guid") + ": required"}},
		{name: "fail guid blank", head: func(x *Head) { x.GUID = "  " }, want: []string{h("guid") + ": required"}},
		{name: "fail guid too long", head: func(x *Head) { x.GUID = strings.Repeat("A", 37) }, want: []string{h("guid") + ": longer than 36 characters (37)"}},
		{name: "fail guid lower case", head: func(x *Head) { x.GUID = "2b8e5f1c-6a0d-4c37-9b1e-8f2d3a4c5e6f" }, want: []string{h("guid") + ": must not contain lower-case letters"}},
		{name: "fail guid spaces at end", head: func(x *Head) { x.GUID = "ABC " }, want: []string{h("guid") + ": has white space at the start or end"}},
		{name: "fail initalRequest missing", head: func(x *Head) { x.InitalRequest = "" }, want: []string{h("initalRequest") + ": required"}},
		{name: "fail initalResponse too long", head: func(x *Head) { x.InitalResponse = strings.Repeat("中", 8001) }, want: []string{h("initalResponse") + ": longer than 8000 characters (8001)"}},
		{name: "fail ebpCode too long", head: func(x *Head) { x.EbpCode = strings.Repeat("A", 19) }, want: []string{h("ebpCode") + ": longer than 18 characters (19)"}},
		{name: "fail payCode missing", head: func(x *Head) { x.PayCode = "" }, want: []string{h("payCode") + ": required"}},
		{name: "fail payCode control character", head: func(x *Head) { x.PayCode = "15379\t23071" }, want: []string{h("payCode") + ": contains control characters"}},
		{name: "fail payTransactionId too long", head: func(x *Head) { x.PayTransactionID = strings.Repeat("1", 61) }, want: []string{h("payTransactionId") + ": longer than 60 characters (61)"}},
		{name: "fail amount missing", head: func(x *Head) { x.TotalAmount = "" }, want: []string{h("totalAmount") + ": required"}},
		{name: "fail amount zero", head: func(x *Head) { x.TotalAmount = "0.00" }, want: []string{h("totalAmount") + ": must be greater than 0"}},
		{name: "fail amount negative", head: func(x *Head) { x.TotalAmount = "-1" }, want: []string{h("totalAmount") + ": must be greater than 0"}},
		{name: "fail amount exponent", head: func(x *Head) { x.TotalAmount = "1e2" }, want: []string{h("totalAmount") + ": must be plain decimal text, without an exponent"}},
		{name: "fail amount six decimals", head: func(x *Head) { x.TotalAmount = "1.000001" }, want: []string{h("totalAmount") + ": more than 5 digits after the decimal point"}},
		{name: "fail amount fifteen digits", head: func(x *Head) { x.TotalAmount = "100000000000000" }, want: []string{h("totalAmount") + ": more than 14 digits before the decimal point"}},
		{name: "fail amount leading zero", head: func(x *Head) { x.TotalAmount = "088.08" }, want: []string{h("totalAmount") + ": not a decimal number"}},
		{name: "fail amount comma", head: func(x *Head) { x.TotalAmount = "88,08" }, want: []string{h("totalAmount") + ": not a decimal number"}},
		{name: "fail currency missing", head: func(x *Head) { x.Currency = "" }, want: []string{h("currency") + ": required"}},
		{name: "fail currency too long", head: func(x *Head) { x.Currency = "14200" }, want: []string{h("currency") + ": longer than 4 characters (5)"}},
		{name: "fail verDept missing", head: func(x *Head) { x.VerDept = "" }, want: []string{h("verDept") + ": required"}},
		{name: "fail verDept 4", head: func(x *Head) { x.VerDept = "4" }, want: []string{h("verDept") + `: must be "1", "2" or "3"`}},
		{name: "fail payType 5", head: func(x *Head) { x.PayType = "5" }, want: []string{h("payType") + `: must be empty or "1" to "4"`}},
		{name: "fail payType word", head: func(x *Head) { x.PayType = "APP" }, want: []string{h("payType") + `: must be empty or "1" to "4"`}},
		{name: "fail tradingTime missing", head: func(x *Head) { x.TradingTime = "" }, want: []string{h("tradingTime") + ": required"}},
		{name: "fail tradingTime epoch seconds", head: func(x *Head) { x.TradingTime = "1551634298" }, want: []string{h("tradingTime") + ": must be a real time written yyyyMMddHHmmss"}},
		{name: "fail tradingTime with dashes", head: func(x *Head) { x.TradingTime = "2019-03-04 01:31" }, want: []string{h("tradingTime") + ": must be a real time written yyyyMMddHHmmss"}},
		{name: "fail tradingTime February 30", head: func(x *Head) { x.TradingTime = "20190230120000" }, want: []string{h("tradingTime") + ": must be a real time written yyyyMMddHHmmss"}},
		{name: "fail tradingTime hour 24", head: func(x *Head) { x.TradingTime = "20190304240000" }, want: []string{h("tradingTime") + ": must be a real time written yyyyMMddHHmmss"}},
		{name: "fail tradingTime not leap year", head: func(x *Head) { x.TradingTime = "20230229120000" }, want: []string{h("tradingTime") + ": must be a real time written yyyyMMddHHmmss"}},
		{name: "fail note too long", head: func(x *Head) { x.Note = strings.Repeat("n", 1001) }, want: []string{h("note") + ": longer than 1000 characters (1001)"}},
		{name: "fail note not UTF-8", head: func(x *Head) { x.Note = "\xff" }, want: []string{h("note") + ": not valid UTF-8"}},
		{name: "fail no orders", orders: func([]Order) []Order { return nil }, want: []string{"payExchangeInfoLists: must hold at least one order"}},
		{name: "fail orderNo missing", orders: func(o []Order) []Order { o[0].OrderNo = ""; return o },
			want: []string{"payExchangeInfoLists[0].orderNo: required"}},
		{name: "fail orderNo too long", orders: func(o []Order) []Order { o[0].OrderNo = strings.Repeat("1", 61); return o },
			want: []string{"payExchangeInfoLists[0].orderNo: longer than 60 characters (61)"}},
		{name: "fail orderNo repeated", orders: func(o []Order) []Order { return append(o, o[0]) },
			want: []string{"payExchangeInfoLists[1].orderNo: same as payExchangeInfoLists[0].orderNo"}},
		{name: "fail goodsInfo empty", orders: func(o []Order) []Order { o[0].GoodsInfo = nil; return o },
			want: []string{"payExchangeInfoLists[0].goodsInfo: must hold at least one item"}},
		{name: "fail gname missing", orders: func(o []Order) []Order { o[0].GoodsInfo[0].Gname = ""; return o },
			want: []string{"payExchangeInfoLists[0].goodsInfo[0].gname: required"}},
		{name: "fail gname too long", orders: func(o []Order) []Order { o[0].GoodsInfo[0].Gname = strings.Repeat("品", 251); return o },
			want: []string{"payExchangeInfoLists[0].goodsInfo[0].gname: longer than 250 characters (251)"}},
		{name: "fail itemLink too long", orders: func(o []Order) []Order { o[0].GoodsInfo[0].ItemLink = strings.Repeat("l", 3001); return o },
			want: []string{"payExchangeInfoLists[0].goodsInfo[0].itemLink: longer than 3000 characters (3001)"}},
		{name: "fail recpAccount missing", orders: func(o []Order) []Order { o[0].RecpAccount = ""; return o },
			want: []string{"payExchangeInfoLists[0].recpAccount: required"}},
		{name: "fail recpAccount too long", orders: func(o []Order) []Order { o[0].RecpAccount = strings.Repeat("1", 61); return o },
			want: []string{"payExchangeInfoLists[0].recpAccount: longer than 60 characters (61)"}},
		{name: "fail recpCode too long", orders: func(o []Order) []Order { o[0].RecpCode = strings.Repeat("1", 19); return o },
			want: []string{"payExchangeInfoLists[0].recpCode: longer than 18 characters (19)"}},
		{name: "fail recpName missing", orders: func(o []Order) []Order { o[0].RecpName = ""; return o },
			want: []string{"payExchangeInfoLists[0].recpName: required"}},
		{name: "fail recpName too long", orders: func(o []Order) []Order { o[0].RecpName = strings.Repeat("名", 101); return o },
			want: []string{"payExchangeInfoLists[0].recpName: longer than 100 characters (101)"}},
		{name: "fail several violations at once", head: func(x *Head) {
			x.GUID, x.TotalAmount, x.VerDept, x.TradingTime = "abc", "0", "", "20190304"
		}, orders: func(o []Order) []Order {
			o[0].GoodsInfo = append(o[0].GoodsInfo, Goods{Gname: "x"})
			return append(o, Order{OrderNo: "ORD002", GoodsInfo: []Goods{{Gname: "", ItemLink: "l"}}, RecpAccount: "a", RecpName: ""})
		}, want: []string{
			h("guid") + ": must not contain lower-case letters",
			h("totalAmount") + ": must be greater than 0",
			h("verDept") + ": required",
			h("tradingTime") + ": must be a real time written yyyyMMddHHmmss",
			"payExchangeInfoLists[0].goodsInfo[1].itemLink: required",
			"payExchangeInfoLists[1].goodsInfo[0].gname: required",
			"payExchangeInfoLists[1].recpName: required",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head, orders := validHead(), validOrders()
			if tt.head != nil {
				tt.head(&head)
			}
			if tt.orders != nil {
				orders = tt.orders(orders)
			}
			got := violations(t, Validate(head, orders))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("violations:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	head := validHead()
	head.GUID, head.Currency = "", ""
	err := Validate(head, nil)
	want := "invalid payment data: payExchangeInfoHead.guid: required; payExchangeInfoHead.currency: required; payExchangeInfoLists: must hold at least one order"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestViolationsHoldNoValues makes sure no violation repeats the data it
// complains about, so violations can be logged.
func TestViolationsHoldNoValues(t *testing.T) {
	const secret = "SECRET-VALUE-1234"
	head := validHead()
	head.GUID = strings.ToLower(secret)
	head.Note = strings.Repeat(secret, 100)
	head.TotalAmount = secret
	orders := validOrders()
	orders[0].RecpCode = secret + secret
	err := Validate(head, orders)
	if err == nil {
		t.Fatal("no violations")
	}
	if strings.Contains(strings.ToUpper(err.Error()), secret) {
		t.Errorf("error repeats a value: %s", err)
	}
}

func TestValidateVariants(t *testing.T) {
	head := validHead()
	head.GUID = ""
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"ok record without guid", ValidateRecord(head, validOrders()), nil},
		{"ok head without guid", ValidateHead(head, false), nil},
		{"fail head with guid", ValidateHead(head, true), []string{"payExchangeInfoHead.guid: required"}},
		{"fail record checks the rest", ValidateRecord(Head{TotalAmount: "1", VerDept: "1", TradingTime: "20190304013138", InitalRequest: "a", InitalResponse: "b", EbpCode: "e", PayCode: "p", PayTransactionID: "t"}, validOrders()),
			[]string{"payExchangeInfoHead.currency: required"}},
		{"ok orders", ValidateOrders(validOrders()), nil},
		{"fail orders", ValidateOrders(nil), []string{"payExchangeInfoLists: must hold at least one order"}},
		{"ok document", (&Document{SessionID: "s", Head: validHead(), Lists: validOrders(), ServiceTime: "1553047681000"}).Validate(), nil},
		{"fail document session and time", (&Document{SessionID: strings.Repeat("s", 101), Head: validHead(), Lists: validOrders(), ServiceTime: "1.5"}).Validate(),
			[]string{"sessionID: longer than 100 characters (101)", "serviceTime: must be decimal digits (milliseconds since the epoch)"}},
		{"fail document empty", (&Document{}).Validate(), []string{
			"sessionID: required", "serviceTime: required",
			"payExchangeInfoHead.guid: required", "payExchangeInfoHead.initalRequest: required", "payExchangeInfoHead.initalResponse: required",
			"payExchangeInfoHead.ebpCode: required", "payExchangeInfoHead.payCode: required", "payExchangeInfoHead.payTransactionId: required",
			"payExchangeInfoHead.totalAmount: required", "payExchangeInfoHead.currency: required", "payExchangeInfoHead.verDept: required",
			"payExchangeInfoHead.tradingTime: required", "payExchangeInfoLists: must hold at least one order"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := violations(t, tt.err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("violations:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
